"""Event Grid: only our ACS resource's SMS events, about our own numbers, change delivery states or opt-outs."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import azure.functions as func
import httpx
import pytest

from functions.notifications import sms_delivery_report
from sandbox import config
from sandbox.seed import sandbox_settings
from shared.notifications.events import DELIVERY_REPORT, RECEIVED
from shared.notifications.optouts import OptOutStore
from shared.storage.accounts import TableAccounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import LedgerRepository, day_partition, message_tag
from tests.security.conftest import every_table_row

OUR_ACS = config.ACS_RESOURCE_ID
OTHER_ACS = OUR_ACS.rsplit("/", 1)[0] + "/someone-elses-acs"
PATIENT = "+13125550142"
KEYS = {"SEAL_KEYS": "k1:" + base64.b64encode(b"\x55" * 32).decode(), "SEAL_ACTIVE_KEY_ID": "k1",
        "HASH_KEY": base64.b64encode(b"\x66" * 32).decode(), "ACS_RESOURCE_ID": OUR_ACS}


@pytest.fixture()
def world(app_with):
    """An organization in emea with one endpoint texting from its own number, and a sent reminder's ledger row."""
    accounts = app_with(**KEYS)
    organization = str(uuid.uuid4())
    repository = ConfigRepository(accounts)
    repository.choose_region(organization, "emea", "test")
    endpoint = FhirEndpoint(base_url=f"https://fhir.example/r4/{uuid.uuid4()}", environment="test",
                            sms_number=f"+1833{uuid.uuid4().int % 10**7:07d}", departments=["1"])
    repository.save_endpoint(organization, endpoint, "test")
    partition, row = day_partition(endpoint.id, datetime(2026, 6, 10, tzinfo=UTC)), uuid.uuid4().hex
    LedgerRepository(accounts).create("emea", partition, row, {"kind": "reminder", "status": "sent"})
    return accounts, endpoint, message_tag(partition, row), (partition, row)


def deliver(event_type: str, data: dict, topic: str | None) -> None:
    """Hand one event to the Event Grid function, as the Functions host does."""
    sms_delivery_report(func.EventGridEvent(id=str(uuid.uuid4()), data=data, topic=topic,
                                            subject=f"/phonenumber/{data.get('To', '')}", event_type=event_type,
                                            event_time=datetime.now(UTC), data_version="1.0"))


def stop_from_patient(endpoint: FhirEndpoint, word: str = "STOP") -> dict:
    return {"MessageId": "Incoming_1", "From": PATIENT.lstrip("+"), "To": endpoint.sms_number, "Message": word,
            "ReceivedTimestamp": "2026-06-10T10:00:00Z"}


def delivered(endpoint: FhirEndpoint, tag: str, sender: str | None = None) -> dict:
    return {"MessageId": "Outgoing_1", "From": (sender or endpoint.sms_number).lstrip("+"), "To": PATIENT,
            "DeliveryStatus": "Failed", "DeliveryStatusDetails": "Sender blocked for given recipient", "Tag": tag,
            "ReceivedTimestamp": "2026-06-10T10:00:00Z"}


def test_stop_from_another_acs_resource_is_ignored(world):
    """Attack: a STOP event from another ACS resource's topic, to silence our patients' reminders."""
    accounts, endpoint, _tag, _row = world
    before = every_table_row(accounts)
    deliver(RECEIVED, stop_from_patient(endpoint), OTHER_ACS)
    assert every_table_row(accounts) == before
    assert not OptOutStore(LedgerRepository(accounts)).opted_out("emea", endpoint.sms_number)


def test_delivery_report_from_another_acs_resource_cannot_change_a_ledger_row(world):
    """Attack: a forged delivery report (other topic) naming our ledger row, to mark it failed or opted out."""
    accounts, endpoint, tag, (partition, row) = world
    before = every_table_row(accounts)
    deliver(DELIVERY_REPORT, delivered(endpoint, tag), OTHER_ACS)
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "sent"
    assert every_table_row(accounts) == before


