"""The reminder job's fan-out queue: a message runs only its own organization's endpoint, now, and carries no more."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.functions.queue import QueueMessage

from functions.notifications import sms_notifications_slice
from shared.http import call_counts, reset_call_counts
from shared.notifications.fanout import BadSlice
from shared.storage.config import ConfigRepository, FhirEndpoint, SmsConsents
from tests.security.conftest import every_table_row

KEYS = {"SEAL_KEYS": "k1:" + base64.b64encode(b"\x57" * 32).decode(), "SEAL_ACTIVE_KEY_ID": "k1",
        "HASH_KEY": base64.b64encode(b"\x68" * 32).decode()}


@pytest.fixture()
def organizations(app_with):
    """Two organizations that gave both consents, each with an endpoint the job would poll."""
    accounts = app_with(**KEYS)
    repository = ConfigRepository(accounts)
    found = []
    for _ in range(2):
        organization = str(uuid.uuid4())
        repository.choose_region(organization, "emea", "test")
        repository.save_sms_consents(organization, SmsConsents(consent_send=True, consent_attendees=True,
                                                               consent_send_by="t", consent_attendees_by="t"))
        endpoint = FhirEndpoint(base_url=f"https://fhir.example/r4/{uuid.uuid4()}", environment="test",
                                sms_number=f"+1833{uuid.uuid4().int % 10**7:07d}", departments=["1"])
        repository.save_endpoint(organization, endpoint, "test")
        found.append((organization, endpoint))
    return accounts, found


def deliver(body: str) -> None:
    """Hand one queue message to the queue-triggered function, as the Python worker builds it."""
    sms_notifications_slice(QueueMessage(id=str(uuid.uuid4()), body=body.encode(), dequeue_count=1))


def slice_body(tenant: str, endpoint: str, run_at: datetime, **extra: str) -> str:
    return json.dumps({"tenant": tenant, "endpoint": endpoint, "run_at": run_at.isoformat(), **extra})


def assert_untouched(accounts, before: list) -> None:
    """No call to Cerner, Entra or ACS, and nothing stored."""
    assert not any(call_counts().get(system) for system in ("smart", "fhir", "acs")), call_counts()
    assert every_table_row(accounts) == before


def test_a_queue_message_naming_another_organizations_endpoint_runs_nothing(organizations):
    """A queued slice pairing one organization with another's endpoint runs neither (no Cerner call, no text)."""
    accounts, [(ours, _), (_, theirs)] = organizations
    before = every_table_row(accounts)
    reset_call_counts()
    deliver(slice_body(ours, theirs.id, datetime.now(UTC)))
    assert_untouched(accounts, before)


def test_a_replayed_queue_message_of_an_old_run_runs_nothing(organizations):
    """A slice replayed after its run is over is dropped (no Cerner call, no text, nothing stored)."""
    accounts, [(ours, endpoint), _] = organizations
    before = every_table_row(accounts)
    reset_call_counts()
    deliver(slice_body(ours, endpoint.id, datetime.now(UTC) - timedelta(hours=3)))
    assert_untouched(accounts, before)


@pytest.mark.parametrize("body", [
    "not json", "{}", '{"tenant": "x", "endpoint": "y", "run_at": "2026-01-01T00:00:00Z"}',
])
def test_a_queue_message_that_is_not_a_slice_is_refused(organizations, body):
    """A forged or garbled queue message is refused (400, so the host retries it into the poison queue)."""
    accounts, _ = organizations
    before = every_table_row(accounts)
    reset_call_counts()
    with pytest.raises(BadSlice) as refused:
        deliver(body)
    assert refused.value.status == 400 and body not in str(refused.value)
    assert_untouched(accounts, before)


def test_a_queue_message_carrying_more_than_ids_is_refused(organizations):
    """A slice smuggling extra fields (a phone number) is refused, not run: messages carry ids and a time only."""
    accounts, [(ours, endpoint), _] = organizations
    before = every_table_row(accounts)
    reset_call_counts()
    with pytest.raises(BadSlice):
        deliver(slice_body(ours, endpoint.id, datetime.now(UTC), mobile="+13125550142"))
    assert_untouched(accounts, before)
