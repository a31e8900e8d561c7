"""Cerner's SMART v1 token endpoint: authorization_code (public/Basic) and client_credentials (Basic/JWT)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import jwt
from starlette.requests import Request
from starlette.responses import Response

from sandbox.oracle.http import NO_STORE, auth_base, fhir_base, issuer, json_response, oauth_error, origin
from sandbox.oracle.oauth import V1_RESOURCE_SCOPE, oracle, requested_scopes
from sandbox.oracle.state import SYSTEM_TOKEN_SECONDS, USER_TOKEN_SECONDS, AuthCode, Client, OracleState

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ("RS384", "ES384")
MAX_ASSERTION_SECONDS = 300
CLOCK_SKEW_SECONDS = 5
ID_TOKEN_SECONDS = 300
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
LAUNCH_SCOPES = ("launch", "launch/patient", "launch/encounter")


class ClientAuthError(Exception):
    """Client authentication failed (invalid_client)."""

    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.description = description
        self.status = status


async def token(request: Request) -> Response:
    """POST .../smart-v1/token (application/x-www-form-urlencoded)."""
    state, tenant = oracle(request), request.path_params["tenant"]
    if tenant not in state.tenants:
        return oauth_error("invalid_request", "tenant not valid or accessible", 404)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded")
    params = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace"), keep_blank_values=True))
    record_credentials(state, request, params)
    try:
        if params.get("grant_type") == "authorization_code":
            return code_grant(state, request, tenant, params)
        if params.get("grant_type") == "client_credentials":
            return client_credentials_grant(state, request, tenant, params)
    except ClientAuthError as refused:
        challenge = {"WWW-Authenticate": 'Basic realm="smart-v1"'} if refused.status == 401 else {}
        return oauth_error("invalid_client", refused.description, refused.status, challenge)
    return oauth_error("unsupported_grant_type", "grant_type must be authorization_code or client_credentials")


def record_credentials(state: OracleState, request: Request, params: dict[str, str]) -> None:
    """Note which credentials reached this host name (tests assert none reach an untrusted one)."""
    sent = ["basic"] if request.headers.get("authorization", "").lower().startswith("basic ") else []
    sent += [kind for kind in ("client_assertion", "client_secret", "code") if params.get(kind)]
    state.record(request.url.hostname or "", request.url.path, *sent)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(client_id, secret) from an Authorization: Basic header, or None when there is none."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ClientAuthError("malformed Basic credentials", 401) from None
    if not sep:
        raise ClientAuthError("malformed Basic credentials", 401)
    return unquote(client_id), unquote(secret)


def authenticate_basic(state: OracleState, credentials: tuple[str, str]) -> Client:
    """The client whose id and secret match, else invalid_client (401)."""
    client = state.client(credentials[0])
    if client is None or client.secret is None or not hmac.compare_digest(client.secret, credentials[1]):
        raise ClientAuthError("client authentication failed", 401)
    return client


def code_client(state: OracleState, request: Request, params: dict[str, str]) -> Client:
    """The client of a code exchange: public by client_id, or confidential by Basic."""
    credentials = basic_credentials(request)
    if credentials is not None:
        return authenticate_basic(state, credentials)
    client = state.client(params.get("client_id", ""))
    if client is None:
        raise ClientAuthError("unknown client_id")
    if client.secret is not None:
        raise ClientAuthError("this client must authenticate with client_secret_basic", 401)
    return client


def code_problem(state: OracleState, record: AuthCode | None, replayed: bool, client: Client, tenant: str,
                 params: dict[str, str]) -> str | None:
    """Why a code cannot be exchanged, or None when it can."""
    if record is None or replayed:
        return "the authorization code is invalid or was used already"
    if record.expires_at <= state.now():
        return "the authorization code has expired"
    if record.client_id != client.client_id or record.tenant != tenant:
        return "the authorization code was issued to another client or tenant"
    if record.redirect_uri != params.get("redirect_uri"):
        return "redirect_uri does not match the authorization request"
    return pkce_problem(state, record, params.get("code_verifier"))


def pkce_problem(state: OracleState, record: AuthCode, verifier: str | None) -> str | None:
    """S256 check of the code_verifier; a missing challenge is refused only when PKCE is required."""
    if record.code_challenge is None:
        if state.pkce_advertised and state.pkce_required:
            return "PKCE is required: the authorization request had no code_challenge"
        return None
    if verifier is None or not VERIFIER.match(verifier):
        return "code_verifier is missing or malformed"
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return None if hmac.compare_digest(digest, record.code_challenge) else "code_verifier does not match"


def code_grant(state: OracleState, request: Request, tenant: str, params: dict[str, str]) -> Response:
    """Exchange an authorization code for an access token, id_token and launch context."""
    client = code_client(state, request, params)
    record, replayed = state.take_code(params.get("code", ""))
    problem = code_problem(state, record, replayed, client, tenant, params)
    if problem is not None:
        return oauth_error("invalid_grant", problem)
    assert record is not None
    return json_response(user_token_body(state, request, record), headers=NO_STORE)


def user_token_body(state: OracleState, request: Request, record: AuthCode) -> dict[str, Any]:
    """Token response with the launch context (patient, encounter, fhirContext, banner, style, tenant)."""
    launch = record.launch
    access = state.issue_token(record.tenant, record.scopes, record.client_id, seconds=USER_TOKEN_SECONDS,
                               practitioner_id=launch.practitioner_id)
    record.access_token = access.token
    body: dict[str, Any] = {"access_token": access.token, "token_type": "Bearer", "expires_in": USER_TOKEN_SECONDS,
                            "scope": " ".join(record.scopes)}
    if "openid" in record.scopes:
        body["id_token"] = id_token(state, request, record)
    if any(scope in record.scopes for scope in LAUNCH_SCOPES):
        context = {"patient": launch.patient_id, "encounter": launch.encounter_id}
        body.update({key: value for key, value in context.items() if value is not None})
        if launch.appointment_id is not None:
            body["fhirContext"] = [{"reference": f"Appointment/{launch.appointment_id}"}]
    body.update({"need_patient_banner": False, "smart_style_url": f"{origin(state, request)}/styles/smart-v1.json",
                 "tenant": record.tenant})
    return body


def id_token(state: OracleState, request: Request, record: AuthCode) -> str:
    """RS256 id_token with Cerner's claims (iss, sub, aud, fhirUser, name, iat, exp, nonce)."""
    practitioner_id = record.launch.practitioner_id
    practitioner = state.resource("Practitioner", practitioner_id, record.tenant) or {}
    issued = int(state.now().timestamp())
    claims: dict[str, Any] = {
        "iss": issuer(state, request, record.tenant),
        "sub": state.username(practitioner_id, record.tenant),
        "aud": record.client_id,
        "name": practitioner.get("name", [{}])[0].get("text", ""),
        "iat": issued,
        "exp": issued + ID_TOKEN_SECONDS,
    }
    if "fhirUser" in record.scopes:
        claims["fhirUser"] = f"{fhir_base(state, request, record.tenant)}/Practitioner/{practitioner_id}"
    if record.nonce is not None:
        claims["nonce"] = record.nonce
    return state.sign(claims, record.tenant)


