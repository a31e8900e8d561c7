"""Fan-out for real: the timer queues one message per endpoint on Azurite, two Functions host processes share the
queue, and every patient still gets each text once (the ledger decides, as without the queue)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.queue import QueueClient

from sandbox.config import AZURITE_KEY
from sandbox.oracle.state import utc_now
from sandbox.servers import free_port, wait_for_port
from shared.join import visit_key
from shared.notifications import run_notifications
from shared.sms.phone import to_e164
from tests.integration.reminders_world import AppSettings, book, demo_sitting_out, open_organization, open_site
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SITES = 6
VISITS = 2
NUMBER = "+18775550199"
SLICE = "sms_notifications_slice"


@pytest.fixture()
def queue_name() -> str:
    """A queue of this test's own, so the session's host (listening on the default queue) takes no part."""
    return f"sms-slices-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def two_hosts(sandbox, queue_name, tmp_path):
    """Two Functions host processes (two instances) on the same app, settings and queue; their logs."""
    processes, logs = [], []
    env = {**os.environ, **sandbox.ca.trust_env(), **sandbox.settings_env, "SMS_QUEUE_NAME": queue_name,
           "SMS_SCHEDULE": "0 0 0 1 1 *"}
    try:
        for index in range(2):
            port, log = free_port(), tmp_path / f"host{index}.log"
            with open(log, "wb") as out:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "sandbox.functions_host", "--app", "function_app:app", "--port", str(port),
                     "--state-dir", str(tmp_path / f"timers{index}")],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
            logs.append(log)
            wait_for_port(port, timeout=120)
        yield logs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def queue(sandbox, name: str) -> QueueClient:
    return QueueClient(sandbox.world.queue_endpoint(), name,
                       credential=AzureNamedKeyCredential("devstoreaccount1", AZURITE_KEY))


def messages_left(client: QueueClient) -> int:
    try:
        return client.get_queue_properties().approximate_message_count
    except Exception:  # not created yet
        return 0


def slices_done(log: Path) -> int:
    return log.read_text(errors="replace").count(f"Executed 'Functions.{SLICE}' (Succeeded")


def test_two_instances_share_a_fanned_out_run_and_send_each_text_once(sandbox, accounts, oracle, acs, queue_name,
                                                                     two_hosts):
    acs.own_number(NUMBER, verification="verified")
    organization = open_organization(accounts, "americas")
    minute = utc_now().replace(second=0, microsecond=0)
    sites, bookings = [], []
    for index in range(SITES):
        tenant = f"fa000000-0000-4000-8000-{uuid.uuid4().hex[:12]}"
        site = open_site(oracle, accounts, sandbox.world.fhir_base(tenant), f"fan{index}", organization, tenant,
                         30_000_000 + 100_000 * index, sms_number=NUMBER, quiet_hours="", reminder_offsets=[1440, 15])
        sites.append(site)
        bookings += [book(oracle, site, minute + timedelta(hours=2, minutes=10 * n), mobile=f"64655{index}{n:04d}")
                     for n in range(VISITS)]
    mobiles = [to_e164(booking.mobile) for booking in bookings]
    with acs.lock:
        before = Counter(acs.send_requests)

    settings = AppSettings({**sandbox.settings_env, "SMS_FANOUT": "always", "SMS_QUEUE_NAME": queue_name})
    try:
        with demo_sitting_out(accounts):
            first = run_notifications(minute)
            # The same run queued again (a retried timer, an overlapping occurrence): every slice arrives twice.
            again = run_notifications(minute)
            slices = queue(sandbox, queue_name)
            assert wait_until(lambda: messages_left(slices) == 0), "the two hosts took every slice"
        visits = {visit_key(b.site.endpoint.id, b.appointment_id) for b in bookings}
    finally:
        settings.undo()

    assert first.queued == again.queued >= SITES and first.sent == again.sent == 0, "the timer only queued"
    with acs.lock:
        asked = Counter(acs.send_requests) - before
    assert [asked[(NUMBER, mobile)] for mobile in mobiles] == [1] * len(mobiles), "each confirmation asked once"
    assert [len([m for m in acs.outbox(mobile) if m.from_ == NUMBER]) for mobile in mobiles] == [1] * len(mobiles)
    done = [slices_done(log) for log in two_hosts]
    assert sum(done) >= 2 * SITES and all(count >= 1 for count in done), f"slices run per host: {done}"
    assert messages_left(queue(sandbox, f"{queue_name}-poison")) == 0

    # The ledger as a single instance leaves it: one confirmation row per visit, sent (or delivered, once ACS's
    # delivery report is in).
    rows = [row for row in accounts.table("ledger", "americas").list_entities()
            if any(row["PartitionKey"].startswith(site.endpoint.id) for site in sites)]
    assert sorted((row["visit"], row["kind"]) for row in rows) == sorted((visit, "confirmation") for visit in visits)
    assert {row["status"] for row in rows} <= {"sent", "delivered"}
