"""`.well-known/smart-configuration` and JWKS, fetched through the shared client and cached per process."""

from __future__ import annotations

import threading
import time

import jwt
from pydantic import BaseModel, ValidationError

from shared.errors import DependencyFailed
from shared.http import client, dependency

CACHE_SECONDS = 3600


class SmartConfiguration(BaseModel):
    """The fields of a SMART configuration that the connector uses."""

    authorization_endpoint: str
    token_endpoint: str
    issuer: str = ""
    jwks_uri: str = ""
    capabilities: list[str] = []
    code_challenge_methods_supported: list[str] = []
    scopes_supported: list[str] = []
    token_endpoint_auth_methods_supported: list[str] = []

    @property
    def pkce(self) -> bool:
        return "S256" in self.code_challenge_methods_supported

    @property
    def scopes_v2(self) -> bool:
        return "permission-v2" in self.capabilities and "permission-v1" not in self.capabilities


_lock = threading.Lock()
_configurations: dict[str, tuple[float, SmartConfiguration]] = {}
_jwks: dict[str, tuple[float, jwt.PyJWKSet]] = {}


def smart_configuration(iss: str) -> SmartConfiguration:
    """The SMART configuration of a FHIR base URL (cached for an hour)."""
    now = time.monotonic()
    with _lock:
        cached = _configurations.get(iss)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    with dependency("smart"):
        response = client("smart").get(f"{iss.rstrip('/')}/.well-known/smart-configuration",
                                       headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise DependencyFailed(
            "The Cerner environment did not publish its SMART configuration.",
            next_step="Ask IT to check that the FHIR base URL is the R4 secure endpoint.",
        )
    try:
        configuration = SmartConfiguration.model_validate(response.json())
    except (ValidationError, ValueError) as exc:
        raise DependencyFailed("The Cerner environment's SMART configuration is not valid.") from exc
    with _lock:
        _configurations[iss] = (now, configuration)
    return configuration


def jwks(jwks_uri: str, refresh: bool = False, system: str = "smart") -> jwt.PyJWKSet:
    """The signing keys at a JWKS URI (cached; refresh=True after an unknown kid, for key rotation)."""
    now = time.monotonic()
    with _lock:
        cached = _jwks.get(jwks_uri)
    if cached and not refresh and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    with dependency(system):
        response = client(system).get(jwks_uri)
    if response.status_code != 200:
        raise DependencyFailed("The sign-in service's signing keys could not be read.")
    key_set = jwt.PyJWKSet.from_dict(response.json())
    with _lock:
        _jwks[jwks_uri] = (now, key_set)
    return key_set


class OpenIdConfiguration(BaseModel):
    issuer: str
    jwks_uri: str


_openid: dict[str, tuple[float, OpenIdConfiguration]] = {}


def openid_configuration(issuer: str) -> OpenIdConfiguration:
    """The OpenID configuration published under an issuer (cached for an hour)."""
    now = time.monotonic()
    with _lock:
        cached = _openid.get(issuer)
    if cached and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    with dependency("smart"):
        response = client("smart").get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
    try:
        configuration = OpenIdConfiguration.model_validate(response.json())
    except (ValidationError, ValueError) as exc:
        raise DependencyFailed("The sign-in service's OpenID configuration could not be read.") from exc
    with _lock:
        _openid[issuer] = (now, configuration)
    return configuration


def clear_caches() -> None:
    with _lock:
        _configurations.clear()
        _jwks.clear()
        _openid.clear()