def client_credentials_grant(state: OracleState, request: Request, tenant: str, params: dict[str, str]) -> Response:
    """A system token for a Basic-secret or private_key_jwt system account."""
    client = system_client(state, request, tenant, params)
    scopes = requested_scopes(params.get("scope", ""))
    if not scopes or any("*" in scope for scope in scopes):
        return oauth_error("invalid_scope", "request each scope explicitly; wildcard scopes are not supported")
    unsupported = [s for s in scopes if not ((m := V1_RESOURCE_SCOPE.match(s)) and m.group(1) == "system")]
    if unsupported:
        return oauth_error("invalid_scope", f"unsupported scope: {unsupported[0]}")
    access = state.issue_token(tenant, scopes, client.client_id)
    body = {"access_token": access.token, "token_type": "Bearer", "expires_in": SYSTEM_TOKEN_SECONDS,
            "scope": " ".join(scopes)}
    return json_response(body, headers=NO_STORE)


def system_client(state: OracleState, request: Request, tenant: str, params: dict[str, str]) -> Client:
    """Authenticate a system account by Basic or by a client assertion."""
    credentials = basic_credentials(request)
    if credentials is not None:
        return authenticate_basic(state, credentials)
    if params.get("client_assertion_type") == JWT_BEARER and params.get("client_assertion"):
        return verify_assertion(state, f"{auth_base(state, request, tenant)}/token", params["client_assertion"])
    raise ClientAuthError("client authentication is required (Basic or private_key_jwt)", 401)


def assertion_key(client: Client, header: dict[str, Any]) -> Any:
    """The client's registered public key named by the assertion's kid (or its only key)."""
    keys = (client.jwks or {}).get("keys", [])
    matching = [key for key in keys if key.get("kid") == header.get("kid")] if "kid" in header else keys[:1]
    if len(matching) != 1:
        raise ClientAuthError("no registered key matches the assertion's kid")
    try:
        return jwt.PyJWK(matching[0], algorithm=header["alg"]).key
    except jwt.PyJWTError:
        raise ClientAuthError("the registered key does not fit the assertion's alg") from None


def verify_assertion(state: OracleState, token_url: str, assertion: str) -> Client:
    """SMART Backend Services client authentication (RS384/ES384, iss=sub, aud, exp ≤ 5 min, unique jti)."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ClientAuthError("client_assertion is not a JWT") from None
    if header.get("alg") not in ASSERTION_ALGS or "jku" in header:
        raise ClientAuthError("client_assertion must be signed with RS384 or ES384 by a registered key")
    client = state.client(str(unverified.get("iss", "")))
    if client is None or not client.jwks or unverified.get("sub") != client.client_id:
        raise ClientAuthError("unknown client, or iss and sub differ")
    try:
        claims = jwt.decode(assertion, assertion_key(client, header), algorithms=[header["alg"]], audience=token_url,
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                     "require": ["iss", "sub", "aud", "exp", "jti"]})
    except jwt.PyJWTError as failure:
        raise ClientAuthError(f"client_assertion rejected: {failure}") from None
    check_assertion_times_and_jti(state, client, claims)
    return client


def check_assertion_times_and_jti(state: OracleState, client: Client, claims: dict[str, Any]) -> None:
    """exp in the future but at most 5 minutes ahead; jti never seen before."""
    now = state.now().timestamp()
    exp = float(claims["exp"])
    if exp <= now - CLOCK_SKEW_SECONDS:
        raise ClientAuthError("client_assertion has expired")
    if exp > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
        raise ClientAuthError("client_assertion exp must be no more than 5 minutes in the future")
    if not state.remember_jti(client.client_id, str(claims["jti"]), datetime.fromtimestamp(exp, UTC)):
        raise ClientAuthError("client_assertion jti was already used")
