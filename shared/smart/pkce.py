"""PKCE (RFC 7636) with S256 only, as SMART requires; and the other single-use values of a launch (state, nonce)."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_verifier() -> str:
    """A 43-character verifier with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def new_state() -> str:
    """Opaque state with 256 bits of entropy (SMART asks for at least 122)."""
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    """OpenID Connect nonce with 256 bits of entropy, echoed in the id_token to tie it to this browser's launch."""
    return secrets.token_urlsafe(32)
