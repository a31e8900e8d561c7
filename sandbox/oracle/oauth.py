"""Cerner's SMART v1 authorization server: discovery, JWKS and the provider-persona authorize endpoint."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sandbox.oracle.http import (
    auth_base,
    fhir_base,
    form_and_query,
    issuer,
    json_response,
    operation_outcome,
    origin,
)
from sandbox.oracle.state import Client, Launch, OracleState

URN = "urn:cerner:error:authorization-server"
V1_RESOURCE_SCOPE = re.compile(r"^(user|patient|system)/([A-Z][A-Za-z]+)\.(read|write)$")
USER_IDENTITY_SCOPES = ("launch", "launch/patient", "launch/encounter", "openid", "fhirUser", "profile")
RESOURCE_TYPES = ("Appointment", "Patient", "Practitioner", "Location", "Encounter", "Schedule", "Slot")
CAPABILITIES = [
    "authorize-post", "launch-ehr", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "sso-openid-connect", "context-banner", "context-style",
    "context-ehr-patient", "context-ehr-encounter", "permission-patient", "permission-user", "permission-v1",
]


@dataclass(frozen=True)
class AuthorizeError:
    """A refusal that goes back to the app's redirect_uri."""

    error: str
    description: str
    urn: str


def oracle(request: Request) -> OracleState:
    """The state behind this app."""
    return request.app.state.oracle


def unknown_tenant(tenant: str) -> Response:
    """Cerner's answer for a tenant it does not host."""
    return operation_outcome(404, "not-found", f"Tenant not valid or accessible: {tenant}")


def scopes_supported() -> list[str]:
    """The v1 scopes this server grants."""
    resource_scopes = [f"{who}/{kind}.read" for kind in RESOURCE_TYPES for who in ("user", "patient", "system")]
    return [*USER_IDENTITY_SCOPES, *resource_scopes, "user/Appointment.write", "system/Appointment.write"]


def advertised(state: OracleState, request: Request, tenant: str, endpoint: str) -> str:
    """Where discovery says an endpoint is: here, or on the other origin a test switched it to."""
    moved = state.elsewhere(tenant, endpoint)
    here = origin(state, request)
    if endpoint == "jwks":
        return f"{moved or here}/tenants/{tenant}/jwk" if tenant in state.switches else f"{here}/jwk"
    base = auth_base(state, request, tenant).replace(here, moved or here, 1)
    return f"{base}/personas/provider/authorize" if endpoint == "authorize" else f"{base}/token"


