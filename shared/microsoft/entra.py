"""Entra ID through msal: app-only tokens for Graph, and user sign-in (auth code + PKCE) with a verified id_token."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import httpx
import jwt
import msal

from shared.errors import ConnectorError, DependencyFailed
from shared.http import client, dependency
from shared.runtime import forgotten_on_reset
from shared.settings import get_settings
from shared.smart.id_token import validate_id_token

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
SIGN_IN_SCOPES = ["User.Read"]


class SignInFailed(ConnectorError):
    status, code, title = 401, "sign_in_failed", "Microsoft sign-in did not complete"


class TenantNotAllowed(ConnectorError):
    status, code, title = 403, "tenant_not_allowed", "Your organization cannot use this connector"


def require_allowed_tenant(tenant_id: object) -> str:
    """The tenant id if ALLOWED_TENANTS lists it; any other tenant is refused, whatever the app's audience."""
    if not get_settings().tenant_allowed(tenant_id):
        raise TenantNotAllowed(
            "You signed in with a Microsoft account of an organization that is not allowed to use this connector.",
            next_step="Sign in with your work account of the organization that runs this connector. If your "
            "organization should have access, ask its IT to add your tenant ID to ALLOWED_TENANTS.",
        )
    return str(tenant_id)


class MsalHttpClient:
    """The shared, counted httpx client in the shape msal expects of `http_client`."""

    def __init__(self, http: httpx.Client):
        self.http = http

    def get(self, url: str, params=None, headers=None, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, params=params, headers=headers)

    def post(self, url: str, params=None, data=None, headers=None, **kwargs: Any) -> httpx.Response:
        if isinstance(data, str | bytes):
            return self.http.post(url, params=params, content=data, headers=headers)
        return self.http.post(url, params=params, data=data, headers=headers)

    def close(self) -> None:
        """The shared client outlives msal's use of it."""


_lock = threading.Lock()
_apps: dict[str, msal.ConfidentialClientApplication] = {}


@forgotten_on_reset
def _forget_apps() -> None:
    with _lock:
        _apps.clear()


def confidential_app(tenant: str | None = None) -> msal.ConfidentialClientApplication:
    """One msal app per authority tenant; its token cache keeps app tokens in process."""
    settings = get_settings()
    tenant = tenant or settings.entra_tenant_id
    with _lock:
        if tenant not in _apps:
            _apps[tenant] = msal.ConfidentialClientApplication(
                settings.entra_client_id,
                client_credential=settings.entra_client_secret.get_secret_value(),
                authority=f"{settings.entra_authority_host}/{tenant}",
                http_client=MsalHttpClient(client("entra")),
                instance_discovery=False,
                validate_authority=False,
            )
        return _apps[tenant]


def graph_app_token(tenant: str | None = None) -> str:
    """An app-only Graph token for the tenant (from msal's cache when still valid)."""
    with dependency("entra"):
        result = confidential_app(tenant).acquire_token_for_client(scopes=[GRAPH_DEFAULT_SCOPE])
    if "access_token" not in result:
        raise DependencyFailed(
            "Microsoft Entra ID refused the connector's credentials.",
            next_step="Ask IT to check the app registration's client secret and admin consent.",
        )
    return result["access_token"]


def begin_sign_in(redirect_uri: str, tenant: str | None = None, login_hint: str | None = None) -> dict[str, Any]:
    """msal's auth code flow (state, nonce, PKCE); keep it sealed in a cookie until the callback."""
    with dependency("entra"):
        return confidential_app(tenant).initiate_auth_code_flow(
            SIGN_IN_SCOPES, redirect_uri=redirect_uri, login_hint=login_hint, prompt="select_account",
        )


def finish_sign_in(flow: dict[str, Any], params: dict[str, str], tenant: str | None = None) -> dict[str, Any]:
    """Redeem the code and return the verified id_token claims (oid, tid, wids)."""
    return finish_sign_in_with_refresh(flow, params, tenant)[0]


def finish_sign_in_with_refresh(flow: dict[str, Any], params: dict[str, str],
                                tenant: str | None = None) -> tuple[dict[str, Any], str]:
    """Redeem the code: the verified id_token claims and the refresh token (to re-read roles later)."""
    if params.get("error"):
        raise SignInFailed("Microsoft sign-in was cancelled or refused.",
                           next_step="Try again, and sign in with your work account.")
    with dependency("entra"):
        result = confidential_app(tenant).acquire_token_by_auth_code_flow(flow, params)
    if "id_token" not in result:
        raise SignInFailed("Microsoft sign-in could not be completed.",
                           next_step="Try again. If it keeps happening, tell IT (reference below).")
    # msal sends the SHA-256 of the flow's nonce (OIDC nonce notes), so that is what the id_token carries.
    nonce = hashlib.sha256(flow["nonce"].encode("ascii")).hexdigest() if flow.get("nonce") else None
    return verify_entra_id_token(result["id_token"], nonce=nonce), str(result.get("refresh_token", ""))


def refresh_sign_in(refresh_token: str, tenant: str) -> tuple[dict[str, Any], str]:
    """Fresh, verified id_token claims for a signed-in user (Entra issues them with the roles held now)."""
    if not refresh_token:
        raise SignInFailed("Your Microsoft sign-in can no longer be renewed.", next_step="Sign in again.")
    try:
        with dependency("entra"):
            result = confidential_app(tenant).acquire_token_by_refresh_token(refresh_token, scopes=SIGN_IN_SCOPES)
    except ValueError as exc:  # msal could not load the tenant's authority (discovery refused)
        raise DependencyFailed("Microsoft Entra ID did not confirm your roles just now.",
                               next_step="Try again in a minute.") from exc
    if "id_token" not in result:
        if result.get("error") in ("invalid_grant", "interaction_required", "invalid_client"):
            raise SignInFailed("Microsoft no longer accepts your sign-in (your account or its access changed).",
                               next_step="Sign in again.")
        raise DependencyFailed("Microsoft Entra ID did not confirm your roles just now.",
                               next_step="Try again in a minute.")
    claims = verify_entra_id_token(result["id_token"], nonce=None)
    return claims, str(result.get("refresh_token") or refresh_token)


def verify_entra_id_token(id_token: str, nonce: str | None) -> dict[str, Any]:
    """msal checks only state and nonce: verify signature, issuer, audience and expiry ourselves."""
    settings = get_settings()
    try:
        tid = jwt.decode(id_token, options={"verify_signature": False}).get("tid", "")
    except jwt.PyJWTError as exc:
        raise SignInFailed("Microsoft's sign-in answer was malformed.") from exc
    # Refused before any key is fetched: a tenant not on ALLOWED_TENANTS gets nowhere, whatever it signs.
    tid = require_allowed_tenant(tid)
    host = settings.entra_authority_host
    return validate_id_token(
        id_token, jwks_uri=f"{host}/{tid}/discovery/v2.0/keys", issuer=f"{host}/{tid}/v2.0",
        audience=settings.entra_client_id, nonce=nonce, system="entra",
    )
