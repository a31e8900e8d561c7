"""HASH_KEY rotates without re-sending confirmations or losing STOP replies: rows hashed before are still found."""

from __future__ import annotations

import base64
import os
from datetime import timedelta

import httpx
import pytest

from sandbox.oracle.state import utc_now
from shared.notifications import run_notifications
from shared.sms.phone import to_e164
from tests.integration.reminders_world import AppSettings, book, demo_sitting_out, open_organization, open_site

NUMBER = "+18775550166"
TENANT = "5e7d0c1a-0000-4000-8000-0000000000aa"


@pytest.fixture()
def job_settings(sandbox):
    """The job in this process reads the sandbox's settings; a rotation changes them here only."""
    settings = AppSettings(dict(sandbox.settings_env))
    yield
    settings.undo()


def accepted(acs, phone: str) -> int:
    """Texts ACS accepted for the phone."""
    with acs.lock:
        return len([r for r in acs.reports.values() if r["To"] == phone])


def ledger_rows(accounts, endpoint_id: str) -> list[dict]:
    return [dict(r) for r in accounts.table("ledger", "emea").list_entities()
            if r["PartitionKey"].startswith(endpoint_id)]


def test_rotating_the_hash_key_sends_nothing_twice_and_keeps_stops(sandbox, oracle, acs, accounts, job_settings):
    acs.own_number(NUMBER, verification="verified")
    site = open_site(oracle, accounts, sandbox.world.fhir_base(TENANT), "rot", open_organization(accounts, "emea"),
                     TENANT, 7_900_000, sms_number=NUMBER, time_zone="UTC", quiet_hours="",
                     reminder_offsets=[1440, 15], confirmations_on=True)
    now = utc_now()
    texted = book(oracle, site, now + timedelta(hours=3), mobile="3125550166")
    stopped = book(oracle, site, now + timedelta(hours=4), mobile="3125550167")
    texted_phone, stopped_phone = to_e164(texted.mobile), to_e164(stopped.mobile)

    with demo_sitting_out(accounts):
        # Before the rotation: one patient replies STOP (the host records it), the other gets a confirmation.
        events = len(acs.events_sent)
        httpx.post(f"{sandbox.world.acs_url}/_sandbox/reply",
                   json={"from": stopped_phone, "to": NUMBER, "message": "STOP"}).raise_for_status()
        acs.wait_for_events(events + 1, timeout=10)
        with acs.lock:
            acs.opted_out.discard((NUMBER, stopped_phone))  # only our own list stops the next texts
        run_notifications(now)
        assert accepted(acs, texted_phone) == 1 and accepted(acs, stopped_phone) == 0
        keys_before = {row["RowKey"] for row in ledger_rows(accounts, site.endpoint.id)}

        old_key = os.environ["HASH_KEY"]
        AppSettings({"HASH_KEY": f"h2:{base64.b64encode(b'rotated-hash-key-for-this-test!!').decode()},{old_key}"})

        run_notifications(now + timedelta(minutes=1))
        assert accepted(acs, texted_phone) == 1, "the confirmation is not sent again under the new key"
        assert accepted(acs, stopped_phone) == 0, "the STOP recorded under the old key still holds"

        reminder_time = texted.start - timedelta(minutes=15)
        run_notifications(reminder_time)
        run_notifications(reminder_time + timedelta(minutes=1))
        assert accepted(acs, texted_phone) == 2, "the 15-minute reminder goes out once, under the new key"
        assert accepted(acs, stopped_phone) == 0

    new_keys = {row["RowKey"] for row in ledger_rows(accounts, site.endpoint.id)} - keys_before
    assert len(new_keys) == 1 and new_keys.pop().startswith("h2."), "only the reminder's row is new, under h2"
