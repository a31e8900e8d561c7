"""Portal roles and sessions: who may read, who may write, and the CSRF token bound to the session."""

from __future__ import annotations

import pytest

from shared.errors import Forbidden, NotSignedIn
from shared.portal import auth
from shared.settings import Settings
from shared.tokens import Sealer

SEAL = Sealer(Settings(seal_keys="k1:q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc=", seal_active_key_id="k1",
                       hash_key="Zm9yLXRoZS1zYW5kYm94LW9ubHktaGFzaC1rZXktMzI="))
MEMBER = "b79fbf4d-3ef9-4689-8143-76b194e85509"


@pytest.fixture(autouse=True)
def sealer(monkeypatch):
    monkeypatch.setattr(auth, "sealer", lambda: SEAL)


def session(role: str, ttl: int = 3600) -> str:
    return SEAL.seal_json({"tid": "tenant-a", "oid": "oid-1", "name": "Adele", "role": role, "csrf": "token-1"},
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
    assert (caller.tenant_id, caller.oid, caller.can_write) == ("tenant-a", "oid-1", True)


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
