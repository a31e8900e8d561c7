"""The portal's HTML: the sign-in page or the three-step wizard, and its script and style files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.errors import NotFound
from shared.pages import render
from shared.portal.auth import Credentials, current

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"portal.js": "text/javascript", "portal.css": "text/css"}
# Scripts only from our own origin: the wizard has no inline script, so injected markup cannot run any.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; "
                           "connect-src 'self'; frame-ancestors 'none'; form-action 'self' https:; base-uri 'none'")


@dataclass(frozen=True)
class Asset:
    body: bytes
    mimetype: str


def portal_page(credentials: Credentials) -> str:
    """The wizard for a signed-in administrator, else the sign-in page."""
    caller = current(credentials)
    if caller is None:
        return render("portal_signin.html")
    return render("portal.html", caller=caller)


def asset(name: str) -> Asset:
    """One of the portal's static files (a fixed list: nothing else on disk is reachable)."""
    if name not in ASSETS:
        raise NotFound("There is no such file.")
    return Asset((STATIC / name).read_bytes(), ASSETS[name])
