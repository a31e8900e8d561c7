"""`.well-known/smart-configuration`, OpenID configuration and JWKS, fetched through the shared client, cached."""

from __future__ import annotations

from typing import TypeVar

import jwt
from pydantic import BaseModel, ValidationError

from shared.cache import TtlCache
from shared.errors import DependencyFailed
from shared.http import client, dependency

CACHE_SECONDS = 3600
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
        return "S256" in self.code_challenge_methods_supported

    @property
    def scopes_v2(self) -> bool:
        return "permission-v2" in self.capabilities and "permission-v1" not in self.capabilities


class OpenIdConfiguration(BaseModel):
    issuer: str
    jwks_uri: str


_configurations: TtlCache[SmartConfiguration] = TtlCache(CACHE_SECONDS)
_openid: TtlCache[OpenIdConfiguration] = TtlCache(CACHE_SECONDS)
_jwks: TtlCache[jwt.PyJWKSet] = TtlCache(CACHE_SECONDS)


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
    return _configurations.get(iss, lambda: _fetch_json(
        "smart", f"{iss.rstrip('/')}/.well-known/smart-configuration", SmartConfiguration,
        "The Cerner environment did not publish a valid SMART configuration.",
        "Ask IT to check that the FHIR base URL is the R4 secure endpoint.",
    ))


def openid_configuration(issuer: str) -> OpenIdConfiguration:
    """The OpenID configuration published under an issuer (cached for an hour)."""
    return _openid.get(issuer, lambda: _fetch_json(
        "smart", f"{issuer.rstrip('/')}/.well-known/openid-configuration", OpenIdConfiguration,
        "The sign-in service's OpenID configuration could not be read.",
    ))


def jwks(jwks_uri: str, refresh: bool = False, system: str = "smart") -> jwt.PyJWKSet:
    """The signing keys at a JWKS URI (cached; refresh=True after an unknown kid, for key rotation)."""

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


def clear_caches() -> None:
    for cache in (_configurations, _openid, _jwks):
        cache.clear()
