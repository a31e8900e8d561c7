"""Attacks on email notifications: forged or replayed unsubscribe links, link scanners, forged delivery reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sandbox import config
from shared.notifications.events import handle_sms_event
from shared.notifications.unsubscribe import PURPOSE, unsubscribe_url
from shared.storage.config import ConfigRepository, endpoint_id_for
from shared.storage.ledger import LedgerRepository, day_partition, index_partition
from shared.tokens import sealer
from tests.integration.reminders_world import AppSettings

ADDRESS = "victim@example.org"


@pytest.fixture(scope="module")
def app_settings(sandbox) -> Iterator[None]:
    settings = AppSettings(sandbox.settings_env)
    yield
    settings.undo()


@pytest.fixture()
def demo_endpoint(sandbox, accounts, app_settings) -> str:
    return endpoint_id_for(sandbox.world.fhir_base(config.CERNER_TEST_TENANT))


def optout_rows(accounts) -> list[dict]:
    return [dict(e) for region in ("americas", "emea", "apac")
            for e in accounts.table("ledger", region).query_entities("Kind eq 'optout'")]


def test_a_tampered_unsubscribe_link_is_refused_and_stores_nothing(sandbox, accounts, demo_endpoint):
    """Tampered unsubscribe token (flipped characters) used to opt someone out."""
    url = unsubscribe_url(demo_endpoint, ADDRESS, "en")
    tampered = url[:-6] + ("AAAAAA" if not url.endswith("AAAAAA") else "BBBBBB")
    before = optout_rows(accounts)
    response = httpx.post(tampered, data={"List-Unsubscribe": "One-Click"}, timeout=30)
    assert response.status_code == 404
    assert "This link isn" in response.text and "Traceback" not in response.text
    assert optout_rows(accounts) == before


def test_a_sealed_value_of_another_purpose_cannot_unsubscribe(sandbox, accounts, demo_endpoint):
    """A sealed document made for another purpose (cookie, session) replayed as an unsubscribe token."""
    data = {"e": demo_endpoint, "r": "0" * 32, "l": "en"}
    other = sealer().seal_json(data, 3600, "portal-session")
    assert PURPOSE != "portal-session"
    before = optout_rows(accounts)
    response = httpx.post(f"{sandbox.world.host_url}/api/unsubscribe/{other}", timeout=30)
    assert response.status_code == 404
    assert optout_rows(accounts) == before


def test_an_unsubscribe_link_for_an_unknown_endpoint_stores_nothing(sandbox, accounts, app_settings):
    """A genuine-looking unsubscribe token naming a FHIR endpoint that is not registered."""
    url = unsubscribe_url(endpoint_id_for("https://fhir.elsewhere.example/r4/x"), ADDRESS, "en")
    before = optout_rows(accounts)
    response = httpx.post(url, timeout=30)
    assert response.status_code == 404
    assert optout_rows(accounts) == before


def test_a_link_scanner_opening_the_unsubscribe_link_does_not_unsubscribe(sandbox, accounts, demo_endpoint):
    """A mail security scanner prefetching (GET) the unsubscribe link on the patient's behalf."""
    url = unsubscribe_url(demo_endpoint, ADDRESS, "es")
    before = optout_rows(accounts)
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200 and "<form method=\"post\">" in response.text
    assert optout_rows(accounts) == before


def test_a_delivery_report_from_another_sender_changes_nothing(sandbox, accounts, demo_endpoint):
    """A forged EmailDeliveryReportReceived from a sender that is not ours, naming one of our message ids."""
    ledger = LedgerRepository(accounts)
    start = datetime.now(UTC) + timedelta(days=2)
    partition, row, message_id = day_partition(demo_endpoint, start), "f" * 32, "6f1f3d1e-0000-4000-8000-00000000beef"
    ledger.create("americas", partition, row, {"kind": "confirmation", "status": "sent", "channel": "email",
                                               "message_id": message_id, "appointment_end": start})
    assert ConfigRepository(accounts).region(config.ENTRA_TENANT_ID) == "americas"
    before = optout_rows(accounts)
    outcome = handle_sms_event("evt-forged-1", "Microsoft.Communication.EmailDeliveryReportReceived", {
        "sender": "DoNotReply@attacker.example", "recipient": ADDRESS, "messageId": message_id,
        "status": "Suppressed"}, config.ACS_RESOURCE_ID, accounts)
    assert outcome == "not_ours"
    assert ledger.get("americas", partition, row)["status"] == "sent"
    assert optout_rows(accounts) == before, "no opt-out recorded for the named recipient"


@pytest.mark.parametrize("message_id", [
    "../ledger(PartitionKey='x',RowKey='y')", "6f1f3d1e-0000-4000-8000-00000000beef/../x", "a'b", "a#b", "a?b=c",
    "x" * 65,
])
def test_a_delivery_report_with_a_message_id_shaped_to_address_another_row_changes_nothing(sandbox, accounts,
                                                                                           demo_endpoint,
                                                                                           message_id):
    """An EmailDeliveryReportReceived whose messageId carries key or path characters to reach another ledger row."""
    ledger = LedgerRepository(accounts)
    start = datetime.now(UTC) + timedelta(days=2)
    partition, row, ours = day_partition(demo_endpoint, start), "e" * 32, "6f1f3d1e-0000-4000-8000-00000000beef"
    ledger.create("americas", partition, row, {"kind": "confirmation", "status": "sent", "channel": "email",
                                               "message_id": ours, "appointment_end": start})
    ledger.index_message("americas", ours, partition, row, start)
    before = optout_rows(accounts)
    outcome = handle_sms_event(f"evt-shaped-{abs(hash(message_id))}",
                               "Microsoft.Communication.EmailDeliveryReportReceived", {
                                   "sender": config.EMAIL_SENDER_ADDRESS, "recipient": ADDRESS,
                                   "messageId": message_id, "status": "Suppressed"}, config.ACS_RESOURCE_ID, accounts)
    assert outcome == "ignored"
    assert ledger.get("americas", partition, row)["status"] == "sent"
    assert optout_rows(accounts) == before, "no opt-out recorded for the named recipient"
    table = accounts.table("ledger", "americas")
    assert not list(table.query_entities("PartitionKey eq @p", parameters={"p": index_partition(message_id)}))
