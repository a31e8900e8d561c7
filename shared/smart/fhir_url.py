"""The one canonical form of a FHIR base URL, so no alias registers a Cerner tenant twice or misses a launch."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"https": 443, "http": 80}
# RFC 3986 §2.3: percent-encoded unreserved characters mean the same as the characters themselves.
_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


class NotAUrl(ValueError):
    """Text that cannot be a FHIR base URL (no scheme or host, a bad port, a malformed host or escape)."""


def canonical_base_url(url: str) -> str:
    """Lower-case scheme and host, no default port, no trailing dot or slash, no empty or dot segments.

    The path keeps its case (RFC 3986 paths are case-sensitive); percent-escapes are normalised, so
    `/r4/%61bc` and `/r4/abc` are one URL. User info, query and fragment are dropped: a base URL has none,
    and validation refuses them where an administrator types a URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise NotAUrl("not a URL") from exc
    scheme = parts.scheme.lower()
    host = _host(parts.hostname or "")
    if not scheme or not host:
        raise NotAUrl("not a complete URL")
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, _path(parts.path), "", ""))


def _host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if ":" in host:  # an IPv6 literal keeps its brackets
        return f"[{host}]"
    try:
        # An internationalised name and its punycode are one host.
        return host.encode("idna").decode("ascii") if host and not host.isascii() else host
    except UnicodeError as exc:
        raise NotAUrl("not a valid host name") from exc


def _path(path: str) -> str:
    segments: list[str] = []
    for raw in path.split("/"):
        segment = _PERCENT.sub(_unescape, raw)
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "".join(f"/{s}" for s in segments)


def _unescape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if _UNRESERVED.fullmatch(char) else f"%{match.group(1).upper()}"


def same_base_url(first: str, second: str) -> bool:
    """True when two spellings name the same FHIR base URL."""
    try:
        return canonical_base_url(first) == canonical_base_url(second)
    except NotAUrl:
        return False
