"""The Entra stand-in over HTTP: discovery, JWKS, authorize (account picker), token and logout."""

from __future__ import annotations

import html
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.entra.directory import MULTI_TENANT_PATHS, EntraUser
from sandbox.entra.protocol import AadError
from sandbox.entra.state import EntraState

Endpoint = Callable[[Request], Awaitable[Response]]


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: the stand-in has no multipart dependency)."""
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def aad_error_response(error: AadError, request: Request) -> JSONResponse:
    """An error in the shape Entra's token endpoint uses."""
    trace_id, correlation_id = str(uuid.uuid4()), request.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    description = (f"AADSTS{error.code}: {error.message} Trace ID: {trace_id} "
                   f"Correlation ID: {correlation_id} Timestamp: {stamp}")
    body = {
        "error": error.error, "error_description": description, "error_codes": [error.code],
        "timestamp": stamp, "trace_id": trace_id, "correlation_id": correlation_id,
        "error_uri": f"{_origin(request)}/error?code={error.code}",
    }
    return JSONResponse(body, status_code=error.status, headers={"Cache-Control": "no-store"})


def _instrument(state: EntraState, name: str, endpoint: Endpoint) -> Endpoint:
    """Count the request under `name` and answer with a planned fault when one matches its path."""

    async def wrapped(request: Request) -> Response:
        with state.lock:
            state.requests[name] += 1
        fault = state.faults.take(request.url.path)
        if fault is not None:
            error = "temporarily_unavailable" if fault.status >= 500 else "invalid_request"
            response = aad_error_response(AadError(fault.status, error, 90033, "Injected fault."), request)
            response.headers.update(fault.headers)
            return response
        return await endpoint(request)

    return wrapped


def _openid_configuration(origin: str, tenant: str, tid: str) -> dict:
    path = tenant if tid in MULTI_TENANT_PATHS else tid
    base = f"{origin}/{path}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{origin}/{'{tenantid}' if tid in MULTI_TENANT_PATHS else tid}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                             "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    style = ("body{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2;margin:0}"
             "main{max-width:440px;margin:48px auto;background:#fff;padding:32px;box-shadow:0 2px 6px #0003}"
             "button.account{display:block;width:100%;text-align:left;padding:12px;margin:6px 0;"
             "border:1px solid #ccc;background:#fff;cursor:pointer}button.account:hover{background:#eef}"
             ".upn{color:#555;font-size:90%}.error{color:#a80000}")
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"<style>{style}</style></head><body><main><p>Microsoft (sandbox)</p>{body}</main></body></html>")
    return HTMLResponse(document, status_code=status)


def _error_page(error: AadError) -> HTMLResponse:
    body = ("<h1>Sign in</h1><p>Sorry, but we&rsquo;re having trouble signing you in.</p>"
            f'<p class="error" id="error">AADSTS{error.code}: {html.escape(error.message)}</p>')
    return _page("Sign in to your account", body, status=error.status)


def _picker_page(users: list[EntraUser], params: dict[str, str], notice: str | None) -> HTMLResponse:
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in params.items() if k != "login_hint")
    buttons = "".join(
        f'<button class="account" type="submit" name="login_hint" value="{html.escape(u.upn)}">'
        f'<span class="name">{html.escape(u.name)}</span><br><span class="upn">{html.escape(u.upn)}</span></button>'
        for u in users
    )
    note = f'<p class="error">{html.escape(notice)}</p>' if notice else ""
    body = f'<h1>Pick an account</h1>{note}<form method="post">{hidden}{buttons}</form>'
    return _page("Sign in to your account", body)


def _respond_to_client(params: dict[str, str], fields: dict[str, str]) -> Response:
    """Send the authorization response (code or error) back to the client's redirect URI."""
    redirect_uri, mode = params["redirect_uri"], params.get("response_mode", "query")
    if "state" in params:
        fields = {**fields, "state": params["state"]}
    if mode == "form_post":
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        body = (f'<form method="post" action="{html.escape(redirect_uri)}">{inputs}'
                "<noscript><button>Continue</button></noscript></form>"
                "<script>document.forms[0].submit()</script>")
        return _page("Working...", body)
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(fields)}", status_code=302)


