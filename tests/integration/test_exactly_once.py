"""Exactly once, for real: worker processes running the same minute, and simultaneous "Send link" clicks, against
Azurite; the ACS stand-in counts every send request it receives, repeats included."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from sandbox.oracle.state import utc_now
from shared.sms.phone import to_e164
from tests.integration.launching import launch_url, new_appointment
from tests.integration.reminders_world import book, demo_sitting_out, open_organization, open_site

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
VISITS = 12
NUMBER = "+18775550188"
TENANT = "5e7d0c1a-0000-4000-8000-0000000e0001"


@pytest.fixture()
def send_requests_since(acs) -> Callable[[], Counter]:
    """The send requests the ACS stand-in received since the test began, by (sender, recipient), repeats included.

    ACS itself swallows a repeated repeatability id, so the outbox could hide a double claim; this counts what
    our code asked for.
    """
    with acs.lock:
        before = Counter(acs.send_requests)

    def since() -> Counter:
        with acs.lock:
            return Counter(acs.send_requests) - before

    return since


def start_worker(sandbox, minute) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.reminder_worker", minute.isoformat()], cwd=ROOT,
        env={**os.environ, **sandbox.settings_env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout.readline().strip() == "ready", process.stderr.read()
    return process


def test_worker_processes_running_the_same_minute_send_each_message_once(sandbox, accounts, oracle, acs,
                                                                         send_requests_since):
    acs.own_number(NUMBER, verification="verified")
    site = open_site(oracle, accounts, sandbox.world.fhir_base(TENANT), "once", open_organization(accounts, "americas"),
                     TENANT, 9_100_000, sms_number=NUMBER, quiet_hours="", reminder_offsets=[24 * 60, 15])
    minute = utc_now().replace(second=0, microsecond=0)
    bookings = [book(oracle, site, minute + timedelta(hours=3, minutes=5 * serial), mobile=f"773555{serial + 100:04d}")
                for serial in range(VISITS)]
    mobiles = [to_e164(booking.mobile) for booking in bookings]

    with demo_sitting_out(accounts):  # this minute's work is our visits (and whatever other tests left due)
        workers = []
        try:
            workers = [start_worker(sandbox, minute) for _ in range(WORKERS)]
            for worker in workers:  # all are ready: the go reaches them together
                worker.stdin.write("go\n")
                worker.stdin.flush()
            outputs = [worker.communicate(timeout=120) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
    assert [worker.returncode for worker in workers] == [0] * WORKERS, [err for _out, err in outputs]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _err in outputs]

    send_attempts = send_requests_since()
    assert [send_attempts[(NUMBER, mobile)] for mobile in mobiles] == [1] * VISITS, "each confirmation asked once"
    assert [len([m for m in acs.outbox(mobile) if m.from_ == NUMBER]) for mobile in mobiles] == [1] * VISITS
    assert sum(send_attempts[key] for key in send_attempts if key[0] == NUMBER) == VISITS, "nothing else was sent"
    assert sum(report.get("sent", 0) for report in reports) >= VISITS, "the workers did the sending"


def test_two_sessions_clicking_send_link_at_the_same_moment_text_once(sandbox, oracle, acs, send_requests_since,
                                                                      signed_in_provider):
    appointment, _name, mobile = new_appointment(oracle, skip=3)
    patient = next(p["actor"]["reference"] for p in oracle.resource("Appointment", appointment)["participant"]
                   if "Patient/" in p["actor"]["reference"])
    texted_before = len(acs.outbox(mobile))
    sessions = [httpx.Client(follow_redirects=True, timeout=30) for _ in range(2)]
    try:
        clicks = []
        for session in sessions:  # two provider sessions open the same visit
            page = session.get(launch_url(sandbox, oracle.create_launch(appointment)))
            assert page.status_code == 200, page.text
            clicks.append((session, sandbox.world.host_url + re.search(r'sendUrl = "([^"]+)"', page.text).group(1)))
        together = threading.Barrier(2 * len(clicks))
        # Each click reads the patient just before it claims the send: Cerner answers all four reads at once,
        # so the four claims really race.
        oracle.hold_together(f"/{patient}", parties=2 * len(clicks))

        def click(session: httpx.Client, url: str) -> httpx.Response:
            together.wait(timeout=30)
            return session.post(url, headers={"accept": "application/json"})

        with ThreadPoolExecutor(2 * len(clicks)) as pool:
            answers = list(pool.map(lambda pair: click(*pair), clicks * 2))
    finally:
        for session in sessions:
            session.close()

    assert [answer.status_code for answer in answers] == [200] * 4, [answer.text for answer in answers]
    assert sorted(answer.json()["repeated"] for answer in answers) == [False, True, True, True]
    assert sum(count for (_sender, to), count in send_requests_since().items() if to == mobile) == 1, "one request"
    assert len(acs.outbox(mobile)) == texted_before + 1, "one text"
