"""State of the Entra stand-in: directory, app registration, issued codes and tokens, sign-ins."""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from urllib.parse import unquote

import jwt

from sandbox.config import (
    ENTRA_CLIENT_ID,
    ENTRA_CLIENT_SECRET,
    ENTRA_TENANT_ID,
    OTHER_TENANT_ID,
)
from sandbox.entra.directory import (
    APP_DISPLAY_NAME,
    APP_ROLES,
    CODE_LIFETIME_SECONDS,
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    MULTI_TENANT_PATHS,
    OIDC_SCOPES,
    TENANT_DOMAINS,
    EntraUser,
    default_users,
)
from sandbox.entra.protocol import (
    AadError,
    AuthCode,
    FaultPlan,
    InvalidAccessToken,
    RefreshGrant,
    SignIn,
    b64url_json,
    graph_scope_name,
    is_graph_resource,
    new_signing_key,
    pairwise_sub,
    s256,
)


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
        self._keys = [new_signing_key()]
        self._codes: dict[str, AuthCode] = {}
        self._refresh: dict[str, RefreshGrant] = {}

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
            self._keys.insert(0, new_signing_key())
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
        graph_scopes = [s for s in (graph_scope_name(x) for x in scopes) if s and s != ".default"]
        scp = " ".join(dict.fromkeys([*graph_scopes, *(s for s in scopes if s in ("openid", "profile", "email"))]))
        claims = {
            "aud": GRAPH_AUDIENCE, "iss": f"https://sts.windows.net/{user.tid}/", **self._times(),
            "acct": 0, "acr": "1", "aio": secrets.token_urlsafe(24), "amr": ["pwd", "mfa"],
            "app_displayname": APP_DISPLAY_NAME, "appid": self.client_id, "appidacr": "1", "idtyp": "user",
            "name": user.name, "oid": user.oid, "rh": secrets.token_urlsafe(16),
            "scp": scp or "User.Read", "sub": pairwise_sub(user.oid, GRAPH_APP_ID), "tid": user.tid,
            "unique_name": user.upn, "upn": user.upn, "uti": secrets.token_urlsafe(16), "ver": "1.0",
            "wids": list(user.wids),
        }
        return self._sign(claims)

    def _id_token(self, origin: str, user: EntraUser, client_id: str, nonce: str | None) -> str:
        claims = {
            "aud": client_id, "iss": f"{origin}/{user.tid}/v2.0", **self._times(), "name": user.name,
            "oid": user.oid, "preferred_username": user.upn, "rh": secrets.token_urlsafe(16),
            "sub": pairwise_sub(user.oid, client_id), "tid": user.tid, "uti": secrets.token_urlsafe(16),
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
            self._codes[code] = AuthCode(
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
        if not is_graph_resource(scope.removesuffix("/.default")):
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

    def _check_code(self, grant: AuthCode, client_id: str, form: dict[str, str]) -> None:
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
            expected = s256(verifier) if grant.challenge_method == "S256" else verifier
            if not verifier or not secrets.compare_digest(expected, grant.code_challenge):
                raise AadError(400, "invalid_grant", 501481, "The Code_Verifier does not match the "
                               "code_challenge supplied in the authorization request.")

    def redeem_refresh_token(self, origin: str, client_id: str, form: dict[str, str]) -> dict:
        """Token response of the refresh-token grant (the old refresh token stays valid, as in Entra).

        As in Entra, the new tokens describe the user as the directory holds them now (roles added or removed
        since the sign-in show in `wids`), and a user deleted since cannot refresh at all.
        """
        grant = self._refresh.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id != client_id:
            raise AadError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid. "
                           "The provided refresh token is not valid.")
        user = self.user_by_oid(grant.user.oid)
        if user is None or user.tid != grant.user.tid:
            raise AadError(400, "invalid_grant", 50034, "The user account does not exist in the directory. To "
                           "sign into this application, the account must be added to the directory.")
        scopes = tuple(form.get("scope", "").split()) or grant.scopes
        return self._user_tokens(origin, user, client_id, scopes, None)

    def _user_tokens(
        self, origin: str, user: EntraUser, client_id: str, scopes: tuple[str, ...], nonce: str | None
    ) -> dict:
        refresh_token = secrets.token_urlsafe(64)
        with self.lock:
            self._refresh[refresh_token] = RefreshGrant(client_id, user, scopes)
        granted = [s for s in (graph_scope_name(x) for x in scopes if x not in OIDC_SCOPES) if s] or ["User.Read"]
        return {
            "token_type": "Bearer",
            "scope": " ".join([*granted, "openid", "profile", "email"]),
            "expires_in": self.token_lifetime_seconds,
            "ext_expires_in": self.token_lifetime_seconds,
            "access_token": self._access_token(user, scopes),
            "refresh_token": refresh_token,
            "id_token": self._id_token(origin, user, client_id, nonce),
            "client_info": b64url_json({"uid": user.oid, "utid": user.tid}),
        }
