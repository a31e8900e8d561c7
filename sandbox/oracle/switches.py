"""Switches that make one tenant of the Oracle stand-in misbehave, and a record of the credentials each host received.

Security tests use them to play a hostile or broken Cerner through the real launch and reminder flows: endpoints
advertised on another host, paging links to another host, rotated keys and forged id_tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

# What discovery can point elsewhere, and the paging links of searches.
ENDPOINTS = ("authorize", "token", "jwks", "next")


def new_signing_key() -> tuple[str, rsa.RSAPrivateKey]:
    """A fresh RS256 key and its kid."""
    return secrets.token_hex(8), rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """The public half of a signing key as a JWK."""
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "use": "sig", "alg": "RS256"}


@dataclass
class Forgery:
    """How the next id_token of a tenant is made wrong (used once)."""

    set_claims: dict[str, Any] = field(default_factory=dict)  # claims added or replaced
    drop_claims: tuple[str, ...] = ()  # claims left out
    drop_kid: bool = False  # no kid in the header
    kid: str | None = None  # a kid other than the signing key's
    stranger_key: bool = False  # signed by a key in no JWKS
    raw: str | None = None  # sent instead of a JWT


@dataclass
class TenantSwitches:
    """One tenant's misbehaviour: endpoints on other origins, its own key ring (newest first), a pending forgery."""

    elsewhere: dict[str, str] = field(default_factory=dict)
    keys: list[tuple[str, rsa.RSAPrivateKey]] = field(default_factory=list)
    published: int = 1  # how many of the newest keys the JWKS lists
    forgery: Forgery | None = None

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, key) for kid, key in self.keys[:self.published]]}

    def sign(self, claims: dict[str, Any]) -> str:
        """The id_token for these claims: genuine, or as the pending forgery says (then forgotten)."""
        forgery, self.forgery = self.forgery or Forgery(), None
        if forgery.raw is not None:
            return forgery.raw
        claims = {k: v for k, v in {**claims, **forgery.set_claims}.items() if k not in forgery.drop_claims}
        kid, key = self.keys[0]
        if forgery.stranger_key:
            kid, key = new_signing_key()
        headers: dict[str, Any] = {"typ": "JWT", "kid": forgery.kid or kid}
        if forgery.drop_kid:
            del headers["kid"]
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)


@dataclass(frozen=True)
class Received:
    """A credential that reached the stand-in: on which host name, at which path, of which kind (never its value)."""

    host: str
    path: str
    kind: str  # "basic", "client_assertion", "client_secret", "code", "bearer", "authorize", "jwks"
