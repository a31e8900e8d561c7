"""One public way to start a process's state afresh: keys, clients, caches and settings are rebuilt after it."""

from __future__ import annotations

import pytest

from shared.cache import TtlCache
from shared.http import client
from shared.runtime import reset_process_state
from shared.settings import get_settings
from shared.storage.accounts import default_accounts
from shared.tokens import TokenInvalid, sealer

KEY_A = "k1:q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc="
KEY_B = "k1:8Jd3kL0pQ7rT1vX5zB9nM2cF6hJ0kP4sW8yA3eG7iL0="


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    monkeypatch.setenv("SEAL_ACTIVE_KEY_ID", "k1")
    monkeypatch.setenv("SEAL_KEYS", KEY_A)
    reset_process_state()
    yield
    monkeypatch.undo()
    reset_process_state()


def test_after_a_reset_the_sealer_uses_the_new_keys(monkeypatch):
    sealed = sealer().seal_json({"a": 1}, 60, "t")
    monkeypatch.setenv("SEAL_KEYS", KEY_B)
    assert sealer().open_json(sealed, "t") == {"a": 1}, "without a reset the process keeps its keys"
    reset_process_state()
    with pytest.raises(TokenInvalid):
        sealer().open_json(sealed, "t")


def test_after_a_reset_settings_clients_and_accounts_are_built_again(monkeypatch):
    settings, http, accounts = get_settings(), client("fhir"), default_accounts()
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "3")
    reset_process_state()
    assert get_settings() is not settings and get_settings().http_timeout_seconds == 3
    assert http.is_closed, "the old client's connections are closed"
    assert client("fhir") is not http and client("fhir").timeout.read == 3
    assert default_accounts() is not accounts


def test_a_reset_empties_every_cache():
    cache: TtlCache[int] = TtlCache(3600)
    assert cache.get("k", lambda: 1) == 1
    reset_process_state()
    assert cache.get("k", lambda: 2) == 2
