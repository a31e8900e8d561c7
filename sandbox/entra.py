"""Entra ID stand-in: OIDC discovery, JWKS, authorize (account picker), token and logout, enough for msal."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.config import (
    ENTRA_CLIENT_ID,
    ENTRA_CLIENT_SECRET,
    ENTRA_TENANT_ID,
    GLOBAL_ADMIN,
    GLOBAL_READER,
    OTHER_TENANT_ID,
    REPORTS_READER,
    TEAMS_ADMIN,
)

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Seen in real wids claims of ordinary member users; it is not an admin role (see domain notes D6).
MEMBER_USER_WID = "b79fbf4d-3ef9-4689-8143-76b194e85509"
APP_ROLES = (
    "OnlineMeetings.ReadWrite.All",
    "OnlineMeetingArtifact.Read.All",
    "Organization.Read.All",
    "VirtualAppointment.Read.All",
)
APP_DISPLAY_NAME = "Teams EHR connector (sandbox)"
MULTI_TENANT_PATHS = ("organizations", "common")
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CODE_LIFETIME_SECONDS = 600
TENANT_DOMAINS = {"contoso-health.example": ENTRA_TENANT_ID, "fabrikam-clinic.example": OTHER_TENANT_ID}

# Fixed object ids, so seeds, tests and stored EHR-user links agree across runs.
PROVIDER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f601"
SECOND_PROVIDER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f602"
ORGANIZER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f603"
ADMIN_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f604"
TEAMS_ADMIN_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f605"
GLOBAL_READER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f606"
REPORTS_READER_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f607"
NO_ROLE_OID = "7b1c2d3e-4f50-4a61-8b72-9c83d4e5f608"
OTHER_ADMIN_OID = "9d2e3f40-5a61-4b72-8c83-d4e5f6a7b801"

PROVIDER_UPN = "dr.grey@contoso-health.example"
SECOND_PROVIDER_UPN = "dr.burke@contoso-health.example"
ORGANIZER_UPN = "virtual.appointments@contoso-health.example"
ADMIN_UPN = "admin@contoso-health.example"
TEAMS_ADMIN_UPN = "teams.admin@contoso-health.example"
GLOBAL_READER_UPN = "global.reader@contoso-health.example"
REPORTS_READER_UPN = "reports.reader@contoso-health.example"
NO_ROLE_UPN = "front.desk@contoso-health.example"
OTHER_ADMIN_UPN = "admin@fabrikam-clinic.example"


@dataclass(frozen=True)
class EntraUser:
    """A directory user: immutable object id and tenant, display fields, directory role template ids."""

    oid: str
    tid: str
    upn: str
    name: str
    wids: tuple[str, ...] = (MEMBER_USER_WID,)


def default_users() -> list[EntraUser]:
    """The sandbox directory: providers, the organizer account and one user per admin role, two tenants."""
    home = ENTRA_TENANT_ID
    return [
        EntraUser(PROVIDER_OID, home, PROVIDER_UPN, "Dr. Meredith Grey"),
        EntraUser(SECOND_PROVIDER_OID, home, SECOND_PROVIDER_UPN, "Dr. Preston Burke"),
        EntraUser(ORGANIZER_OID, home, ORGANIZER_UPN, "Virtual Appointments"),
        EntraUser(ADMIN_OID, home, ADMIN_UPN, "Adele Vance", (GLOBAL_ADMIN, MEMBER_USER_WID)),
        EntraUser(TEAMS_ADMIN_OID, home, TEAMS_ADMIN_UPN, "Lee Gu", (TEAMS_ADMIN, MEMBER_USER_WID)),
        EntraUser(GLOBAL_READER_OID, home, GLOBAL_READER_UPN, "Megan Bowen", (GLOBAL_READER, MEMBER_USER_WID)),
        EntraUser(REPORTS_READER_OID, home, REPORTS_READER_UPN, "Alex Wilber", (REPORTS_READER, MEMBER_USER_WID)),
        EntraUser(NO_ROLE_OID, home, NO_ROLE_UPN, "Pat Front Desk"),
        EntraUser(OTHER_ADMIN_OID, OTHER_TENANT_ID, OTHER_ADMIN_UPN, "Nestor Wilke", (GLOBAL_ADMIN, MEMBER_USER_WID)),
    ]


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
class _AuthCode:
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
class _RefreshGrant:
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


def _new_signing_key() -> _SigningKey:
    kid = base64.urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()
    return _SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _b64url_json(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _pairwise_sub(oid: str, client_id: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(f"{oid}|{client_id}".encode()).digest()).rstrip(b"=").decode()


def _graph_scope_name(scope: str) -> str | None:
    """'https://graph.microsoft.com/User.Read' → 'User.Read'; None for a scope of another resource."""
    if "/" not in scope:
        return scope
    resource, _, name = scope.rpartition("/")
    return name if _is_graph_resource(resource) else None


def _is_graph_resource(resource: str) -> bool:
    """Graph by its URI or app id, or (sandbox) a loopback https origin that stands for Graph."""
    if resource.rstrip("/") in (GRAPH_AUDIENCE, GRAPH_APP_ID):
        return True
    parts = urlsplit(resource)
    return parts.scheme == "https" and parts.hostname in ("localhost", "127.0.0.1") and parts.path in ("", "/")


class EntraState:
    """The directory, the app registration and the issued codes and tokens of the Entra stand-in."""

    def __init__(
        self,
        redirect_uris: Iterable[str] = (),
        *,
        client_id: str = ENTRA_CLIENT_ID,
        client_secret: str = ENTRA_CLIENT_SECRET,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: set[str] = set(redirect_uris)
        self.clock = clock
        self.users: list[EntraUser] = default_users()
        self.tenant_domains = dict(TENANT_DOMAINS)
        self.consented_tenants: set[str] = {ENTRA_TENANT_ID, OTHER_TENANT_ID}
        self.app_roles: tuple[str, ...] = APP_ROLES
        self.auto_sign_in_upn: str | None = None
        self.token_lifetime_seconds = 3600
        self.requests: Counter[str] = Counter()
        self.faults = FaultPlan()
        self.sign_ins: list[SignIn] = []
        self._keys = [_new_signing_key()]
        self._codes: dict[str, _AuthCode] = {}
        self._refresh: dict[str, _RefreshGrant] = {}

    # -- directory and registration -------------------------------------------------------------

    def user_by_upn(self, upn: str) -> EntraUser | None:
        wanted = upn.strip().lower()
        return next((u for u in self.users if u.upn.lower() == wanted), None)

    def user_by_oid(self, oid: str) -> EntraUser | None:
        return next((u for u in self.users if u.oid == oid), None)

    def users_in(self, tenant: str) -> list[EntraUser]:
        """Users one may sign in as at this tenant path (all tenants for organizations/common)."""
        tid = self.resolve_tenant(tenant)
        return [u for u in self.users if tid in MULTI_TENANT_PATHS or u.tid == tid]

    def add_user(self, user: EntraUser) -> None:
        with self.lock:
            self.users = [u for u in self.users if u.oid != user.oid] + [user]

    def add_redirect_uri(self, uri: str) -> None:
        with self.lock:
            self.redirect_uris.add(uri)

    def resolve_tenant(self, tenant: str) -> str | None:
        """Tenant GUID for a path segment (GUID or domain), the segment itself for organizations/common."""
        lowered = tenant.lower()
        if lowered in MULTI_TENANT_PATHS:
            return lowered
        if lowered in self.tenant_domains:
            return self.tenant_domains[lowered]
        return lowered if any(u.tid == lowered for u in self.users) else None

    def fail_next(self, path_substring: str, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `count` requests whose path contains the substring with `status`."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.faults.add(path_substring, status, count, headers)

    # -- keys and tokens ---------------------------------------------------------------------------

    @property
    def public_jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self._keys]}

    def rotate_signing_key(self) -> str:
        """Sign with a new key from now on; the old one stays published (as Entra does). Returns the new kid."""
        with self.lock:
            self._keys.insert(0, _new_signing_key())
            return self._keys[0].kid

    def _sign(self, claims: dict) -> str:
        key = self._keys[0]
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "x5t": key.kid})

    def _times(self) -> dict[str, int]:
        now = int(self.clock())
        return {"iat": now, "nbf": now, "exp": now + self.token_lifetime_seconds}

    def mint_app_token(self, tid: str = ENTRA_TENANT_ID, roles: Iterable[str] | None = None) -> str:
        """An app-only Graph access token, as client credentials would return."""
        sp_oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{self.client_id}:{tid}"))
        claims = {
            "aud": GRAPH_AUDIENCE, "iss": f"https://sts.windows.net/{tid}/", **self._times(),
            "aio": secrets.token_urlsafe(24), "app_displayname": APP_DISPLAY_NAME, "appid": self.client_id,
            "appidacr": "1", "idtyp": "app", "oid": sp_oid, "rh": secrets.token_urlsafe(16),
            "roles": list(self.app_roles if roles is None else roles), "sub": sp_oid, "tid": tid,
            "uti": secrets.token_urlsafe(16), "ver": "1.0",
        }
        return self._sign(claims)

    def mint_user_token(self, upn: str, scopes: Iterable[str] = ("User.Read",)) -> str:
        """A delegated Graph access token for a directory user."""
        user = self.user_by_upn(upn)
        if user is None:
            raise KeyError("no such user in the sandbox directory")
        return self._access_token(user, tuple(scopes))

    def _access_token(self, user: EntraUser, scopes: tuple[str, ...]) -> str:
        graph_scopes = [s for s in (_graph_scope_name(x) for x in scopes) if s and s != ".default"]
        scp = " ".join(dict.fromkeys([*graph_scopes, *(s for s in scopes if s in ("openid", "profile", "email"))]))
        claims = {
            "aud": GRAPH_AUDIENCE, "iss": f"https://sts.windows.net/{user.tid}/", **self._times(),
            "acct": 0, "acr": "1", "aio": secrets.token_urlsafe(24), "amr": ["pwd", "mfa"],
            "app_displayname": APP_DISPLAY_NAME, "appid": self.client_id, "appidacr": "1", "idtyp": "user",
            "name": user.name, "oid": user.oid, "rh": secrets.token_urlsafe(16),
            "scp": scp or "User.Read", "sub": _pairwise_sub(user.oid, GRAPH_APP_ID), "tid": user.tid,
            "unique_name": user.upn, "upn": user.upn, "uti": secrets.token_urlsafe(16), "ver": "1.0",
            "wids": list(user.wids),
        }
        return self._sign(claims)

    def _id_token(self, origin: str, user: EntraUser, client_id: str, nonce: str | None) -> str:
        claims = {
            "aud": client_id, "iss": f"{origin}/{user.tid}/v2.0", **self._times(), "name": user.name,
            "oid": user.oid, "preferred_username": user.upn, "rh": secrets.token_urlsafe(16),
            "sub": _pairwise_sub(user.oid, client_id), "tid": user.tid, "uti": secrets.token_urlsafe(16),
            "ver": "2.0", "wids": list(user.wids),
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def verify_access_token(self, token: str) -> dict:
        """Claims of an access token this stand-in signed and that has not expired (by `clock`)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken("IDX14100: JWT is not well formed.") from exc
        key = next((k for k in self._keys if k.kid == header.get("kid")), None)
        if key is None:
            raise InvalidAccessToken("IDX10503: Signature validation failed. Token does not have a known kid.")
        try:
            claims = jwt.decode(
                token, key.private_key.public_key(), algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidAccessToken("IDX10511: Signature validation failed.") from exc
        if claims.get("iss") != f"https://sts.windows.net/{claims.get('tid')}/":
            raise InvalidAccessToken("IDX10205: Issuer validation failed.")
        if int(claims.get("exp", 0)) <= self.clock():
            raise InvalidAccessToken("Lifetime validation failed, the token is expired.")
        return claims

    # -- authorize ---------------------------------------------------------------------------------

    def check_client_and_redirect(self, tenant: str, params: dict[str, str]) -> AadError | None:
        """The errors Entra shows on its own page (never redirecting): tenant, client id, redirect URI."""
        if self.resolve_tenant(tenant) is None:
            return AadError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        client_id = params.get("client_id", "")
        if client_id != self.client_id:
            return AadError(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            return AadError(400, "invalid_request", 900144, "The request body must contain the following "
                            "parameter: 'redirect_uri'.")
        if redirect_uri not in self.redirect_uris:
            return AadError(
                400, "invalid_request", 50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{client_id}'. Make sure the redirect URI sent in the request "
                "matches one added to your application in the Azure portal.",
            )
        return None

    def check_authorize_request(self, params: dict[str, str]) -> None:
        """Errors reported back to the app by redirect: response type, PKCE, response mode."""
        if params.get("response_type") != "code":
            raise AadError(400, "unsupported_response_type", 700054,
                           "response_type must be 'code' for this application.")
        method = params.get("code_challenge_method")
        if method is not None and method != "S256":
            raise AadError(400, "invalid_request", 501491, "Invalid code_challenge_method; only S256 is allowed.")
        if method is not None and not params.get("code_challenge"):
            raise AadError(400, "invalid_request", 501481, "code_challenge_method given without code_challenge.")
        if params.get("response_mode", "query") not in ("query", "fragment", "form_post"):
            raise AadError(400, "invalid_request", 900144, "Invalid response_mode.")

    def pick_user(self, tenant: str, params: dict[str, str]) -> EntraUser | None:
        """The user to sign in without a page: `login_hint`, else `auto_sign_in_upn`, if in this tenant."""
        upn = params.get("login_hint") or self.auto_sign_in_upn
        user = self.user_by_upn(upn) if upn else None
        if user is None or user not in self.users_in(tenant):
            return None
        return user

    def issue_code(self, user: EntraUser, params: dict[str, str]) -> str:
        """Record a sign-in and hand out a single-use authorization code for it."""
        if user.tid not in self.consented_tenants:
            raise AadError(400, "consent_required", 65001,
                           "The user or administrator has not consented to use the application.")
        code = secrets.token_urlsafe(48)
        challenge = params.get("code_challenge")
        with self.lock:
            self._codes[code] = _AuthCode(
                client_id=params["client_id"], redirect_uri=params["redirect_uri"], user=user,
                scopes=tuple(params.get("scope", "").split()), nonce=params.get("nonce"),
                code_challenge=challenge, challenge_method=params.get("code_challenge_method", "plain"),
                expires_at=self.clock() + CODE_LIFETIME_SECONDS,
            )
            self.sign_ins.append(SignIn(self.clock(), user.oid, user.tid, params["client_id"]))
        return code

    # -- token -------------------------------------------------------------------------------------

    def authenticate_client(self, form: dict[str, str], authorization: str | None) -> str:
        """The client id after checking its secret (client_secret_post or client_secret_basic)."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = unquote(basic_id), unquote(basic_secret)
        if not client_id:
            raise AadError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'client_id'.")
        if client_id != self.client_id:
            raise AadError(400, "unauthorized_client", 700016,
                           f"Application with identifier '{client_id}' was not found in the directory.")
        if not secret:
            raise AadError(401, "invalid_client", 7000218, "The request body must contain the following "
                           "parameter: 'client_assertion' or 'client_secret'.")
        if not secrets.compare_digest(secret, self.client_secret):
            raise AadError(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
                           "being sent in the request is the client secret value, not the client secret ID.")
        return client_id

    def client_credentials(self, tenant: str, form: dict[str, str]) -> dict:
        """Token response of the client-credentials grant (app-only Graph token)."""
        tid = self.resolve_tenant(tenant)
        if tid in MULTI_TENANT_PATHS:
            raise AadError(400, "invalid_request", 50059, "No tenant-identifying information found in either "
                           "the request or implied by any provided credentials.")
        if tid not in self.consented_tenants:
            raise AadError(400, "invalid_client", 7000229, f"The client application {self.client_id} is "
                           f"missing service principal in the tenant {tid}.")
        scope = form.get("scope", "")
        if len(scope.split()) != 1 or not scope.endswith("/.default"):
            raise AadError(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. "
                           "Client credential flows must have a scope value with /.default suffixed to the "
                           "resource identifier (application ID URI).")
        if not _is_graph_resource(scope.removesuffix("/.default")):
            raise AadError(400, "invalid_resource", 500011, "The resource principal named "
                           f"{scope.removesuffix('/.default')} was not found in the tenant named {tid}.")
        return {"token_type": "Bearer", "expires_in": self.token_lifetime_seconds,
                "ext_expires_in": self.token_lifetime_seconds, "access_token": self.mint_app_token(tid)}

    def redeem_code(self, origin: str, client_id: str, form: dict[str, str]) -> dict:
        """Token response of the authorization-code grant: single use, PKCE and redirect URI checked."""
        with self.lock:
            grant = self._codes.get(form.get("code", ""))
            if grant is None:
                raise AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or "
                               "invalid. The provided value for the 'code' parameter is not valid.")
            if grant.used:
                raise AadError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, "
                               "please retry with a new valid code or use an existing refresh token.")
            grant.used = True
        self._check_code(grant, client_id, form)
        return self._user_tokens(origin, grant.user, client_id, grant.scopes, grant.nonce)

    def _check_code(self, grant: _AuthCode, client_id: str, form: dict[str, str]) -> None:
        if grant.expires_at <= self.clock():
            raise AadError(400, "invalid_grant", 70008, "The provided authorization code or refresh token has "
                           "expired due to inactivity. Send a new interactive authorization request.")
        if grant.client_id != client_id:
            raise AadError(400, "invalid_grant", 70002, "The authorization code was issued to another client.")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise AadError(400, "invalid_grant", 50011, "The reply URL specified in the request does not match "
                           "the reply URL used in the authorization request.")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            expected = _s256(verifier) if grant.challenge_method == "S256" else verifier
            if not verifier or not secrets.compare_digest(expected, grant.code_challenge):
                raise AadError(400, "invalid_grant", 501481, "The Code_Verifier does not match the "
                               "code_challenge supplied in the authorization request.")

    def redeem_refresh_token(self, origin: str, client_id: str, form: dict[str, str]) -> dict:
        """Token response of the refresh-token grant (the old refresh token stays valid, as in Entra)."""
        grant = self._refresh.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id != client_id:
            raise AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid. "
                           "The provided refresh token is not valid.")
        scopes = tuple(form.get("scope", "").split()) or grant.scopes
        return self._user_tokens(origin, grant.user, client_id, scopes, None)

    def _user_tokens(
        self, origin: str, user: EntraUser, client_id: str, scopes: tuple[str, ...], nonce: str | None
    ) -> dict:
        refresh_token = secrets.token_urlsafe(64)
        with self.lock:
            self._refresh[refresh_token] = _RefreshGrant(client_id, user, scopes)
        granted = [s for s in (_graph_scope_name(x) for x in scopes if x not in OIDC_SCOPES) if s] or ["User.Read"]
        return {
            "token_type": "Bearer",
            "scope": " ".join([*granted, "openid", "profile", "email"]),
            "expires_in": self.token_lifetime_seconds,
            "ext_expires_in": self.token_lifetime_seconds,
            "access_token": self._access_token(user, scopes),
            "refresh_token": refresh_token,
            "id_token": self._id_token(origin, user, client_id, nonce),
            "client_info": _b64url_json({"uid": user.oid, "utid": user.tid}),
        }


# -- HTTP --------------------------------------------------------------------------------------------

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
