"""ACS SMS events against a real Azurite: delivery reports by tag, idempotent; STOP / START kept as keyed hashes."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from sandbox import config
from shared.notifications.events import DELIVERY_REPORT, EMAIL_DELIVERY_REPORT, RECEIVED, handle_sms_event
from shared.notifications.optouts import OptOutStore, optout_partition, optout_partitions, phone_keys
from shared.runtime import reset_process_state
from shared.settings import get_settings
from shared.storage.accounts import TableAccounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import INDEX_ROW, LedgerRepository, day_partition, index_partition, message_tag

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
SENDER = "DoNotReply@sandbox.azurecomm.net"
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


@pytest.fixture()
def email_sender(monkeypatch, accounts, azurite_settings) -> str:
    """Our sender address, and the region accounts an email report is looked up in (it names no region)."""
    monkeypatch.setenv("EMAIL_SENDER_ADDRESS", SENDER)
    for region in ("americas", "emea", "apac"):
        monkeypatch.setenv(f"TABLE_ENDPOINT_{region.upper()}", azurite_settings.region_endpoint(region))
    reset_process_state()
    return SENDER


def emailed_row(accounts, endpoint: FhirEndpoint, *, indexed: bool) -> tuple[str, str, str]:
    """An email's notification row (and, as the courier now writes it, its index row; rows of old had none)."""
    ledger, end = LedgerRepository(accounts), datetime(2026, 6, 10, 16, tzinfo=UTC)
    partition, row, message_id = day_partition(endpoint.id, end), uuid.uuid4().hex, str(uuid.uuid4())
    ledger.create("emea", partition, row, {"kind": "reminder", "status": "sent", "channel": "email",
                                           "message_id": message_id, "appointment_end": end})
    if indexed:
        ledger.index_message("emea", message_id, partition, row, end)
    return partition, row, message_id


def email_report(message_id: str, status: str = "Delivered") -> dict:
    """The documented EmailDeliveryReportReceived data, camelCase as Event Grid sends it."""
    return {"sender": SENDER, "recipient": "patient@example.org", "messageId": message_id, "status": status,
            "deliveryStatusDetails": {"statusMessage": "No error."},
            "deliveryAttemptTimeStamp": "2026-06-10T15:01:02.1234567Z"}


def test_an_email_report_finds_its_row_through_the_index_and_the_index_holds_no_one(accounts, endpoint,
                                                                                    email_sender):
    partition, row, message_id = emailed_row(accounts, endpoint, indexed=True)
    index = accounts.table("ledger", "emea").get_entity(index_partition(message_id), INDEX_ROW)
    assert {k: v for k, v in index.items() if k not in ("appointment_end",)} == {
        "PartitionKey": f"msgid:{message_id}", "RowKey": INDEX_ROW, "Kind": "message_index",
        "ledger_partition": partition, "ledger_row": row}
    assert handle_sms_event("em-1", EMAIL_DELIVERY_REPORT, email_report(message_id), TOPIC, accounts) == "delivered"
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "delivered"


class WatchedAccounts(TableAccounts):
    """The same Azurite accounts, noting which table operations the ledger's tables are asked for."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.operations: list[str] = []

    def table(self, name, region=None):
        client, operations = super().table(name, region), self.operations

        class Watched:
            def __getattr__(self, attribute):
                if name == "ledger":
                    operations.append(attribute)
                return getattr(client, attribute)

        return Watched()


def test_an_indexed_email_report_reads_points_and_queries_nothing(accounts, endpoint, email_sender,
                                                                  azurite_settings):
    _, _, message_id = emailed_row(accounts, endpoint, indexed=True)
    watched = WatchedAccounts(azurite_settings)
    assert handle_sms_event("em-p", EMAIL_DELIVERY_REPORT, email_report(message_id), TOPIC, watched) == "delivered"
    assert "query_entities" not in watched.operations and "get_entity" in watched.operations, watched.operations
    _, _, old_id = emailed_row(accounts, endpoint, indexed=False)
    watched.operations.clear()
    assert handle_sms_event("em-q", EMAIL_DELIVERY_REPORT, email_report(old_id), TOPIC, watched) == "delivered"
    assert "query_entities" in watched.operations, "a row of old is found by the query"


def test_an_email_sent_before_the_index_existed_is_still_found_by_the_query(accounts, endpoint, email_sender):
    partition, row, message_id = emailed_row(accounts, endpoint, indexed=False)
    assert handle_sms_event("em-2", EMAIL_DELIVERY_REPORT, email_report(message_id, "Bounced"), TOPIC,
                            accounts) == "failed"
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "failed"


def test_an_index_row_naming_a_row_of_another_message_id_changes_nothing(accounts, endpoint, email_sender):
    partition, row, _ = emailed_row(accounts, endpoint, indexed=True)
    earlier_id = str(uuid.uuid4())  # an earlier generation's id, its index left behind by a crash
    LedgerRepository(accounts).index_message("emea", earlier_id, partition, row, datetime(2026, 6, 10, tzinfo=UTC))
    assert handle_sms_event("em-3", EMAIL_DELIVERY_REPORT, email_report(earlier_id, "Failed"), TOPIC,
                            accounts) == "unknown_row"
    assert LedgerRepository(accounts).get("emea", partition, row)["status"] == "sent"


def test_purging_an_emails_row_purges_its_index_row(accounts, endpoint):
    partition, row, message_id = emailed_row(accounts, endpoint, indexed=True)
    assert LedgerRepository(accounts).purge_before("emea", endpoint.id, datetime(2026, 6, 11, tzinfo=UTC)) == 1
    table = accounts.table("ledger", "emea")
    assert not list(table.query_entities("PartitionKey eq @p", parameters={"p": index_partition(message_id)}))
    assert LedgerRepository(accounts).get("emea", partition, row) is None


def test_email_delivery_reports_are_counted_under_the_email_metrics_once(accounts, endpoint, email_sender,
                                                                         telemetry):
    delivered, failed = emailed_row(accounts, endpoint, indexed=True), emailed_row(accounts, endpoint, indexed=True)
    for event_id, (_, _, message_id), status in (("em-d", delivered, "Delivered"), ("em-d", delivered, "Delivered"),
                                                 ("em-f", failed, "Bounced")):
        handle_sms_event(event_id, EMAIL_DELIVERY_REPORT, email_report(message_id, status), TOPIC, accounts)
    assert telemetry.value("connector.email.delivered", kind="reminder") == 1
    assert telemetry.value("connector.email.failed", kind="reminder", stage="delivery") == 1
    assert telemetry.value("connector.sms.delivered", kind="reminder") == 0
