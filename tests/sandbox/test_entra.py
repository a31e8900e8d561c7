"""The Entra ID stand-in speaks OIDC as Entra does: real msal works against it unchanged."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import msal
import pytest

from sandbox.config import ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET, ENTRA_TENANT_ID, GLOBAL_ADMIN, OTHER_TENANT_ID
from sandbox.entra import (
    ADMIN_OID,
    ADMIN_UPN,
    APP_ROLES,
    MEMBER_USER_WID,
    OTHER_ADMIN_OID,
    OTHER_ADMIN_UPN,
    PROVIDER_OID,
    PROVIDER_UPN,
    EntraState,
    InvalidAccessToken,
    build_app,
)
from sandbox.servers import free_port, serve

REDIRECT_URI = "https://localhost:7071/api/portal/auth/callback"
GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]
# What the app passes to msal against the stand-in (the authority is not a Microsoft host).
MSAL_ARGS = {"instance_discovery": False}


@pytest.fixture(scope="module")
def entra(dev_ca) -> Iterator[tuple[EntraState, str]]:
    state = EntraState(redirect_uris=[REDIRECT_URI])
    server = serve(build_app(state), free_port(), dev_ca)
    yield state, f"https://localhost:{server.port}"
    server.stop()


@pytest.fixture
def state(entra) -> Iterator[EntraState]:
    entra[0].auto_sign_in_upn = None
    entra[0].faults.clear()
    yield entra[0]
    entra[0].auto_sign_in_upn = None


@pytest.fixture
def origin(entra) -> str:
    return entra[1]


@pytest.fixture
def confidential_app(origin) -> Iterator[Callable[..., msal.ConfidentialClientApplication]]:
    """Builds msal apps for the stand-in; closes their keep-alive connections (or the server's stop waits)."""
    apps: list[msal.ConfidentialClientApplication] = []

    def build(tenant: str = ENTRA_TENANT_ID, **kwargs) -> msal.ConfidentialClientApplication:
        authority = {} if "oidc_authority" in kwargs else {"authority": f"{origin}/{tenant}"}
        apps.append(msal.ConfidentialClientApplication(
            ENTRA_CLIENT_ID, client_credential=ENTRA_CLIENT_SECRET, **authority, **(kwargs or MSAL_ARGS)))
        return apps[-1]

    yield build
    for app in apps:
        app.http_client.close()


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return dict(parse_qsl(urlsplit(location).query))


def id_token_claims(origin: str, tenant: str, id_token: str) -> dict:
    """Verify the id_token as a careful app does: JWKS signature, audience, issuer."""
    jwks = httpx.get(f"{origin}/{tenant}/discovery/v2.0/keys").json()
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(id_token, key, algorithms=["RS256"], audience=ENTRA_CLIENT_ID)
    assert claims["iss"] == f"{origin}/{claims['tid']}/v2.0"
    return claims


def authorize_url(origin: str, tenant: str = ENTRA_TENANT_ID, **params: str) -> str:
    query = {"client_id": ENTRA_CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT_URI,
             "scope": "openid profile offline_access User.Read", "state": "s-123", **params}
    return str(httpx.URL(f"{origin}/{tenant}/oauth2/v2.0/authorize", params=query))


def redeem(origin: str, code: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "client_id": ENTRA_CLIENT_ID, "client_secret": ENTRA_CLIENT_SECRET,
            "code": code, "redirect_uri": REDIRECT_URI, **extra}
    return httpx.post(f"{origin}/{ENTRA_TENANT_ID}/oauth2/v2.0/token", data=form)


@pytest.mark.parametrize("msal_args", [
    {"instance_discovery": False},
    {"validate_authority": False},
    {"instance_discovery": False, "validate_authority": False},
], ids=["instance_discovery=False", "validate_authority=False", "both"])
def test_msal_client_credentials_gets_an_app_only_graph_token(state, origin, msal_args, confidential_app):
    app = confidential_app(**msal_args)
    before = state.requests["token:client_credentials"]

    result = app.acquire_token_for_client(GRAPH_DEFAULT)
    again = app.acquire_token_for_client(GRAPH_DEFAULT)

    claims = state.verify_access_token(result["access_token"])
    assert claims["idtyp"] == "app" and claims["tid"] == ENTRA_TENANT_ID
    assert claims["aud"] == "https://graph.microsoft.com" and claims["appid"] == ENTRA_CLIENT_ID
    assert sorted(claims["roles"]) == sorted(APP_ROLES)
    assert again["token_source"] == "cache"
    assert state.requests["token:client_credentials"] == before + 1


def test_msal_oidc_authority_works_too(state, origin, confidential_app):
    app = confidential_app(oidc_authority=f"{origin}/{ENTRA_TENANT_ID}/v2.0")
    assert "access_token" in app.acquire_token_for_client(GRAPH_DEFAULT)


def test_client_credentials_accepts_the_standin_graph_origin_as_resource(state, origin, confidential_app):
    result = confidential_app().acquire_token_for_client(["https://localhost:8443/.default"])
    assert state.verify_access_token(result["access_token"])["roles"]


def test_client_credentials_needs_a_tenant_and_a_default_scope(state, origin, confidential_app):
    no_tenant = confidential_app("organizations").acquire_token_for_client(GRAPH_DEFAULT)
    bad_scope = confidential_app().acquire_token_for_client(["https://graph.microsoft.com/User.Read"])
    assert no_tenant["error"] == "invalid_request" and 50059 in no_tenant["error_codes"]
    assert bad_scope["error"] == "invalid_scope" and bad_scope["error_description"].startswith("AADSTS1002012")


@pytest.mark.parametrize(("tenant", "upn", "oid", "tid"), [
    (ENTRA_TENANT_ID, ADMIN_UPN, ADMIN_OID, ENTRA_TENANT_ID),
    ("organizations", OTHER_ADMIN_UPN, OTHER_ADMIN_OID, OTHER_TENANT_ID),
])
def test_msal_auth_code_flow_with_pkce_signs_the_user_in(state, origin, tenant, upn, oid, tid, confidential_app):
    app = confidential_app(tenant)
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI, login_hint=upn)
    assert "code_challenge_method=S256" in flow["auth_uri"]

    response = httpx.get(flow["auth_uri"])
    params = redirect_params(response)
    result = app.acquire_token_by_auth_code_flow(flow, params)

    assert "session_state" in params and params["state"] == flow["state"]
    claims = id_token_claims(origin, tenant, result["id_token"])
    assert (claims["oid"], claims["tid"], claims["preferred_username"]) == (oid, tid, upn)
    assert GLOBAL_ADMIN in claims["wids"] and MEMBER_USER_WID in claims["wids"]
    access = state.verify_access_token(result["access_token"])
    assert access["oid"] == oid and GLOBAL_ADMIN in access["wids"] and "User.Read" in access["scp"].split()
    assert app.get_accounts()[0]["home_account_id"] == f"{oid}.{tid}"


