"""Portal roles and sessions: who may read, who may write, and the CSRF token bound to the session."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import Forbidden, NotSignedIn
from shared.microsoft import entra
from shared.portal import auth
from shared.settings import Settings
from shared.storage.accounts import TableAccounts
from shared.storage.portal_sessions import PortalSession, PortalSessionRepository
from shared.tokens import Sealer

SEAL = Sealer(Settings(seal_keys="k1:q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc=", seal_active_key_id="k1",
                       hash_key="Zm9yLXRoZS1zYW5kYm94LW9ubHktaGFzaC1rZXktMzI="))
MEMBER = "b79fbf4d-3ef9-4689-8143-76b194e85509"
TENANT = "0a6b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
SETTINGS = Settings(entra_tenant_id=TENANT, portal_role_check_seconds=300)


@pytest.fixture(autouse=True)
def sealer(monkeypatch, azurite_settings):
    monkeypatch.setattr(auth, "sealer", lambda: SEAL)
    monkeypatch.setattr(auth, "get_settings", lambda: SETTINGS)
    monkeypatch.setattr(entra, "get_settings", lambda: SETTINGS)
    sessions = PortalSessionRepository(TableAccounts(azurite_settings))
    monkeypatch.setattr(auth, "_sessions", lambda: sessions)
    return sessions


def session(role: str, ttl: int = 3600, tenant: str = TENANT, stored: bool = True) -> str:
    """A session cookie and, as the sign-in leaves it, its server-side row."""
    sid = secrets.token_urlsafe(16)
    if stored:
        now = datetime.now(UTC)
        auth._sessions().open(tenant, PortalSession(
            key=SEAL.keyed_hash("portal-session", sid), role=role, expires_at=now + timedelta(seconds=3600),
            checked_at=now, refresh=SEAL.seal_json({"rt": "unused"}, 3600, "portal-refresh")))
    return SEAL.seal_json({"sid": sid, "tid": tenant, "oid": "oid-1", "name": "Adele", "csrf": "token-1"},
                          ttl, "portal-session")


@pytest.mark.parametrize("wids,role", [
    ([MEMBER, auth.GLOBAL_ADMINISTRATOR], "Global Administrator"),
    (["69091246-20e8-4a56-aa4d-066075b2a7a8"], "Teams Administrator"),
    (["f2ef992c-3afb-46b9-b7cf-a126ee74c451", MEMBER], "Global Reader"),
    (["4a5d8f65-41da-4de4-8968-e035b65339cf"], "Reports Reader"),
    (["4a5d8f65-41da-4de4-8968-e035b65339cf", auth.GLOBAL_ADMINISTRATOR], "Global Administrator"),
    ([MEMBER], None), ([], None),
])
def test_the_strongest_accepted_directory_role_wins(wids, role):
    assert auth.role_for(wids) == role


def test_an_administrator_writes_with_the_sessions_token():
    caller = auth.authenticate(auth.Credentials(session("Global Administrator"), "token-1"), write=True)
    assert (caller.tenant_id, caller.oid, caller.can_write) == (TENANT, "oid-1", True)
    assert caller.actor.startswith("admin:") and "oid-1" not in caller.actor


@pytest.mark.parametrize("token", [None, "", "token-2", "token-1 "])
def test_a_change_without_the_sessions_token_is_refused(token):
    with pytest.raises(Forbidden) as failure:
        auth.authenticate(auth.Credentials(session("Global Administrator"), token), write=True)
    assert failure.value.code == "csrf_failed"


def test_a_reader_reads_but_cannot_write():
    reader = auth.Credentials(session("Global Reader"), "token-1")
    assert auth.authenticate(reader).role == "Global Reader"
    with pytest.raises(Forbidden) as failure:
        auth.authenticate(reader, write=True)
    assert failure.value.message == "Your role (Global Reader) can view the configuration but not change it."


@pytest.mark.parametrize("cookie", [None, "", "k1.garbage", "k9.abc",
                                    SEAL.seal_json({"tid": "t"}, 3600, "ehr-session")])
def test_missing_forged_or_foreign_cookies_are_not_a_session(cookie):
    with pytest.raises(NotSignedIn):
        auth.authenticate(auth.Credentials(cookie))


def test_an_expired_session_says_so():
    with pytest.raises(NotSignedIn) as failure:
        auth.authenticate(auth.Credentials(session("Global Administrator", ttl=-1)))
    assert failure.value.message == "Your portal session has expired."


def test_a_cookie_whose_server_side_session_is_gone_is_not_a_session():
    with pytest.raises(NotSignedIn) as failure:
        auth.authenticate(auth.Credentials(session("Global Administrator", stored=False)))
    assert failure.value.message == "Your portal session has ended (you signed out, or it expired)."


def test_a_session_of_a_tenant_no_longer_allowed_is_refused():
    cookie = session("Global Administrator", tenant="9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")
    with pytest.raises(entra.TenantNotAllowed):
        auth.authenticate(auth.Credentials(cookie, "token-1"), write=True)


def test_one_allowed_tenant_signs_in_at_its_own_authority_several_at_organizations(monkeypatch):
    assert auth.authority_tenant() == TENANT
    several = Settings(entra_tenant_id=TENANT, allowed_tenants=f"{TENANT}, 9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")
    monkeypatch.setattr(auth, "get_settings", lambda: several)
    assert auth.authority_tenant() == "organizations"


def test_the_same_administrator_always_has_the_same_audit_reference_and_others_another():
    assert auth.actor_reference(TENANT, "OID-1") == auth.actor_reference(TENANT.upper(), "oid-1")
    assert auth.actor_reference(TENANT, "oid-1") != auth.actor_reference(TENANT, "oid-2")
