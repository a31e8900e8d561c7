"""Patients without a textable mobile get email: one confirmation, in their language, joinable; unsubscribe sticks.

An endpoint set to "email when there is no textable mobile" runs the real job (in this process, like the reminder
day) against the sandbox's Oracle Health, ACS (SMS and Email APIs) and Azurite; delivery reports come back
through Event Grid and the Functions host; the patient unsubscribes and joins through the host's routes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from sandbox import config
from sandbox.oracle.resources import PatientSpec
from sandbox.oracle.state import utc_now
from sandbox.seed import ORGANIZER_UPN
from shared.join import visit_key
from shared.notifications import run_notifications
from shared.notifications.optouts import email_key, email_scope, optout_partition, phone_key
from shared.sms.phone import to_e164
from shared.storage.config import ConfigRepository
from shared.storage.ledger import INDEX_ROW, index_partition
from tests.integration.reminders_world import AppSettings, Site, open_site

NUMBER = "+18335550177"
HOME_ONLY = "paciente.casa@example.org"
WITH_MOBILE = "tiene.movil@example.org"
LEAVING = "quiere.baja@example.org"
SUPPRESSED = "suppressed@example.org"  # on the ACS resource's suppression list
STOPPED = "paro.sms@example.org"  # has a mobile, but replied STOP to texts


@dataclass
class Patient:
    address: str
    appointment_id: str
    home: str
    mobile: str | None


@contextmanager
def demo_endpoints_idle(accounts) -> Iterator[None]:
    """The demo organization's own endpoints poll no department for a while (the job here is about ours)."""
    repository = ConfigRepository(accounts)
    saved = repository.endpoints(config.ENTRA_TENANT_ID)
    for endpoint in saved:
        repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint.model_copy(update={"departments": []}), "t")
    try:
        yield
    finally:
        for endpoint in saved:
            repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint, "t")


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll until `check` returns something truthy (events arrive asynchronously); its last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture(scope="module")
def world(sandbox, accounts) -> Iterator[dict[str, Any]]:
    """A Cerner tenant of the demo organization, emailing patients without a textable mobile; three patients."""
    settings = AppSettings(sandbox.settings_env)
    idle = demo_endpoints_idle(accounts)
    idle.__enter__()
    oracle, acs = sandbox.standins["oracle"], sandbox.standins["acs"]
    acs.own_number(NUMBER, verification="verified")
    tenant = "5e7d0c1a-0000-4000-8000-0000000e0a11"
    site = open_site(oracle, accounts, sandbox.world.fhir_base(tenant), "email", config.ENTRA_TENANT_ID, tenant,
                     8_800_000, sms_number=NUMBER, channel="email_if_no_mobile", organizer=ORGANIZER_UPN,
                     time_zone="America/Chicago", default_language="en")
    start = utc_now() + timedelta(minutes=20)  # inside the join window, so the emailed link opens the lobby
    patients = {
        "home_only": book(oracle, site, start, "es", HOME_ONLY, home="3125550161"),
        "with_mobile": book(oracle, site, start, "en", WITH_MOBILE, home="3125550162", mobile="3125550172"),
        "leaving": book(oracle, site, start + timedelta(minutes=5), "pt-BR", LEAVING, home="3125550163"),
        "suppressed": book(oracle, site, start + timedelta(minutes=6), "en", SUPPRESSED, home="3125550164"),
    }
    patients["stopped"] = book(oracle, site, start + timedelta(minutes=7), "es", STOPPED, home="3125550165",
                               mobile="3125550175")
    acs.mail.outcome[SUPPRESSED] = "Suppressed"
    reply_stop(sandbox, accounts, to_e164("3125550175"))
    try:
        yield {"site": site, "patients": patients, "oracle": oracle, "acs": acs, "start": start}
    finally:
        idle.__exit__(None, None, None)
        settings.undo()


def book(oracle, site: Site, start: datetime, language: str, address: str, *, home: str,
         mobile: str | None = None) -> Patient:
    spec = PatientSpec("Emilia", "Correo", language, mobile=mobile, home=home, email=address, birth_date="1961-02-03")
    patient_id = oracle.add_patient(spec, tenant=site.tenant)
    appointment_id = oracle.add_appointment(patient_id=patient_id, practitioner_id=site.practitioner,
                                            location_id=site.department, start=start,
                                            end=start + timedelta(minutes=30), tenant=site.tenant)
    return Patient(address, appointment_id, home, mobile)