async def smart_configuration(request: Request) -> Response:
    """GET {fhir base}/.well-known/smart-configuration in Cerner's shape."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.tenants:
        return unknown_tenant(tenant)
    base = auth_base(state, request, tenant)
    here = origin(state, request)
    body = {
        "issuer": issuer(state, request, tenant),
        "authorization_endpoint": advertised(state, request, tenant, "authorize"),
        "token_endpoint": advertised(state, request, tenant, "token"),
        "revocation_endpoint": f"{base}/token/revoke",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "jwks_uri": advertised(state, request, tenant, "jwks"),
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["code"],
        "management_endpoint": f"{here}/tenants/{tenant}/personas/provider/my-authorizations",
        "introspection_endpoint": f"{here}/tokeninfo",
        "capabilities": CAPABILITIES,
    }
    if state.pkce_advertised:
        body["code_challenge_methods_supported"] = ["S256"]
    return json_response(body)


async def openid_configuration(request: Request) -> Response:
    """GET {issuer}.well-known/openid-configuration like cerner-openid-configuration.json."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.tenants or request.path_params["idsp"] != tenant:
        return unknown_tenant(tenant)
    iss = issuer(state, request, tenant)
    return json_response({
        "response_types_supported": ["code"],
        "request_parameter_supported": False,
        "require_request_uri_registration": False,
        "request_uri_parameter_supported": True,
        "claims_parameter_supported": False,
        "jwks_uri": advertised(state, request, tenant, "jwks"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "issuer": iss,
        "authorization_endpoint": iss,
        "token_endpoint": iss,
    })


async def jwk(request: Request) -> Response:
    """GET /jwk: the public keys that sign id_tokens."""
    return json_response(oracle(request).jwks())


async def tenant_jwk(request: Request) -> Response:
    """GET /tenants/{tenant}/jwk: the key ring of a tenant a test switched (rotation, several keys)."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.switches:
        return unknown_tenant(tenant)
    state.record(request.url.hostname or "", request.url.path, "jwks")
    return json_response(state.jwks(tenant))


async def error_page(request: Request) -> Response:
    """GET /errors/{urn}/...: the human page an error_uri points at."""
    urn = request.path_params["rest"].split("/")[0]
    return page(200, "Authorization error", f"The authorization server refused the request ({urn}).")


async def smart_style(request: Request) -> Response:
    """GET /styles/smart-v1.json: PowerChart's SMART style (context-style)."""
    return json_response({"color_background": "#edeae3", "color_error": "#9e2d2d", "color_highlight": "#69b5ce",
                          "color_modal_backdrop": "", "color_success": "#498e49", "color_text": "#303030",
                          "dim_border_radius": "6px", "dim_font_size": "13px", "dim_spacing_size": "20px",
                          "font_family_body": "Georgia, Times, 'Times New Roman', serif",
                          "font_family_heading": "'HelveticaNeue-Light', Helvetica, Arial, sans-serif"})


def page(status: int, title: str, message: str) -> HTMLResponse:
    """A small HTML page, as the real server shows when it cannot redirect."""
    body = (f"<!doctype html><html><head><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return HTMLResponse(body, status)


def with_query(url: str, params: dict[str, str]) -> str:
    """Add query parameters to a URL that may already carry some."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def registered_redirect(client: Client, requested: str | None) -> str | None:
    """The redirect URI to use: the requested one if registered, the only one if none was sent."""
    if requested:
        return requested if requested in client.redirect_uris else None
    return client.redirect_uris[0] if len(client.redirect_uris) == 1 else None


def requested_scopes(raw: str) -> list[str]:
    """Scopes as sent, without duplicates, order kept."""
    return list(dict.fromkeys(raw.split()))


def grantable_user_scopes(scopes: list[str]) -> list[str]:
    """Identity and user/patient v1 scopes; system and v2 scopes are silently not granted (as Cerner does)."""
    return [s for s in scopes if s in USER_IDENTITY_SCOPES
            or ((m := V1_RESOURCE_SCOPE.match(s)) is not None and m.group(1) != "system")]


def check_pkce(state: OracleState, params: dict[str, str]) -> AuthorizeError | None:
    """S256 only; `plain` (also the default when a challenge comes without a method) is refused."""
    if not state.pkce_advertised:
        return None
    challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
    if challenge is None and method is None:
        return None
    if method != "S256" or not challenge or not 43 <= len(challenge) <= 128:
        return AuthorizeError("invalid_request", "code_challenge_method must be S256 with a valid code_challenge",
                              f"{URN}:oauth2:grant:invalid-code-challenge")
    return None


def check_request(state: OracleState, request: Request, tenant: str, params: dict[str, str]) -> AuthorizeError | None:
    """Everything that is refused by redirecting back to the app, in Cerner's order."""
    if params.get("response_type") != "code":
        return AuthorizeError("unsupported_response_type", "response_type must be code",
                              f"{URN}:oauth2:grant:unsupported-response-type")
    if params.get("aud", "").rstrip("/") != fhir_base(state, request, tenant):
        return AuthorizeError("invalid_request", "aud is missing or is not this tenant's FHIR base URL",
                              f"{URN}:oauth2:grant:invalid-audience")
    if any("*" in scope for scope in requested_scopes(params.get("scope", ""))):
        return AuthorizeError("invalid_scope", "wildcard scopes are not supported", f"{URN}:oauth2:grant:invalid-scope")
    return check_pkce(state, params)


def error_redirect(request: Request, redirect_uri: str, problem: AuthorizeError, params: dict[str, str],
                   tenant: str) -> Response:
    """302 back to the app with error, error_description, error_uri and its state."""
    error_uri = with_query(f"{origin(oracle(request), request)}/errors/{problem.urn}/requests/{uuid.uuid4()}",
                           {"client": params.get("client_id", ""), "tenant": tenant})
    query = {"error": problem.error, "error_description": problem.description, "error_uri": error_uri}
    if "state" in params:
        query["state"] = params["state"]
    return RedirectResponse(with_query(redirect_uri, query), 302)


def approve(state: OracleState, request: Request, tenant: str, params: dict[str, str]) -> Launch | AuthorizeError:
    """The launch to authorize, or why the request goes back to the app with an error."""
    problem = check_request(state, request, tenant, params)
    if problem is None and state.deny_next_authorization:
        state.deny_next_authorization = False
        problem = AuthorizeError("access_denied", "the user may not authorize this application",
                                 f"{URN}:oauth2:grant:denied-by-server")
    if problem is not None:
        return problem
    launch = state.take_launch(params.get("launch", ""), tenant)
    if launch is None:
        return AuthorizeError("invalid_request", "a valid launch code is required",
                              f"{URN}:smart-v1:grant:launch:code-required")
    return launch


async def authorize(request: Request) -> Response:
    """GET/POST .../personas/provider/authorize: the signed-in PowerChart user approves at once."""
    state, tenant = oracle(request), request.path_params["tenant"]
    params = await form_and_query(request)
    state.record(request.url.hostname or "", request.url.path, "authorize")
    if tenant not in state.tenants:
        return page(404, "Unknown tenant", "This tenant is not hosted here.")
    client = state.client(params.get("client_id", ""))
    if client is None or not client.redirect_uris:
        return page(400, "Invalid request", "The client_id is not registered for this tenant.")
    redirect_uri = registered_redirect(client, params.get("redirect_uri"))
    if redirect_uri is None:
        return page(400, "Invalid request", "The redirect_uri is not registered for this application.")
    launch = approve(state, request, tenant, params)
    if isinstance(launch, AuthorizeError):
        return error_redirect(request, redirect_uri, launch, params, tenant)
    code = state.new_code(
        client_id=client.client_id, tenant=tenant, redirect_uri=params.get("redirect_uri"),
        scopes=grantable_user_scopes(requested_scopes(params.get("scope", ""))), launch=launch,
        code_challenge=params.get("code_challenge") if state.pkce_advertised else None, nonce=params.get("nonce"),
    )
    query = {"code": code, **({"state": params["state"]} if "state" in params else {})}
    return RedirectResponse(with_query(redirect_uri, query), 302)
