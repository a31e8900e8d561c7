"""Sealed patient-link tokens, encrypted cookies (AES-GCM with key ids for rotation) and keyed hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.runtime import forgotten_on_reset
from shared.settings import Settings, get_settings

LINK_VERSION = b"\x01"
LINK_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MAX_LINK_CHARS = 64


class TokenInvalid(Exception):
    """A token or cookie that was tampered with, sealed with an unknown key, or is malformed."""


class TokenExpired(Exception):
    """A token or cookie that was genuine but is past its expiry."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenInvalid("not base64url") from exc


def _key_tag(key_id: str) -> bytes:
    # One byte names the key inside a link, so rotation costs no length; collisions are tried in turn.
    return hashlib.sha256(key_id.encode()).digest()[:1]


class Sealer:
    """Seals and opens links and cookies with the key ring from the settings."""

    def __init__(self, settings: Settings | None = None):
        settings = settings or get_settings()
        self.ring = settings.seal_key_ring()
        self.active = settings.seal_active_key_id
        if self.active not in self.ring:
            raise RuntimeError("SEAL_ACTIVE_KEY_ID must name a key in SEAL_KEYS")
        self.hash_key = settings.hash_key_bytes()

    # Patient links -----------------------------------------------------------------------------------------

    def seal_link(self, endpoint_id: str, appointment_id: str, expires_at: datetime) -> str:
        """≤ 64 URL-safe characters naming endpoint, appointment and expiry; nothing readable."""
        if not appointment_id.isdigit() or int(appointment_id) >= 2**64:
            raise ValueError("only numeric appointment ids fit a patient link")
        number = int(appointment_id)
        appointment = number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
        minutes = int((expires_at - LINK_EPOCH).total_seconds() // 60)
        plaintext = bytes.fromhex(endpoint_id) + minutes.to_bytes(3, "big") + appointment
        header = _key_tag(self.active)
        nonce = os.urandom(12)
        sealed = AESGCM(self.ring[self.active]).encrypt(nonce, plaintext, LINK_VERSION + header)
        token = _b64(header + nonce + sealed)
        assert len(token) <= MAX_LINK_CHARS
        return token

    def open_link(self, token: str, now: datetime | None = None) -> tuple[str, str, datetime]:
        """(endpoint id, appointment id, expiry) of a genuine, unexpired link."""
        if not token or len(token) > MAX_LINK_CHARS:
            raise TokenInvalid("bad length")
        raw = _unb64(token)
        # Only the canonical encoding opens: otherwise unused low bits would give several spellings of one link.
        if _b64(raw) != token or len(raw) < 1 + 12 + 16 + 8 + 3 + 1:
            raise TokenInvalid("too short")
        header, nonce, sealed = raw[:1], raw[1:13], raw[13:]
        plaintext = self._open(header, nonce, sealed, LINK_VERSION + header)
        endpoint_id = plaintext[:8].hex()
        expires_at = LINK_EPOCH + timedelta(minutes=int.from_bytes(plaintext[8:11], "big"))
        appointment_id = str(int.from_bytes(plaintext[11:], "big"))
        if (now or datetime.now(UTC)) >= expires_at:
            raise TokenExpired("link expired")
        return endpoint_id, appointment_id, expires_at

    # Cookies and other sealed JSON -------------------------------------------------------------------------

    def seal_json(self, data: dict, ttl_seconds: int, purpose: str) -> str:
        """Encrypt a small JSON document bound to a purpose, readable until ttl_seconds from now."""
        body = json.dumps({"d": data, "e": int(time.time()) + ttl_seconds}, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        sealed = AESGCM(self.ring[self.active]).encrypt(nonce, body, purpose.encode())
        return f"{self.active}.{_b64(nonce + sealed)}"

    def open_json(self, value: str, purpose: str) -> dict:
        """The data of a genuine, unexpired sealed JSON document of this purpose."""
        key_id, _, payload = (value or "").partition(".")
        key = self.ring.get(key_id)
        if key is None or not payload:
            raise TokenInvalid("unknown key")
        raw = _unb64(payload)
        try:
            body = json.loads(AESGCM(key).decrypt(raw[:12], raw[12:], purpose.encode()))
        except (InvalidTag, ValueError) as exc:
            raise TokenInvalid("tampered") from exc
        if body["e"] < time.time():
            raise TokenExpired("expired")
        return body["d"]

    # Keyed hashes ------------------------------------------------------------------------------------------

    def keyed_hash(self, *parts: str) -> str:
        """An opaque, stable id for identifiers that must never be stored in clear."""
        message = "|".join(parts).encode()
        return hmac.new(self.hash_key, message, hashlib.sha256).hexdigest()[:32]

    def _open(self, header: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
        for key_id, key in self.ring.items():
            if _key_tag(key_id) != header:
                continue
            try:
                return AESGCM(key).decrypt(nonce, sealed, aad)
            except InvalidTag:
                continue
        raise TokenInvalid("tampered or unknown key")


@dataclass(frozen=True)
class CookieSpec:
    """How a sealed cookie is named and how long it lives."""

    name: str
    ttl_seconds: int
    path: str = "/api"


def _secure() -> bool:
    # Secure whenever the app is served over https (always in Azure); plain http only on a developer's loopback.
    return get_settings().public_base_url.startswith("https://")


def cookie_header(spec: CookieSpec, value: str) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Lax, Secure when served over https."""
    flags = f"; Path={spec.path}; Max-Age={spec.ttl_seconds}; HttpOnly; SameSite=Lax"
    return f"{spec.name}={value}{flags}{'; Secure' if _secure() else ''}"


def clear_cookie_header(spec: CookieSpec) -> str:
    return cookie_header(CookieSpec(spec.name, 0, spec.path), "")


@dataclass(frozen=True)
class Redirect:
    """Where the browser goes next, and the cookies it carries there."""

    location: str
    cookies: list[str] = field(default_factory=list)


_sealer: Sealer | None = None


@forgotten_on_reset
def _forget_sealer() -> None:
    global _sealer
    _sealer = None


def sealer() -> Sealer:
    """The process-wide sealer built from the settings."""
    global _sealer
    if _sealer is None:
        _sealer = Sealer()
    return _sealer
