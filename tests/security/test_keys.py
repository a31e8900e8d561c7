"""Keys checked at start: with missing, malformed, unresolved or published keys the app refuses to serve."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from functions.health import health_ready
from sandbox import config
from shared.notifications.events import RECEIVED, handle_sms_event
from shared.notifications.job import run_notifications
from shared.tokens import UnsafeKeys
from tests.security.conftest import PUBLIC_URL, every_table_row, http_functions, http_request

OWN_SEAL = "k1:" + base64.b64encode(b"\x11" * 32).decode()
OWN_HASH = base64.b64encode(b"\x22" * 32).decode()


def refused_everywhere(accounts, setting: str) -> None:
    """Every HTTP route answers 503 naming the setting, and nothing is stored."""
    before = every_table_row(accounts)
    for name, method, route, handler in http_functions():
        if name in ("health", "health_ready"):  # liveness serves nothing; readiness reports the keys (below)
            continue
        params = {part.strip("{}*").split(":")[0]: "x" for part in route.split("/") if part.startswith("{")}
        response = handler(http_request(method, route, headers={"accept": "application/json"},
                                        route_params=params, body=b"{}"))
        assert response.status_code == 503, name
        body = json.loads(response.get_body())
        assert body["error"] == "keys_not_configured" and setting in body["message"], name
    assert every_table_row(accounts) == before


def test_published_sample_seal_key_behind_a_public_url_is_refused(app_with):
    """Attack: the app deployed with the published sample SEAL_KEYS, so anyone can forge links and cookies."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=config.SEAL_KEYS, HASH_KEY=OWN_HASH)
    refused_everywhere(accounts, "SEAL_KEYS")


def test_published_sample_hash_key_behind_a_public_url_is_refused(app_with):
    """Attack: the app deployed with the published HASH_KEY, so table dumps can be matched against phone lists."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=OWN_SEAL, HASH_KEY=config.HASH_KEY)
    refused_everywhere(accounts, "HASH_KEY")


def test_published_key_among_rotated_keys_is_refused(app_with):
    """Attack: a published key kept as an older key in a rotated SEAL_KEYS still opens forged cookies."""
    rotated = f"{OWN_SEAL},{config.SEAL_KEYS.replace('k1:', 'k0:')}"
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=rotated, HASH_KEY=OWN_HASH)
    refused_everywhere(accounts, "SEAL_KEYS key 'k0'")


def test_missing_seal_keys_are_refused(app_with):
    """Attack: no SEAL_KEYS at all (a deployment that lost its secret) must not serve unsealed sessions."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS="", HASH_KEY=OWN_HASH)
    refused_everywhere(accounts, "SEAL_KEYS is missing")


def test_missing_hash_key_is_refused(app_with):
    """Attack: no HASH_KEY, so keyed hashes of phone numbers and appointments would use an empty key."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=OWN_SEAL, HASH_KEY="")
    refused_everywhere(accounts, "HASH_KEY is missing")


def test_seal_key_that_is_not_base64_is_refused(app_with):
    """Attack: a SEAL_KEYS value that is not base64 (a password pasted in) is refused, not half-decoded."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS="k1:correct horse battery staple!", HASH_KEY=OWN_HASH)
    refused_everywhere(accounts, "SEAL_KEYS key 'k1' is not valid base64")


def test_short_hash_key_is_refused(app_with):
    """Attack: a 9-byte HASH_KEY that a table dump could brute-force."""
    accounts = app_with(PUBLIC_BASE_URL="http://127.0.0.1:7071", SEAL_KEYS=OWN_SEAL,
                       HASH_KEY=base64.b64encode(b"short-key").decode())
    refused_everywhere(accounts, "HASH_KEY is 9 bytes")


def test_unresolved_key_vault_reference_is_refused(app_with):
    """Attack: Key Vault unreachable, the platform leaves the reference string, which must not become the key."""
    reference = "@Microsoft.KeyVault(SecretUri=https://kv-connector.vault.azure.net/secrets/seal-keys/)"
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=reference, HASH_KEY=OWN_HASH)
    refused_everywhere(accounts, "SEAL_KEYS is an unresolved Key Vault reference")


def test_health_is_503_naming_the_published_key(app_with):
    """Attack: a published key behind a public URL passes the readiness check and gets traffic routed to it."""
    app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=OWN_SEAL, HASH_KEY=config.HASH_KEY, ENTRA_TENANT_ID="",
            ACS_ENDPOINT="")
    response = health_ready(http_request("GET", "health/ready"))
    assert response.status_code == 503
    body = json.loads(response.get_body())
    assert body["failing"] == ["keys"]
    assert "HASH_KEY is a published sample key" in body["parts"]["keys"]["detail"]
    assert config.HASH_KEY not in response.get_body().decode()


def test_sms_event_with_a_published_key_is_refused_and_stores_nothing(app_with):
    """Attack: with the published HASH_KEY, a STOP event would store a phone hash anyone can recompute."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=OWN_SEAL, HASH_KEY=config.HASH_KEY)
    before = every_table_row(accounts)
    event = {"From": "+13125550142", "To": "+18335550100", "Message": "STOP",
             "ReceivedTimestamp": "2026-06-10T00:27:45.32Z"}
    with pytest.raises(UnsafeKeys, match="HASH_KEY"):
        handle_sms_event(str(uuid.uuid4()), RECEIVED, event, config.ACS_RESOURCE_ID, accounts)
    assert every_table_row(accounts) == before


def test_reminder_job_with_a_published_key_sends_nothing(app_with):
    """Attack: the reminder timer runs with a published SEAL_KEYS and texts links anyone could forge."""
    accounts = app_with(PUBLIC_BASE_URL=PUBLIC_URL, SEAL_KEYS=config.SEAL_KEYS, HASH_KEY=OWN_HASH)
    before = every_table_row(accounts)
    with pytest.raises(UnsafeKeys, match="SEAL_KEYS"):
        run_notifications(datetime.now(UTC), accounts=accounts)
    assert every_table_row(accounts) == before
