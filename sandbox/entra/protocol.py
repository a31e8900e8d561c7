"""OAuth and OIDC pieces of the Entra stand-in: AAD errors, planned faults, codes, grants and signing keys."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sandbox.entra.directory import GRAPH_APP_ID, GRAPH_AUDIENCE, EntraUser


class AadError(Exception):
    """An error the token endpoint (or an authorize redirect) reports in AAD's shape."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status, self.error, self.code, self.message = status, error, code, message


class InvalidAccessToken(ValueError):
    """The bearer token is not one this Entra issued, or it expired."""


@dataclass
class _Fault:
    substring: str
    status: int
    remaining: int
    headers: dict[str, str]


class FaultPlan:
    """Planned failures: the next `count` requests whose path contains a substring answer `status`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def add(self, substring: str, status: int, count: int = 1, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._faults.append(_Fault(substring, status, count, dict(headers or {})))

    def take(self, path: str) -> _Fault | None:
        """The fault planned for this path, consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.substring in path and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


@dataclass
class AuthCode:
    """An issued authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    user: EntraUser
    scopes: tuple[str, ...]
    nonce: str | None
    code_challenge: str | None
    challenge_method: str
    expires_at: float
    used: bool = False


@dataclass
class RefreshGrant:
    """What a refresh token stands for: a client, a user and scopes."""

    client_id: str
    user: EntraUser
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class SignIn:
    """One completed interactive sign-in (what the authorize endpoint handed a code for)."""

    at: float
    oid: str
    tid: str
    client_id: str


@dataclass
class _SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, str]:
        jwk = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid, "n": jwk["n"], "e": jwk["e"]}


def new_signing_key() -> _SigningKey:
    """A fresh RSA signing key with a random key id."""
    kid = base64.urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()
    return _SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def b64url_json(value: dict) -> str:
    """A JSON object as unpadded base64url (a JWT segment)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def pairwise_sub(oid: str, client_id: str) -> str:
    """The `sub` claim: stable per user and client, as Entra's pairwise subject is."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{oid}|{client_id}".encode()).digest()).rstrip(b"=").decode()


def graph_scope_name(scope: str) -> str | None:
    """'https://graph.microsoft.com/User.Read' → 'User.Read'; None for a scope of another resource."""
    if "/" not in scope:
        return scope
    resource, _, name = scope.rpartition("/")
    return name if is_graph_resource(resource) else None


def is_graph_resource(resource: str) -> bool:
    """Graph by its URI or app id, or (sandbox) a loopback https origin that stands for Graph."""
    if resource.rstrip("/") in (GRAPH_AUDIENCE, GRAPH_APP_ID):
        return True
    parts = urlsplit(resource)
    return parts.scheme == "https" and parts.hostname in ("localhost", "127.0.0.1") and parts.path in ("", "/")