def test_msal_refreshes_with_the_refresh_token(state, origin, confidential_app):
    app = confidential_app()
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI, login_hint=PROVIDER_UPN)
    app.acquire_token_by_auth_code_flow(flow, redirect_params(httpx.get(flow["auth_uri"])))
    before = state.requests["token:refresh_token"]

    refreshed = app.acquire_token_silent(["User.Read"], app.get_accounts()[0], force_refresh=True)

    assert state.verify_access_token(refreshed["access_token"])["oid"] == PROVIDER_OID
    assert state.requests["token:refresh_token"] == before + 1


def test_a_refresh_reports_the_roles_held_now_and_fails_for_a_deleted_user(state, origin, confidential_app):
    app = confidential_app()
    flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI, login_hint=ADMIN_UPN)
    first = app.acquire_token_by_auth_code_flow(flow, redirect_params(httpx.get(flow["auth_uri"])))
    admin = state.user_by_oid(ADMIN_OID)
    try:
        state.add_user(replace(admin, wids=(MEMBER_USER_WID,)))  # the Global Administrator role removed
        demoted = app.acquire_token_by_refresh_token(first["refresh_token"], ["User.Read"])
        assert GLOBAL_ADMIN not in id_token_claims(origin, ENTRA_TENANT_ID, demoted["id_token"])["wids"]
        with state.lock:
            state.users = [u for u in state.users if u.oid != ADMIN_OID]  # the account deleted
        deleted = app.acquire_token_by_refresh_token(first["refresh_token"], ["User.Read"])
        assert deleted["error"] == "invalid_grant" and 50034 in deleted["error_codes"]
    finally:
        state.add_user(admin)


