"""ACS SMS events against a real Azurite: delivery reports by tag, idempotent; STOP / START kept as keyed hashes."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from sandbox import config
from shared.notifications.events import DELIVERY_REPORT, RECEIVED, handle_sms_event
from shared.notifications.optouts import OptOutStore, optout_partition, optout_partitions, phone_keys
from shared.runtime import reset_process_state
from shared.settings import get_settings
from shared.storage.accounts import TableAccounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import LedgerRepository, day_partition, message_tag

# Shapes of the documented Event Grid samples (eventgrid-acs-sms-deliveryreport-event.json, -received-event.json).
DELIVERY_SAMPLE = {
    "MessageId": "Outgoing_202009180022138813a09b-0cbf-4304-9b03-1546683bb910", "From": "15555555555",
    "To": "+15555555555", "DeliveryStatus": "Delivered", "DeliveryStatusDetails": "No error.",
    "ReceivedTimestamp": "2020-09-18T00:22:20.2855749Z",
    "DeliveryAttempts": [{"Timestamp": "2020-09-18T00:22:14.9315918Z", "SegmentsSucceeded": 1, "SegmentsFailed": 0}],
}
RECEIVED_SAMPLE = {
    "MessageId": "Incoming_20200918002745d29ebbea-3341-4466-9690-0a03af35228e", "From": "15555555555",
    "To": "15555555555", "Message": "Great to connect with Azure Communication Services events",
    "ReceivedTimestamp": "2020-09-18T00:27:45.32Z",
}
PATIENT = "+13125550142"
TOPIC = config.ACS_RESOURCE_ID


@pytest.fixture()
def accounts(azurite_settings, monkeypatch) -> TableAccounts:
    """Azurite, and the keys the keyed hashes need in this process's settings."""
    monkeypatch.setenv("SEAL_KEYS", azurite_settings.seal_keys.get_secret_value())
    monkeypatch.setenv("SEAL_ACTIVE_KEY_ID", azurite_settings.seal_active_key_id)
    monkeypatch.setenv("HASH_KEY", azurite_settings.hash_key.get_secret_value())
    monkeypatch.setenv("ACS_RESOURCE_ID", TOPIC)
    reset_process_state()
    yield TableAccounts(azurite_settings)
    reset_process_state()


@pytest.fixture()
def endpoint(accounts) -> FhirEndpoint:
    """An organization in emea with one endpoint texting from a number of its own (Azurite outlives a test)."""
    organization = str(uuid.uuid4())
    config = ConfigRepository(accounts)
    config.choose_region(organization, "emea", "test")
    saved = FhirEndpoint(base_url=f"https://fhir.example/r4/{uuid.uuid4()}", environment="test",
                         sms_number=f"+1833{uuid.uuid4().int % 10**7:07d}", departments=["1"])
    config.save_endpoint(organization, saved, "test")
    return saved


def sent_row(accounts, endpoint: FhirEndpoint) -> tuple[str, str]:
    partition, row = day_partition(endpoint.id, datetime(2026, 6, 10, tzinfo=UTC)), uuid.uuid4().hex
    LedgerRepository(accounts).create("emea", partition, row, {"kind": "reminder", "status": "sent"})
    return partition, row


def report(endpoint: FhirEndpoint, tag: str, status: str = "Delivered", details: str = "No error.",
           camel: bool = False) -> dict:
    """The documented PascalCase sample with our tag (or the SDK's camelCase spelling)."""
    data = {**DELIVERY_SAMPLE, "Tag": tag, "DeliveryStatus": status, "DeliveryStatusDetails": details,
            "From": endpoint.sms_number.lstrip("+"), "To": PATIENT}
    return {key[0].lower() + key[1:]: value for key, value in data.items()} if camel else data


def reply(endpoint: FhirEndpoint, message: str, at: str) -> dict:
    return {**RECEIVED_SAMPLE, "From": PATIENT.lstrip("+"), "To": endpoint.sms_number, "Message": message,
            "ReceivedTimestamp": at}


def test_a_delivery_report_sets_the_status_once_per_event(accounts, endpoint):
    partition, row = sent_row(accounts, endpoint)
    tag = message_tag(partition, row)
    assert handle_sms_event("ev-1", DELIVERY_REPORT, report(endpoint, tag), TOPIC, accounts) == "delivered"
    stored = LedgerRepository(accounts).get("emea", partition, row)
    assert stored["status"] == "delivered" and stored["event_id"] == "ev-1"
    assert stored["delivered_at"] == datetime(2020, 9, 18, 0, 22, 20, 285574, tzinfo=UTC)
    again = report(endpoint, tag, "Failed", "Other")
    assert handle_sms_event("ev-1", DELIVERY_REPORT, again, TOPIC, accounts) == "duplicate"
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "delivered"


def test_delivery_reports_are_counted_delivered_or_failed_by_message_kind_once(accounts, endpoint, telemetry):
    delivered, failed = sent_row(accounts, endpoint), sent_row(accounts, endpoint)
    handle_sms_event("ev-d", DELIVERY_REPORT, report(endpoint, message_tag(*delivered)), TOPIC, accounts)
    handle_sms_event("ev-d", DELIVERY_REPORT, report(endpoint, message_tag(*delivered)), TOPIC, accounts)
    handle_sms_event("ev-f", DELIVERY_REPORT, report(endpoint, message_tag(*failed), "Failed", "Other"), TOPIC,
                     accounts)
    assert telemetry.value("connector.sms.delivered", kind="reminder") == 1
    assert telemetry.value("connector.sms.failed", kind="reminder", stage="delivery") == 1


