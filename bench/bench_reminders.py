"""Outbound calls per appointment and messages per second of the SMS reminder job, against the stand-ins.

Every stand-in call takes 50 ms (ACS latency, Oracle Health delays on FHIR and token calls); the ACS rate limit and
our per-number pacing are off, so the job's own concurrency is what is measured. Storage is Azurite.

Run: .venv/bin/python -m bench.bench_reminders   (starts its own sandbox on spare ports; prints counts);
`make bench` runs it with the others.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableServiceClient

from bench.table import Figure, print_table
from sandbox.devca import make_dev_ca
from sandbox.run import start_sandbox
from sandbox.seed import sandbox_settings
from shared.http import call_counts, reset_call_counts
from shared.notifications import run_notifications
from shared.storage.accounts import TableAccounts
from tests.integration.reminders_world import AppSettings, book, open_organization, open_site

LATENCY = 0.05
SITES = 3
APPOINTMENTS_PER_SITE = 100


class CountingTransport(RequestsTransport):
    """The SDK's own transport, counting every storage request it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self._lock = threading.Lock()

    def send(self, request, **kwargs):
        with self._lock:
            self.calls += 1
        return super().send(request, **kwargs)


class CountingAccounts(TableAccounts):
    """Table access (Azurite) whose every request is counted."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.transport = CountingTransport()

    def service(self, region):
        endpoint = self.endpoint(region)
        with self._lock:
            if endpoint not in self._services:
                account = urlsplit(endpoint).path.strip("/").split("/")[0]
                key = self.settings.azurite_account_key.get_secret_value()
                self._services[endpoint] = TableServiceClient(
                    endpoint=endpoint, credential=AzureNamedKeyCredential(account, key), transport=self.transport)
            return self._services[endpoint]


def build_world(sandbox, accounts: TableAccounts) -> list:
    """Three endpoints of one organization (one sending number each)."""
    oracle, acs = sandbox.standins["oracle"], sandbox.standins["acs"]
    organization = open_organization(accounts, "americas")
    sites = []
    for index in range(SITES):
        number = f"+1833555{index:04d}"
        acs.own_number(number, verification="verified")
        tenant = f"be0c0000-0000-4000-8000-{index:012d}"
        sites.append(open_site(oracle, accounts, sandbox.world.fhir_base(tenant), f"bench{index}", organization,
                               tenant, 8_000_000 + 100_000 * index, sms_number=number, reminder_offsets=[1440, 15]))
    return sites


def book_visits(oracle, sites: list, first: datetime, serial: int, per_site: int = APPOINTMENTS_PER_SITE) -> int:
    """`per_site` video visits per endpoint, one every 15 minutes from `first`, patients in four languages."""
    languages = ("en", "es", "pt-BR", None)
    for index, site in enumerate(sites):
        for n in range(per_site):
            book(oracle, site, first + timedelta(minutes=n * 15), language=languages[n % 4],
                 mobile=f"{212 + index}{serial}{n:06d}"[:10])
    return len(sites) * per_site


def measure(label: str, accounts: CountingAccounts, now: datetime, appointments: int, workers: int = 8) -> dict:
    reset_call_counts()
    accounts.transport.calls = 0
    started, cpu_started = time.monotonic(), time.process_time()
    report = run_notifications(now, accounts=accounts, workers=workers)
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu_started
    calls = Counter(call_counts())
    calls["storage"] = accounts.transport.calls
    total = sum(calls.values())
    print(f"\n{label}: {seconds:.2f} s, {report.summary()}")
    print("  outbound calls: " + ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
          + f" (total {total})")
    print(f"  per appointment searched: {total / appointments:.2f} "
          f"(FHIR+SMART {(calls['fhir'] + calls['smart']) / appointments:.2f}, ACS {calls['acs'] / appointments:.2f}, "
          f"storage {calls['storage'] / appointments:.2f})")
    if report.sent:
        print(f"  per message sent: {total / report.sent:.2f}; throughput {report.sent / seconds:.1f} messages/s")
    return {"seconds": seconds, "sent": report.sent, "storage": calls["storage"], "total": total, "cpu": cpu}


def run(offset: int, per_site: int = APPOINTMENTS_PER_SITE) -> list[Figure]:
    """Four runs of the job (confirmations, nothing due, new bookings with 16 threads, nothing due) as figures."""
    state = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    ca = make_dev_ca(state / "ca")
    os.environ.update(ca.trust_env())
    sandbox = start_sandbox(offset=offset, state_dir=state / "sandbox", ca=ca, with_host=False, seed=False)
    settings = AppSettings({**sandbox.settings_env, "SMS_RATE_PER_MINUTE": "1000000"})
    try:
        oracle, acs = sandbox.standins["oracle"], sandbox.standins["acs"]
        acs.event_webhook = None  # no host here: delivery reports are not part of the job's cost
        acs.rate_limit_per_minute = None
        acs.latency_seconds = LATENCY
        accounts = CountingAccounts(sandbox_settings(sandbox))
        now = datetime.now(UTC)
        sites = build_world(sandbox, accounts)
        booked = book_visits(oracle, sites, now + timedelta(minutes=30), serial=5, per_site=per_site)
        for path in ("/r4/", "/tenants/"):  # every FHIR read and token request
            oracle.delay_next(path, LATENCY, count=10**6)
        print(f"{booked} appointments on {SITES} endpoints; every stand-in call takes {LATENCY * 1000:.0f} ms")
        first = measure("run 1: every booking gets its confirmation (8 sending threads)", accounts, now, booked)
        idle = measure("run 2: the same minute again (nothing due)", accounts, now, booked)
        booked += book_visits(oracle, sites, now + timedelta(minutes=35), serial=6, per_site=per_site)
        third = measure(f"run 3: {SITES * per_site} new bookings, 16 sending threads", accounts,
                        now + timedelta(minutes=5), booked, workers=16)
        measure("run 4: steady state, nothing due", accounts, now + timedelta(minutes=10), booked)
    finally:
        settings.undo()
        sandbox.stop()
    name = f"reminders ({SITES * per_site} confirmations, 50 ms per call)"
    return [
        Figure(name, "messages/s, 8 sending threads", round(first["sent"] / first["seconds"], 1), "≥ 150",
               first["sent"] / first["seconds"] >= 150),
        Figure(name, "messages/s, 16 sending threads", round(third["sent"] / third["seconds"], 1), "≥ 150",
               third["sent"] / third["seconds"] >= 150),
        Figure(name, "CPU time of the bench process (job and stand-ins) ÷ wall time, 8 threads",
               round(first["cpu"] / first["seconds"], 2)),
        Figure(name, "all outbound calls per message sent", round(first["total"] / first["sent"], 2)),
        Figure(name, "table operations per message sent (whole run)", round(first["storage"] / first["sent"], 2)),
        Figure(name, "table operations per message sent, beyond a run with nothing due",
               round((first["storage"] - idle["storage"]) / first["sent"], 2), "≤ 2",
               (first["storage"] - idle["storage"]) / first["sent"] <= 2),
        Figure(name, "table operations of a run with nothing due", idle["storage"]),
        Figure(name, "peak RSS of the bench process, stand-ins included (MB)",
               round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)),
    ]


if __name__ == "__main__":
    print_table(run(offset=3100 + int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))))
