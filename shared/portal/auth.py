"""Portal sign-in with Microsoft (msal auth code + PKCE), the sealed session cookie, roles and CSRF."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from shared.errors import ConnectorError, Forbidden, InvalidInput, NotSignedIn
from shared.microsoft import entra
from shared.settings import get_settings
from shared.storage.accounts import default_accounts
from shared.storage.portal_sessions import PortalSession, PortalSessionRepository
from shared.tokens import (
    CookieSpec,
    Redirect,
    TokenExpired,
    TokenInvalid,
    clear_cookie_header,
    cookie_header,
    sealer,
)

SESSION_COOKIE = CookieSpec("portal_session", 3600, "/api/portal")
SIGN_IN_COOKIE = CookieSpec("portal_sign_in", 600, "/api/portal/auth")
# Work or school accounts of the tenants on ALLOWED_TENANTS sign in; each one's tenant scopes what it sees.
MULTI_TENANT_AUTHORITY = "organizations"
MAX_LOGIN_HINT = 256

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
READ_ONLY_ROLES = {
    "69091246-20e8-4a56-aa4d-066075b2a7a8": "Teams Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "4a5d8f65-41da-4de4-8968-e035b65339cf": "Reports Reader",
}
WRITE_ROLE_NAME = "Global Administrator"
SIGN_IN_AGAIN = "Open the portal again and sign in."


class RoleMissing(ConnectorError):
    status, code, title = 403, "role_missing", "You need an administrator role for this portal"


@dataclass(frozen=True)
class Credentials:
    """What a portal request presents: the session cookie and, for changes, the CSRF header."""

    session_cookie: str | None
    csrf_token: str | None = None


@dataclass(frozen=True)
class Caller:
    """The signed-in administrator: tenant, object id, display name, role."""

    tenant_id: str
    oid: str
    name: str
    role: str
    csrf_token: str

    @property
    def can_write(self) -> bool:
        return self.role == WRITE_ROLE_NAME

    @property
    def actor(self) -> str:
        """Who made a change, as stored in the configuration: a keyed hash of tenant and object id."""
        return actor_reference(self.tenant_id, self.oid)

    def public(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, "name": self.name, "role": self.role, "can_write": self.can_write,
                "csrf_token": self.csrf_token, "actor": self.actor}


def actor_reference(tenant_id: str, oid: str) -> str:
    """An administrator's stable audit reference: the same person always, never their object id in clear.

    An auditor holding an object id (from Entra's sign-in logs) and the hash key can check it; the portal tells
    each administrator their own reference.
    """
    return "admin:" + sealer().keyed_hash("portal-admin", tenant_id.lower(), oid.lower())[:20]


def role_for(wids: list[str]) -> str | None:
    """The strongest portal role among the user's directory roles, or None."""
    if GLOBAL_ADMINISTRATOR in wids:
        return WRITE_ROLE_NAME
    return next((READ_ONLY_ROLES[w] for w in wids if w in READ_ONLY_ROLES), None)


def _callback_uri() -> str:
    return get_settings().url("/api/portal/auth/callback")


def authority_tenant() -> str:
    """One allowed tenant signs in at its own authority (the picker offers no other); several at organizations."""
    allowed = get_settings().allowed_tenant_ids
    return next(iter(allowed)) if len(allowed) == 1 else MULTI_TENANT_AUTHORITY


def _sessions() -> PortalSessionRepository:
    return PortalSessionRepository(default_accounts())


def _session_key(session_id: str) -> str:
    return sealer().keyed_hash("portal-session", session_id)


def portal_url() -> str:
    return get_settings().url("/api/portal")


def begin(login_hint: str | None) -> Redirect:
    """Start the Microsoft sign-in; state, nonce and PKCE verifier wait in a sealed, short-lived cookie."""
    if login_hint is not None and (len(login_hint) > MAX_LOGIN_HINT or not login_hint.strip()):
        raise InvalidInput("The login hint is not a valid account name.", next_step=SIGN_IN_AGAIN)
    flow = entra.begin_sign_in(_callback_uri(), tenant=authority_tenant(), login_hint=login_hint or None)
    sealed = sealer().seal_json({"flow": flow}, SIGN_IN_COOKIE.ttl_seconds, "portal-sign-in")
    return Redirect(flow["auth_uri"], [cookie_header(SIGN_IN_COOKIE, sealed)])


def finish(query: dict[str, str], sign_in_cookie: str | None) -> Redirect:
    """Redeem the code, check the role, and open a one-hour session bound to a CSRF token."""
    started = _open(sign_in_cookie, "portal-sign-in", "This sign-in did not start in this browser, or expired.")
    try:
        claims, refresh_token = entra.finish_sign_in_with_refresh(started["flow"], query, tenant=authority_tenant())
    except ValueError as exc:  # msal's answer to a state that is not this browser's (CSRF on the callback)
        raise entra.SignInFailed("This sign-in did not start in this browser.", next_step=SIGN_IN_AGAIN) from exc
    tenant_id = entra.require_allowed_tenant(claims.get("tid"))
    role = _role_or_refuse(claims)
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    sessions = _sessions()
    sessions.purge_expired(tenant_id)
    sessions.open(tenant_id, PortalSession(
        key=_session_key(session_id), role=role, expires_at=now + timedelta(seconds=SESSION_COOKIE.ttl_seconds),
        checked_at=now, refresh=_seal_refresh(refresh_token)))
    session = {"sid": session_id, "tid": tenant_id, "oid": claims["oid"], "name": str(claims.get("name", ""))[:100],
               "csrf": secrets.token_urlsafe(32)}
    sealed = sealer().seal_json(session, SESSION_COOKIE.ttl_seconds, "portal-session")
    return Redirect(portal_url(), [cookie_header(SESSION_COOKIE, sealed),
                                   clear_cookie_header(SIGN_IN_COOKIE)])


def _role_or_refuse(claims: dict[str, Any]) -> str:
    wids = [w for w in claims.get("wids", []) if isinstance(w, str)]
    role = role_for(wids)
    if role is None:
        raise RoleMissing(
            "Your account has no administrator role that this portal accepts.",
            next_step=f"Changing the configuration needs the {WRITE_ROLE_NAME} role; viewing it needs "
            f"{', '.join(READ_ONLY_ROLES.values())} or {WRITE_ROLE_NAME}. Ask your Microsoft 365 administrator "
            "for one of these roles in Microsoft Entra ID, then sign in again.",
        )
    return role


def _seal_refresh(refresh_token: str) -> str:
    return sealer().seal_json({"rt": refresh_token}, SESSION_COOKIE.ttl_seconds, "portal-refresh")


def sign_out(credentials: Credentials) -> Redirect:
    """Revoke the session server-side (it must be ours: CSRF), so a copy of the cookie stops working too."""
    caller = authenticate(credentials, write=False, check_csrf=True)
    session = _open(credentials.session_cookie, "portal-session", "You are not signed in, or your session ended.")
    _sessions().revoke(caller.tenant_id, _session_key(session["sid"]))
    settings = get_settings()
    logout = (f"{settings.entra_authority_host}/{authority_tenant()}/oauth2/v2.0/logout?"
              f"{urlencode({'post_logout_redirect_uri': portal_url()})}")
    return Redirect(logout, [clear_cookie_header(SESSION_COOKIE)])


def current(credentials: Credentials) -> Caller | None:
    """The signed-in caller, or None (for the page, which then offers the sign-in)."""
    try:
        return authenticate(credentials)
    except NotSignedIn:
        return None


def authenticate(credentials: Credentials, write: bool = False, check_csrf: bool | None = None) -> Caller:
    """The caller of a request; changes need the CSRF token of the session and the Global Administrator role.

    The cookie alone is not enough: its server-side session must still exist (sign-out revokes it), its tenant
    must still be allowed, and every PORTAL_ROLE_CHECK_SECONDS the role is read again from Entra.
    """
    cookie = _open(credentials.session_cookie, "portal-session", "You are not signed in, or your session ended.")
    if "sid" not in cookie:
        raise NotSignedIn("Your portal session could not be verified.", next_step=SIGN_IN_AGAIN)
    tenant_id = entra.require_allowed_tenant(cookie["tid"])
    if (write if check_csrf is None else check_csrf) and not _same(credentials.csrf_token, cookie["csrf"]):
        raise Forbidden("This change was refused: the request did not carry this session's security token "
                        "(X-CSRF-Token).", next_step="Reload the portal and try again.", code="csrf_failed")
    role = _current_role(tenant_id, cookie)
    caller = Caller(tenant_id=tenant_id, oid=cookie["oid"], name=cookie.get("name", ""), role=role,
                    csrf_token=cookie["csrf"])
    if write and not caller.can_write:
        raise Forbidden(f"Your role ({caller.role}) can view the configuration but not change it.",
                        next_step=f"Ask a {WRITE_ROLE_NAME} to make this change.", code="read_only")
    return caller


def _current_role(tenant_id: str, cookie: dict[str, Any]) -> str:
    """The session's role, read again from Entra (token refresh) when the last check is too old."""
    sessions = _sessions()
    key = _session_key(cookie["sid"])
    session = sessions.get(tenant_id, key)
    now = datetime.now(UTC)
    if session is None or session.expires_at <= now:
        raise NotSignedIn("Your portal session has ended (you signed out, or it expired).", next_step=SIGN_IN_AGAIN)
    if now - session.checked_at < timedelta(seconds=get_settings().portal_role_check_seconds):
        return session.role
    try:
        refresh_token = sealer().open_json(session.refresh, "portal-refresh")["rt"]
        claims, renewed = entra.refresh_sign_in(refresh_token, tenant_id)
        if claims.get("oid") != cookie["oid"] or str(claims.get("tid", "")).lower() != tenant_id.lower():
            raise entra.SignInFailed("Microsoft answered for another account.", next_step=SIGN_IN_AGAIN)
        role = _role_or_refuse(claims)
    except (entra.SignInFailed, RoleMissing, TokenExpired, TokenInvalid, entra.TenantNotAllowed) as exc:
        sessions.revoke(tenant_id, key)
        if isinstance(exc, RoleMissing | entra.TenantNotAllowed):
            raise
        raise NotSignedIn("Your portal session has ended: Microsoft no longer confirms your sign-in.",
                          next_step=SIGN_IN_AGAIN) from exc
    sessions.rechecked(tenant_id, replace(session, role=role, checked_at=now, refresh=_seal_refresh(renewed)))
    return role


def _same(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _open(value: str | None, purpose: str, missing: str) -> dict[str, Any]:
    if not value:
        raise NotSignedIn(missing, next_step=SIGN_IN_AGAIN)
    try:
        return sealer().open_json(value, purpose)
    except TokenExpired as exc:
        raise NotSignedIn("Your portal session has expired.", next_step=SIGN_IN_AGAIN) from exc
    except TokenInvalid as exc:
        raise NotSignedIn("Your portal session could not be verified.", next_step=SIGN_IN_AGAIN) from exc