def test_a_camel_case_blocked_report_records_the_opt_out_without_the_phone_number(accounts, endpoint):
    partition, row = sent_row(accounts, endpoint)
    event = report(endpoint, message_tag(partition, row), "Failed", "Sender blocked for given recipient", camel=True)
    assert handle_sms_event("ev-2", DELIVERY_REPORT, event, TOPIC, accounts) == "opted_out"
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "opted_out"
    assert len(OptOutStore(LedgerRepository(accounts)).opted_out("emea", endpoint.sms_number)) == 1
    rows = [dict(e) for e in accounts.table("ledger", "emea").list_entities()
            if e["PartitionKey"] == optout_partition(endpoint.sms_number)]
    assert rows and not [r for r in rows if PATIENT.lstrip("+")[-7:] in json.dumps(r, default=str)]


def test_reports_that_are_not_ours_are_ignored(accounts, endpoint):
    def outcome(tag: str) -> str:
        return handle_sms_event(uuid.uuid4().hex, DELIVERY_REPORT, report(endpoint, tag), TOPIC, accounts)

    assert outcome("") == "untagged"
    assert outcome("0000000000000000-20260610|x") == "unknown_endpoint"
    assert outcome(f"{endpoint.id}-20260610|gone") == "unknown_row"
    assert handle_sms_event("ev-6", "Microsoft.Communication.ChatMessageReceived", {}, TOPIC, accounts) == "ignored"


def test_stop_and_start_replies_follow_their_order_not_their_arrival(accounts, endpoint):
    store = OptOutStore(LedgerRepository(accounts))
    stop, start = reply(endpoint, " stop ", "2026-06-10T10:00:00Z"), reply(endpoint, "START", "2026-06-10T11:00:00Z")
    assert handle_sms_event("in-1", RECEIVED, stop, TOPIC, accounts) == "opted_out"
    assert store.opted_out("emea", endpoint.sms_number)
    assert handle_sms_event("in-2", RECEIVED, start, TOPIC, accounts) == "opted_in"
    assert not store.opted_out("emea", endpoint.sms_number)
    handle_sms_event("in-1", RECEIVED, stop, TOPIC, accounts)  # Event Grid redelivers the STOP late
    assert not store.opted_out("emea", endpoint.sms_number), "an older STOP does not undo a newer START"
    chat = reply(endpoint, "See you then", "2026-06-10T12:00:00Z")
    assert handle_sms_event("in-3", RECEIVED, chat, TOPIC, accounts) == "ignored"


def test_a_reply_to_a_number_nobody_linked_is_not_recorded(accounts, endpoint):
    event = {**reply(endpoint, "STOP", "2026-06-10T10:00:00Z"), "To": "+18005550999"}
    assert handle_sms_event("in-4", RECEIVED, event, TOPIC, accounts) == "not_linked"


def test_a_stop_recorded_before_a_hash_key_rotation_still_holds_and_a_later_start_lifts_it(accounts, endpoint,
                                                                                          monkeypatch):
    old_key = get_settings().hash_key.get_secret_value()
    stop, start = reply(endpoint, "STOP", "2026-06-10T10:00:00Z"), reply(endpoint, "START", "2026-06-10T11:00:00Z")
    assert handle_sms_event("rot-1", RECEIVED, stop, TOPIC, accounts) == "opted_out"
    monkeypatch.setenv("HASH_KEY", f"h2:{base64.b64encode(uuid.uuid4().bytes * 2).decode()},{old_key}")
    reset_process_state()
    store = OptOutStore(LedgerRepository(accounts))
    assert not store.opted_out("emea", endpoint.sms_number).isdisjoint(phone_keys(PATIENT)), "the STOP is not lost"
    assert handle_sms_event("rot-2", RECEIVED, start, TOPIC, accounts) == "opted_in"
    assert store.opted_out("emea", endpoint.sms_number).isdisjoint(phone_keys(PATIENT))
    rows = [e for e in accounts.table("ledger", "emea").list_entities()
            if e["PartitionKey"] in optout_partitions(endpoint.sms_number)]
    assert len(rows) == 1, "the START updated the row the STOP made, under the old key"


def test_only_the_keywords_acs_documents_change_the_opt_out(accounts, endpoint):
    store = OptOutStore(LedgerRepository(accounts))
    assert handle_sms_event("kw-1", RECEIVED, reply(endpoint, "Stop", "2026-06-10T10:00:00Z"), TOPIC.upper(),
                            accounts) == "opted_out"
    for number, word in enumerate(("YES", "CANCEL", "END", "QUIT", "OPTOUT", "stop it")):
        event = reply(endpoint, word, f"2026-06-10T10:0{number + 1}:00Z")
        assert handle_sms_event(f"kw-w{number}", RECEIVED, event, TOPIC, accounts) == "ignored", word
    assert store.opted_out("emea", endpoint.sms_number)
    unstop = reply(endpoint, "UNSTOP", "2026-06-10T11:00:00Z")
    assert handle_sms_event("kw-2", RECEIVED, unstop, TOPIC, accounts) == "opted_in"
    assert not store.opted_out("emea", endpoint.sms_number)