def test_auto_sign_in_user_needs_no_page(state, origin):
    state.auto_sign_in_upn = PROVIDER_UPN
    params = redirect_params(httpx.get(authorize_url(origin)))
    assert state.sign_ins[-1].oid == PROVIDER_OID
    assert redeem(origin, params["code"]).status_code == 200


def test_account_picker_lists_the_tenant_users_and_signs_in_the_chosen_one(state, origin):
    page = httpx.get(authorize_url(origin, nonce="n-1"))
    assert page.status_code == 200 and "Dr. Meredith Grey" in page.text and OTHER_ADMIN_UPN not in page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))

    response = httpx.post(authorize_url(origin), data={**hidden, "login_hint": ADMIN_UPN})
    tokens = redeem(origin, redirect_params(response)["code"]).json()

    claims = id_token_claims(origin, ENTRA_TENANT_ID, tokens["id_token"])
    assert claims["oid"] == ADMIN_OID and claims["nonce"] == "n-1"
    client_info = base64.urlsafe_b64decode(tokens["client_info"] + "==").decode()
    assert ADMIN_OID in client_info and ENTRA_TENANT_ID in client_info


def test_multi_tenant_picker_lists_every_tenant(state, origin):
    page = httpx.get(authorize_url(origin, "organizations"))
    assert PROVIDER_UPN in page.text and OTHER_ADMIN_UPN in page.text


def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(state, origin):
    response = httpx.get(authorize_url(origin, redirect_uri="https://evil.example/cb", login_hint=PROVIDER_UPN))
    assert response.status_code == 400 and "location" not in response.headers
    assert "AADSTS50011" in response.text


def test_unknown_client_gets_an_error_page(state, origin):
    response = httpx.get(authorize_url(origin, client_id="00000000-0000-0000-0000-000000000000"))
    assert response.status_code == 400 and "AADSTS700016" in response.text


def test_registered_redirect_uri_can_be_added(state, origin):
    extra = "https://localhost:7071/api/other/callback"
    state.add_redirect_uri(extra)
    response = httpx.get(authorize_url(origin, redirect_uri=extra, login_hint=PROVIDER_UPN))
    assert response.status_code == 302 and response.headers["location"].startswith(extra + "?code=")


def test_only_s256_is_accepted_as_code_challenge_method(state, origin):
    response = httpx.get(authorize_url(origin, login_hint=PROVIDER_UPN, code_challenge="abc",
                                       code_challenge_method="plain"))
    params = redirect_params(response)
    assert params["error"] == "invalid_request" and "code" not in params and params["state"] == "s-123"


def test_form_post_response_mode_posts_the_code_back(state, origin):
    response = httpx.get(authorize_url(origin, login_hint=PROVIDER_UPN, response_mode="form_post"))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', response.text))
    assert response.status_code == 200 and f'action="{REDIRECT_URI}"' in response.text
    assert fields["state"] == "s-123" and redeem(origin, fields["code"]).status_code == 200


def test_silent_request_without_a_user_reports_login_required(state, origin):
    params = redirect_params(httpx.get(authorize_url(origin, prompt="none")))
    assert params["error"] == "login_required" and params["state"] == "s-123"


def test_rotated_key_is_published_and_old_tokens_still_verify(state, origin):
    old_token = state.mint_app_token()
    new_kid = state.rotate_signing_key()
    code = redirect_params(httpx.get(authorize_url(origin, login_hint=PROVIDER_UPN)))["code"]
    id_token = redeem(origin, code).json()["id_token"]
    assert jwt.get_unverified_header(id_token)["kid"] == new_kid
    assert id_token_claims(origin, ENTRA_TENANT_ID, id_token)["oid"] == PROVIDER_OID
    assert state.verify_access_token(old_token)["idtyp"] == "app"