def _authorize_endpoint(state: EntraState) -> Endpoint:
    async def authorize(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await _form(request))
        page_error = state.check_client_and_redirect(tenant, params)
        if page_error is not None:
            return _error_page(page_error)
        try:
            state.check_authorize_request(params)
            user = state.pick_user(tenant, params)
            if user is None:
                return _no_user_yet(state, tenant, params)
            code = state.issue_code(user, params)
        except AadError as error:
            return _respond_to_client(params, {"error": error.error, "error_description":
                                               f"AADSTS{error.code}: {error.message}"})
        return _respond_to_client(params, {"code": code, "session_state": str(uuid.uuid4())})

    return authorize


def _no_user_yet(state: EntraState, tenant: str, params: dict[str, str]) -> Response:
    """Without a user to sign in: the account picker, or login_required when the app asked for no prompt."""
    if params.get("prompt") == "none":
        raise AadError(400, "login_required", 50058, "A silent sign-in request was sent but no user is "
                       "signed in.")
    notice = "We couldn't find an account with that username." if params.get("login_hint") else None
    return _picker_page(state.users_in(tenant), params, notice)


def _token_endpoint(state: EntraState) -> Endpoint:
    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        form = await _form(request)
        grant_type = form.get("grant_type", "")
        with state.lock:
            state.requests[f"token:{grant_type}"] += 1
        try:
            return JSONResponse(_grant(state, request, tenant, form), headers={"Cache-Control": "no-store"})
        except AadError as error:
            return aad_error_response(error, request)

    return token


def _grant(state: EntraState, request: Request, tenant: str, form: dict[str, str]) -> dict:
    if state.resolve_tenant(tenant) is None:
        raise AadError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    client_id = state.authenticate_client(form, request.headers.get("authorization"))
    grant_type = form.get("grant_type", "")
    if grant_type == "client_credentials":
        return state.client_credentials(tenant, form)
    if grant_type == "authorization_code":
        return state.redeem_code(_origin(request), client_id, form)
    if grant_type == "refresh_token":
        return state.redeem_refresh_token(_origin(request), client_id, form)
    raise AadError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                   f"'{grant_type}'.")


def _discovery_endpoint(state: EntraState) -> Endpoint:
    async def openid_configuration(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        tid = state.resolve_tenant(tenant)
        if tid is None:
            return aad_error_response(AadError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. "
                                               "Check to make sure you have the correct tenant ID."), request)
        return JSONResponse(_openid_configuration(_origin(request), tenant, tid))

    return openid_configuration


def _keys_endpoint(state: EntraState) -> Endpoint:
    async def keys(request: Request) -> Response:
        return JSONResponse(state.public_jwks, headers={"Cache-Control": "max-age=86400, private"})

    return keys


def _logout_endpoint(state: EntraState) -> Endpoint:
    async def logout(request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri", "")
        if target and _same_origin_as_registered(state, target):
            return RedirectResponse(target, status_code=302)
        return _page("Sign out", "<h1>You signed out of your account</h1>"
                     "<p>It&rsquo;s a good idea to close all browser windows.</p>")

    return logout


def _same_origin_as_registered(state: EntraState, target: str) -> bool:
    """Entra only sends people back to the app; we accept any URL on a registered redirect URI's origin."""
    wanted = urlsplit(target)
    return any(urlsplit(uri)[:2] == wanted[:2] for uri in state.redirect_uris)


async def no_favicon(request: Request) -> Response:
    """Browsers ask for one; an empty answer keeps their consoles free of 404s."""
    return Response(status_code=204)


def build_app(state: EntraState) -> Starlette:
    """The Entra ID stand-in as an ASGI app."""
    routes = [
        ("/{tenant}/v2.0/.well-known/openid-configuration", "openid-configuration", _discovery_endpoint, ["GET"]),
        ("/{tenant}/discovery/v2.0/keys", "keys", _keys_endpoint, ["GET"]),
        ("/{tenant}/oauth2/v2.0/authorize", "authorize", _authorize_endpoint, ["GET", "POST"]),
        ("/{tenant}/oauth2/v2.0/token", "token", _token_endpoint, ["POST"]),
        ("/{tenant}/oauth2/v2.0/logout", "logout", _logout_endpoint, ["GET", "POST"]),
    ]
    return Starlette(routes=[
        *(Route(path, _instrument(state, name, factory(state)), methods=methods, name=name)
          for path, name, factory, methods in routes),
        Route("/favicon.ico", no_favicon),
    ])
