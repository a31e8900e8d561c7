"""Refusing cross-site state changes: a same-origin check (Origin, Sec-Fetch-Site) and a CSRF token per caller."""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from shared.errors import Forbidden
from shared.settings import get_settings
from shared.tokens import TokenExpired, TokenInvalid, sealer

HEADER = "X-CSRF-Token"
RELOAD = "Reload the page and try again."
# Sec-Fetch-Site values a browser sends for a request our own page made ("none": the user typed or bookmarked it).
SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})


def own_origin() -> str:
    """scheme://host[:port] of PUBLIC_BASE_URL: the only origin allowed to change state."""
    parts = urlsplit(get_settings().public_base_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def require_same_origin(origin: str | None, fetch_site: str | None) -> None:
    """Refuse a request that a browser says came from another site; non-browser callers send neither header."""
    if fetch_site and fetch_site.strip().lower() not in SAME_ORIGIN_SITES:
        raise Forbidden("This request came from another site and was refused.", next_step=RELOAD,
                        code="cross_site_request")
    if origin and origin.strip().lower().rstrip("/") != own_origin():
        raise Forbidden("This request came from another site and was refused.", next_step=RELOAD,
                        code="cross_site_request")


def csrf_token(binding: dict[str, Any], ttl_seconds: int, purpose: str) -> str:
    """A token the page sends back with each state change; it names whom and what it was issued for."""
    return sealer().seal_json(binding, ttl_seconds, f"csrf:{purpose}")


def require_csrf_token(token: str | None, binding: dict[str, Any], purpose: str) -> None:
    """Refuse unless the token is genuine, unexpired and was issued for exactly this binding."""
    try:
        issued = sealer().open_json(token or "", f"csrf:{purpose}")
    except (TokenInvalid, TokenExpired) as exc:
        raise Forbidden("This request is missing its security token.", next_step=RELOAD,
                        code="csrf_token_invalid") from exc
    same = issued.keys() == binding.keys() and all(
        hmac.compare_digest(str(issued[name]), str(binding[name])) for name in binding)
    if not same:
        raise Forbidden("This request's security token belongs to another page.", next_step=RELOAD,
                        code="csrf_token_invalid")