def test_code_is_single_use(state, origin):
    code = redirect_params(httpx.get(authorize_url(origin, login_hint=PROVIDER_UPN)))["code"]
    assert redeem(origin, code).status_code == 200

    replay = redeem(origin, code)

    body = replay.json()
    assert replay.status_code == 400 and body["error"] == "invalid_grant" and body["error_codes"] == [54005]
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()
    assert body["error_description"].startswith("AADSTS54005:")


def test_pkce_verifier_must_match_the_challenge(state, origin):
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    url = authorize_url(origin, login_hint=PROVIDER_UPN, code_challenge=challenge.decode(),
                        code_challenge_method="S256")
    wrong = redeem(origin, redirect_params(httpx.get(url))["code"], code_verifier="w" * 50)
    right = redeem(origin, redirect_params(httpx.get(url))["code"], code_verifier=verifier)
    assert wrong.status_code == 400 and wrong.json()["error_codes"] == [501481]
    assert right.status_code == 200


def test_redirect_uri_at_the_token_endpoint_must_match(state, origin):
    code = redirect_params(httpx.get(authorize_url(origin, login_hint=PROVIDER_UPN)))["code"]
    response = redeem(origin, code, redirect_uri="https://localhost:7071/elsewhere")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_client_secret_is_checked_and_basic_auth_works(state, origin):
    token_url = f"{origin}/{ENTRA_TENANT_ID}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]}
    wrong = httpx.post(token_url, data={**form, "client_id": ENTRA_CLIENT_ID, "client_secret": "nope"})
    basic = httpx.post(token_url, data=form, auth=(ENTRA_CLIENT_ID, ENTRA_CLIENT_SECRET))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert basic.status_code == 200 and basic.json()["token_type"] == "Bearer"


def test_discovery_of_an_unknown_tenant_fails_like_entra(state, origin):
    response = httpx.get(f"{origin}/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400 and response.json()["error_codes"] == [90002]


def test_logout_returns_to_the_app_only(state, origin):
    back = httpx.get(f"{origin}/{ENTRA_TENANT_ID}/oauth2/v2.0/logout",
                     params={"post_logout_redirect_uri": "https://localhost:7071/api/portal/"})
    foreign = httpx.get(f"{origin}/{ENTRA_TENANT_ID}/oauth2/v2.0/logout",
                        params={"post_logout_redirect_uri": "https://evil.example/"})
    assert back.status_code == 302 and back.headers["location"] == "https://localhost:7071/api/portal/"
    assert foreign.status_code == 200 and "signed out" in foreign.text


def test_injected_fault_answers_once_then_recovers(state, origin):
    state.fail_next("/oauth2/v2.0/token", 503, count=1, retry_after=2)
    token_url = f"{origin}/{ENTRA_TENANT_ID}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0], "client_id": ENTRA_CLIENT_ID,
            "client_secret": ENTRA_CLIENT_SECRET}
    failed, recovered = httpx.post(token_url, data=form), httpx.post(token_url, data=form)
    assert failed.status_code == 503 and failed.headers["retry-after"] == "2"
    assert failed.json()["error"] == "temporarily_unavailable"
    assert recovered.status_code == 200


def test_access_tokens_are_refused_when_expired_or_forged(state):
    token = state.mint_app_token()
    forged = jwt.encode({"tid": ENTRA_TENANT_ID}, "k" * 32, algorithm="HS256",
                        headers={"kid": jwt.get_unverified_header(token)["kid"]})
    real_clock = state.clock
    state.clock = lambda: real_clock() + 2 * state.token_lifetime_seconds
    try:
        with pytest.raises(InvalidAccessToken):
            state.verify_access_token(token)
    finally:
        state.clock = real_clock
    with pytest.raises(InvalidAccessToken):
        state.verify_access_token(forged)
    assert state.verify_access_token(token)["tid"] == ENTRA_TENANT_ID
