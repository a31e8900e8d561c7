"""`.well-known/smart-configuration`, OpenID configuration and JWKS, fetched through the shared client, cached.

Every URL fetched here is checked against TRUSTED_EHR_HOSTS first (Microsoft's keys excepted: system "entra").
"""

from __future__ import annotations

import threading
import time
from typing import TypeVar

import jwt
from pydantic import BaseModel, ValidationError

from shared.cache import TtlCache
from shared.ehr_hosts import require_trusted
from shared.errors import DependencyFailed
from shared.http import client, dependency
from shared.runtime import forgotten_on_reset

CACHE_SECONDS = 3600
# An id_token with an unknown kid refetches the keys (rotation), but at most this often per JWKS URI:
# forged tokens with made-up kids must not turn the connector into a load generator against Cerner.
JWKS_REFRESH_SECONDS = 60
Model = TypeVar("Model", bound=BaseModel)


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
        """PKCE S256 unless the server lists its methods without S256 (unknown parameters are ignored)."""
        return not self.code_challenge_methods_supported or "S256" in self.code_challenge_methods_supported

    @property
    def private_key_jwt(self) -> bool:
        """The token endpoint accepts SMART Backend Services client assertions."""
        return "private_key_jwt" in self.token_endpoint_auth_methods_supported

    def endpoints(self) -> dict[str, str]:
        """The addresses this configuration sends the connector (and the browser) to, by what they are."""
        named = {"authorization endpoint": self.authorization_endpoint, "token endpoint": self.token_endpoint,
                 "JWKS URI": self.jwks_uri, "issuer": self.issuer}
        return {what: url for what, url in named.items() if url}

    @property
    def scopes_v2(self) -> bool:
        return "permission-v2" in self.capabilities and "permission-v1" not in self.capabilities


class OpenIdConfiguration(BaseModel):
    issuer: str
    jwks_uri: str


_configurations: TtlCache[SmartConfiguration] = TtlCache(CACHE_SECONDS)
_openid: TtlCache[OpenIdConfiguration] = TtlCache(CACHE_SECONDS)
_jwks: TtlCache[jwt.PyJWKSet] = TtlCache(CACHE_SECONDS)
_jwks_refreshed: dict[tuple[str, str], float] = {}
_jwks_lock = threading.Lock()


@forgotten_on_reset
def _forget_refreshes() -> None:
    with _jwks_lock:
        _jwks_refreshed.clear()


def _fetch_json(system: str, url: str, model: type[Model], unreadable: str, next_step: str = "") -> Model:
    with dependency(system):
        response = client(system).get(url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise DependencyFailed(unreadable, next_step=next_step)
    try:
        return model.model_validate(response.json())
    except (ValidationError, ValueError) as exc:
        raise DependencyFailed(unreadable, next_step=next_step) from exc


def smart_configuration(iss: str) -> SmartConfiguration:
    """The SMART configuration of a FHIR base URL (cached for an hour)."""
    require_trusted(iss, "FHIR base URL")
    return _configurations.get(iss, lambda: _fetch_json(
        "smart", f"{iss.rstrip('/')}/.well-known/smart-configuration", SmartConfiguration,
        "The Cerner environment did not publish a valid SMART configuration.",
        "Ask IT to check that the FHIR base URL is the R4 secure endpoint.",
    ))


def openid_configuration(issuer: str) -> OpenIdConfiguration:
    """The OpenID configuration published under an issuer (cached for an hour)."""
    require_trusted(issuer, "id_token issuer")
    return _openid.get(issuer, lambda: _fetch_json(
        "smart", f"{issuer.rstrip('/')}/.well-known/openid-configuration", OpenIdConfiguration,
        "The sign-in service's OpenID configuration could not be read.",
    ))


def jwks(jwks_uri: str, refresh: bool = False, system: str = "smart") -> jwt.PyJWKSet:
    """The signing keys at a JWKS URI (cached; refresh=True after an unknown kid: at most once a minute)."""
    if system != "entra":
        require_trusted(jwks_uri, "JWKS URI")
    if refresh and not _may_refresh((system, jwks_uri)):
        refresh = False

    def fetch() -> jwt.PyJWKSet:
        with dependency(system):
            response = client(system).get(jwks_uri)
        if response.status_code != 200:
            raise DependencyFailed("The sign-in service's signing keys could not be read.")
        try:
            return jwt.PyJWKSet.from_dict(response.json())
        except (jwt.PyJWTError, ValueError) as exc:
            raise DependencyFailed("The sign-in service's signing keys could not be read.") from exc

    return _jwks.get((system, jwks_uri), fetch, refresh=refresh)


def _may_refresh(key: tuple[str, str]) -> bool:
    """True (and remembered) when this JWKS was not force-refreshed within the last minute."""
    now = time.monotonic()
    with _jwks_lock:
        last = _jwks_refreshed.get(key)
        if last is not None and now - last < JWKS_REFRESH_SECONDS:
            return False
        _jwks_refreshed[key] = now
        return True


def clear_caches() -> None:
    for cache in (_configurations, _openid, _jwks):
        cache.clear()
    with _jwks_lock:
        _jwks_refreshed.clear()