def test_event_without_a_topic_is_ignored(world):
    """Attack: an event posted straight to the webhook with no topic at all."""
    accounts, endpoint, _tag, _row = world
    before = every_table_row(accounts)
    deliver(RECEIVED, stop_from_patient(endpoint), None)
    assert every_table_row(accounts) == before


def test_topic_that_only_starts_like_ours_is_ignored(world):
    """Attack: a look-alike topic, our resource id with a suffix (another resource or sub-path)."""
    accounts, endpoint, _tag, _row = world
    before = every_table_row(accounts)
    for topic in (OUR_ACS + "2", OUR_ACS + "/phonenumbers/x", "x" + OUR_ACS):
        deliver(RECEIVED, stop_from_patient(endpoint), topic)
    assert every_table_row(accounts) == before


def test_delivery_report_about_another_senders_message_cannot_change_our_row(world):
    """Attack: a report from our topic but about a message another number sent, carrying one of our tags."""
    accounts, endpoint, tag, (partition, row) = world
    before = every_table_row(accounts)
    deliver(DELIVERY_REPORT, delivered(endpoint, tag, sender="+18005550999"), OUR_ACS)
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "sent"
    assert every_table_row(accounts) == before


def test_stop_to_a_number_that_is_not_ours_is_not_recorded(world):
    """Attack: a STOP addressed to a number no endpoint links, to plant opt-out rows."""
    accounts, endpoint, _tag, _row = world
    before = every_table_row(accounts)
    deliver(RECEIVED, {**stop_from_patient(endpoint), "To": "+18005550999"}, OUR_ACS)
    assert every_table_row(accounts) == before


def test_a_reply_that_is_not_a_documented_keyword_does_not_opt_out(world):
    """Attack: a reply such as CANCEL or END (not ACS's STOP) must not silence a patient's texts."""
    accounts, endpoint, _tag, _row = world
    before = every_table_row(accounts)
    for word in ("CANCEL", "END", "QUIT", "UNSUBSCRIBE", "STOP please", "YES"):
        deliver(RECEIVED, stop_from_patient(endpoint, word), OUR_ACS)
    assert every_table_row(accounts) == before


def host_rows(sandbox) -> list[dict]:
    return every_table_row(TableAccounts(sandbox_settings(sandbox)))


def test_event_grid_webhook_without_the_system_key_is_401_and_changes_nothing(sandbox, acs):
    """Attack: posting forged ACS events straight to the host's Event Grid webhook without its system key."""
    number = next(iter(acs.numbers))
    event = {"id": str(uuid.uuid4()), "topic": OUR_ACS, "subject": "/phonenumber/x", "eventType": RECEIVED,
             "eventTime": "2026-06-10T10:00:00Z", "dataVersion": "1.0",
             "data": {"MessageId": "m", "From": PATIENT, "To": number, "Message": "STOP",
                      "ReceivedTimestamp": "2026-06-10T10:00:00Z"}}
    before = host_rows(sandbox)
    for code in ("", "guessed-key"):
        response = httpx.post(f"{sandbox.world.host_url}/runtime/webhooks/eventgrid",
                              params={"functionName": "sms_delivery_report", **({"code": code} if code else {})},
                              json=[event], headers={"aeg-event-type": "Notification"}, timeout=10)
        assert response.status_code == 401
    assert host_rows(sandbox) == before


def test_admin_api_without_the_master_key_cannot_run_the_reminder_timer(sandbox, acs):
    """Attack: an outsider triggering the SMS timer (a burst of texts) through the host's admin API."""
    before, accepted = host_rows(sandbox), len(acs.reports)
    for headers in ({}, {"x-functions-key": sandbox.host_keys.event_grid}):
        response = httpx.post(f"{sandbox.world.host_url}/admin/functions/sms_notifications", json={},
                              headers=headers, timeout=10)
        assert response.status_code == 401
    listing = httpx.get(f"{sandbox.world.host_url}/admin/functions", timeout=10)
    assert listing.status_code == 401
    assert host_rows(sandbox) == before and len(acs.reports) == accepted