def reply_stop(sandbox, accounts, mobile: str) -> None:
    """The patient texts STOP to the endpoint's number; wait until the host has recorded the opt-out."""
    httpx.post(f"{sandbox.world.acs_url}/_sandbox/reply", json={"from": mobile, "to": NUMBER, "message": "STOP"},
               timeout=10).raise_for_status()
    partition, row = optout_partition(NUMBER), phone_key(mobile)
    table = accounts.table("ledger", "americas")
    assert wait_for(lambda: list(table.query_entities("PartitionKey eq @p and RowKey eq @r",
                                                      parameters={"p": partition, "r": row})))


def run_overlapping(now: datetime) -> None:
    """Two runs at once, then the same run again (a retried timer)."""
    threads = [threading.Thread(target=run_notifications, args=(now,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_notifications(now)


def ledger_rows(accounts, endpoint_id: str) -> list[dict]:
    return [dict(e) for e in accounts.table("ledger", "americas").list_entities()
            if e["PartitionKey"].startswith(endpoint_id)]


@pytest.fixture(scope="module")
def first_runs(world, accounts) -> dict[str, Any]:
    """The job runs (overlapping and repeated); every send operation has finished and been reported."""
    run_overlapping(utc_now())
    acs, endpoint_id = world["acs"], world["site"].endpoint.id
    wait_for(lambda: all(r["status"] in ("delivered", "opted_out") for r in ledger_rows(accounts, endpoint_id)
                         if r.get("channel") == "email" and r["status"] != "skipped"))
    return {"acs": acs}


def test_a_home_only_patient_gets_one_confirmation_email_in_their_language_and_no_sms(world, first_runs):
    acs, patient = world["acs"], world["patients"]["home_only"]
    [email] = wait_for(lambda: acs.mail.mailbox(HOME_ONLY))
    assert email.subject == "Su cita virtual está programada"
    local = world["start"].astimezone(ZoneInfo(world["site"].endpoint.time_zone))
    assert f"{local:%H:%M}" in email.plain_text and f"{local:%H:%M}" in email.html
    assert "/api/join/" in email.plain_text and "/api/unsubscribe/" in email.plain_text
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.headers["List-Unsubscribe"].startswith("<http")
    for personal in ("Emilia", "Correo", world["site"].endpoint.display_name, "Virtual Care", HOME_ONLY):
        assert personal not in email.subject + email.plain_text + email.html
    assert acs.outbox(to_e164(patient.home)) == [], "a home number is not texted"
    assert len(acs.mail.mailbox(HOME_ONLY)) == 1, "overlapping and repeated runs sent it once"


def test_a_patient_with_a_mobile_is_texted_not_emailed(world, first_runs):
    acs, patient = world["acs"], world["patients"]["with_mobile"]
    [text] = wait_for(lambda: acs.outbox(to_e164(patient.mobile)))
    assert "is booked for" in text.message
    assert acs.mail.mailbox(WITH_MOBILE) == []


def test_a_patient_who_replied_stop_to_texts_is_emailed_instead(world, first_runs):
    acs, patient = world["acs"], world["patients"]["stopped"]
    [email] = wait_for(lambda: acs.mail.mailbox(STOPPED))
    assert email.subject == "Su cita virtual está programada"
    assert acs.outbox(to_e164(patient.mobile)) == []


def test_delivery_reports_reach_the_ledger_without_identifying_anyone(world, first_runs, accounts):
    rows = [r for r in ledger_rows(accounts, world["site"].endpoint.id) if r.get("channel") == "email"]
    sent = sorted(r["status"] for r in rows if r["status"] != "skipped")
    assert sent == ["delivered", "delivered", "delivered", "opted_out"], "the suppressed address is opted out"
    assert {r["detail"] for r in rows if r["status"] == "skipped"} == {"texted_instead"}
    text = " ".join(str(v) for r in rows for v in r.values())
    assert not [a for a in (HOME_ONLY, WITH_MOBILE, LEAVING, SUPPRESSED, STOPPED, "example.org") if a in text]


def test_each_email_is_indexed_by_its_send_operation_for_a_point_read_and_the_index_names_no_one(world, first_runs,
                                                                                                 accounts):
    rows = [r for r in ledger_rows(accounts, world["site"].endpoint.id)
            if r.get("channel") == "email" and r["status"] != "skipped"]
    operations = set(world["acs"].mail.operations)
    assert len(rows) == 4 and {r["message_id"] for r in rows} <= operations, "the ids ACS knows the emails by"
    table = accounts.table("ledger", "americas")
    for row in rows:
        index = table.get_entity(index_partition(row["message_id"]), INDEX_ROW)
        assert (index["ledger_partition"], index["ledger_row"]) == (row["PartitionKey"], row["RowKey"])
        assert set(index) == {"PartitionKey", "RowKey", "Kind", "ledger_partition", "ledger_row", "appointment_end"}
        assert not [a for a in (HOME_ONLY, LEAVING, SUPPRESSED, STOPPED, "example.org") if a in str(dict(index))]


def test_the_patient_joins_from_the_email(world, first_runs, sandbox):
    [email] = world["acs"].mail.mailbox(HOME_ONLY)
    link = re.search(r"(http://\S+/api/join/\S+)", email.plain_text).group(1)
    opened = httpx.get(link, follow_redirects=False, timeout=30)
    assert opened.status_code == 302
    assert opened.headers["location"].startswith(sandbox.world.graph_url)


def test_an_unsubscribed_patient_gets_nothing_more(world, first_runs, sandbox, accounts):
    acs, oracle, site = world["acs"], world["oracle"], world["site"]
    patient = world["patients"]["leaving"]
    [email] = wait_for(lambda: acs.mail.mailbox(LEAVING))
    link = re.search(r"(http://\S+/api/unsubscribe/\S+)", email.plain_text).group(1)
    optouts = accounts.table("ledger", "americas")
    partition, row = optout_partition(email_scope(site.endpoint.id)), email_key(LEAVING)

    confirm = httpx.get(link, timeout=30)
    assert confirm.status_code == 200 and "Cancelar inscrição" in confirm.text
    assert not list(optouts.query_entities("PartitionKey eq @p and RowKey eq @r",
                                           parameters={"p": partition, "r": row})), "GET changes nothing"
    one_click = httpx.post(email.headers["List-Unsubscribe"].strip("<>"), data={"List-Unsubscribe": "One-Click"},
                           timeout=30)
    assert one_click.status_code == 200 and "Inscrição cancelada" in one_click.text
    assert optouts.get_entity(partition, row)["status"] == "opted_out"

    moved = world["start"] + timedelta(minutes=10)
    oracle.reschedule(patient.appointment_id, moved, moved + timedelta(minutes=30), tenant=site.tenant)
    run_notifications(utc_now())
    rows = ledger_rows(accounts, site.endpoint.id)
    assert [r["status"] for r in rows if r["kind"] == "reschedule" and r.get("channel") == "email"] == ["opted_out"]
    assert len(acs.mail.mailbox(LEAVING)) == 1, "no email after unsubscribing"


def test_an_address_acs_suppressed_is_not_emailed_again(world, first_runs, accounts):
    acs, oracle, site = world["acs"], world["oracle"], world["site"]
    patient = world["patients"]["suppressed"]
    partition, row = optout_partition(email_scope(site.endpoint.id)), email_key(SUPPRESSED)
    assert accounts.table("ledger", "americas").get_entity(partition, row)["status"] == "opted_out"

    def sends() -> int:
        return len([op for op in acs.mail.operations.values()
                    if op.request["recipients"]["to"][0]["address"] == SUPPRESSED])

    before = sends()
    soon = utc_now() + timedelta(minutes=10)  # now inside the 15-minute reminder's window
    oracle.reschedule(patient.appointment_id, soon, soon + timedelta(minutes=30), tenant=site.tenant)
    run_notifications(utc_now())
    reminders = [r for r in ledger_rows(accounts, site.endpoint.id)
                 if r["kind"] == "reminder" and r.get("channel") == "email"
                 and r["visit"] == visit_key(site.endpoint.id, patient.appointment_id)]
    assert [r["status"] for r in reminders] == ["opted_out"], "the reminder was planned, and skipped"
    assert before == 1 and sends() == 1, "nothing more went to ACS for that address"
