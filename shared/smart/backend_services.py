"""SMART Backend Services (private_key_jwt, RS384/ES384) or Cerner's basic system secret, cached until expiry."""

from __future__ import annotations

import time
import uuid

from shared.cache import TtlCache
from shared.ehr_hosts import require_trusted
from shared.errors import DependencyFailed
from shared.http import client, dependency
from shared.settings import get_settings
from shared.smart.discovery import smart_configuration

V1_SYSTEM_SCOPES = "system/Appointment.read system/Patient.read"
V2_SYSTEM_SCOPES = "system/Appointment.rs system/Patient.rs"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Reused until 30 s before expiry (Cerner: 570 s; SMART backend services: at most 300 s).
_tokens: TtlCache[tuple[str, int]] = TtlCache(0, lifetime=lambda token: max(token[1] - 30, 0))


def _client_assertion(token_endpoint: str) -> str:
    # PyJWT and cryptography's hazmat parts are imported on the first system token, not on cold start.
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    settings = get_settings()
    key = load_pem_private_key(settings.smart_system_private_key.get_secret_value().encode(), password=None)
    algorithm = "ES384" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS384"
    now = int(time.time())
    claims = {"iss": settings.smart_system_client_id, "sub": settings.smart_system_client_id,
              "aud": token_endpoint, "exp": now + 240, "iat": now, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=algorithm,
                      headers={"kid": settings.smart_system_key_id, "typ": "JWT"})


def _use_client_assertion(offered: bool) -> bool:
    """private_key_jwt when a key is configured and the server offers it (or no secret is there to fall back on)."""
    settings = get_settings()
    if not settings.smart_system_private_key.get_secret_value():
        return False
    return offered or not settings.smart_system_secret.get_secret_value()


def system_token(fhir_base_url: str, refresh: bool = False) -> str:
    """A system access token for the FHIR base URL, reused until shortly before it expires.

    refresh=True fetches a new one, for when Cerner refused the cached token (revoked, or expired early).
    """
    return _tokens.get(fhir_base_url, lambda: _request_token(fhir_base_url), refresh=refresh)[0]


def _request_token(fhir_base_url: str) -> tuple[str, int]:
    settings = get_settings()
    configuration = smart_configuration(fhir_base_url)
    # The secret and the assertion exist only after the token endpoint passed the trusted-host check.
    token_endpoint = require_trusted(configuration.token_endpoint, "token endpoint")
    form = {"grant_type": "client_credentials",
            "scope": V2_SYSTEM_SCOPES if configuration.scopes_v2 else V1_SYSTEM_SCOPES}
    auth = None
    if _use_client_assertion(configuration.private_key_jwt):
        form |= {"client_assertion_type": ASSERTION_TYPE, "client_assertion": _client_assertion(token_endpoint)}
    else:
        auth = (settings.smart_system_client_id, settings.smart_system_secret.get_secret_value())
    with dependency("smart"):
        response = client("smart").post(token_endpoint, data=form, auth=auth, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise DependencyFailed("Cerner refused the connector's system account.",
                               next_step="Ask IT to check the system account and its scopes in Cerner.")
    body = response.json()
    return body["access_token"], int(body.get("expires_in", 300))
