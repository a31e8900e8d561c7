"""A large health system's reminder run with nothing new to send: FHIR calls, run time and Cerner concurrency.

20 endpoints (one Cerner tenant each), 100 departments, 50,000 appointments in the look-ahead window, every
Oracle Health call held 100 ms. Every booking already had its confirmation: the ledger holds the row each sent
confirmation leaves, so the runs measured find nothing to send. Two runs: one at a minute that searches the whole
window, one that searches only the near part (windows.py). Storage is Azurite.

Run: .venv/bin/python -m bench.bench_large_system   (starts its own sandbox on spare ports; prints figures);
`make bench` runs it with the others.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.table import Figure, print_table
from sandbox.devca import make_dev_ca
from sandbox.oracle.resources import PatientSpec
from sandbox.run import start_sandbox
from sandbox.seed import sandbox_settings
from shared.fhir import Appointment
from shared.http import call_counts, reset_call_counts
from shared.join import visit_key
from shared.notifications import run_notifications
from shared.notifications.courier import new_row
from shared.notifications.job import FHIR_REQUESTS_PER_ENDPOINT
from shared.notifications.planning import Slot
from shared.storage.accounts import TableAccounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import TABLE, day_partition
from shared.tokens import sealer
from tests.integration.reminders_world import AppSettings, add_cerner_tenant, open_organization

LATENCY = 0.1
TARGET_SECONDS = 60


@dataclass(frozen=True)
class Size:
    endpoints: int
    departments_per_endpoint: int
    appointments_per_department: int

    @property
    def appointments(self) -> int:
        return self.endpoints * self.departments_per_endpoint * self.appointments_per_department


FULL = Size(20, 5, 500)  # 20 endpoints, 100 departments, 50,000 appointments
TINY = Size(2, 2, 5)


def build_world(sandbox, accounts: TableAccounts, size: Size, now: datetime) -> list[tuple[FhirEndpoint, list]]:
    """The endpoints of one organization, their departments' bookings spread over the window (all confirmed)."""
    oracle = sandbox.standins["oracle"]
    organization = open_organization(accounts, "americas")
    number = "+18335559000"
    sandbox.standins["acs"].own_number(number, verification="verified")
    sites = []
    # Whole seconds: FHIR times carry no fractions, and the ledger's start must be the one Cerner shows.
    spread = timedelta(seconds=int(timedelta(hours=24, minutes=30).total_seconds() / size.appointments_per_department))
    for index in range(size.endpoints):
        tenant = f"1a5e0000-0000-4000-8000-{index:012d}"
        add_cerner_tenant(oracle, tenant, 20_000_000 + 100_000 * index)
        practitioner = oracle.add_practitioner("Lara", "Large", "1999999999", f"ls{index}", tenant=tenant)
        departments = [oracle.add_location(f"Virtual Care {index}-{n}", tenant=tenant)
                       for n in range(size.departments_per_endpoint)]
        # Only the 15-minute reminder, and nothing starts within 30 minutes: the confirmations are all there is.
        endpoint = FhirEndpoint(base_url=sandbox.world.fhir_base(tenant), environment="production",
                                display_name=f"large{index}", departments=departments, sms_number=number,
                                reminder_offsets=[15], quiet_hours="")
        ConfigRepository(accounts).save_endpoint(organization, endpoint, "bench")
        bookings = []
        for department in departments:
            for n in range(size.appointments_per_department):
                patient = oracle.add_patient(PatientSpec(f"Large{n}", "Patient", "en", mobile=f"312555{n % 10000:04d}"),
                                             tenant=tenant)
                start = now + timedelta(minutes=30) + n * spread
                end = start + timedelta(minutes=20)
                appointment = oracle.add_appointment(patient_id=patient, practitioner_id=practitioner,
                                                     location_id=department, start=start, end=end, tenant=tenant)
                bookings.append(Appointment(id=appointment, status="booked", start=start, end=end,
                                            patient_id=patient, location_ids=[department]))
        sites.append((endpoint, bookings))
    return sites


def seed_confirmations(accounts: TableAccounts, sites: list[tuple[FhirEndpoint, list]], sent_at: datetime) -> int:
    """The ledger rows each sent confirmation leaves (as the courier writes them), in batches per partition."""
    table = accounts.table(TABLE, "americas")
    by_partition: dict[str, list[dict]] = defaultdict(list)
    for endpoint, bookings in sites:
        for appointment in bookings:
            slot = Slot("confirmation", appointment.start)
            row = sealer().keyed_hashes("sms", endpoint.id, appointment.id, *slot.key_parts)[0]
            fields = new_row(slot, appointment, visit_key(endpoint.id, appointment.id), sent_at) | {"status": "sent"}
            partition = day_partition(endpoint.id, appointment.start)
            by_partition[partition].append({"PartitionKey": partition, "RowKey": row, "Kind": "notification",
                                            **fields})
    batches = [rows[index:index + 100] for rows in by_partition.values() for index in range(0, len(rows), 100)]
    for batch in batches:  # one at a time: Azurite resets connections of concurrent batch transactions
        table.submit_transaction([("upsert", entity) for entity in batch])
    return sum(len(batch) for batch in batches)


def measure(label: str, oracle, tenants: set[str], now: datetime) -> dict:
    """One run at `now`: seconds, FHIR and token calls, the most requests one tenant had at once."""
    reset_call_counts()
    oracle.reset_peaks()
    started = time.monotonic()
    report = run_notifications(now, max_seconds=240)
    seconds = time.monotonic() - started
    calls = Counter(call_counts())
    peak = max(oracle.peak_in_flight[tenant] for tenant in tenants)
    print(f"\n{label}: {seconds:.1f} s, {report.summary()}")
    print(f"  FHIR calls {calls['fhir']}, token calls {calls['smart']}; most requests at once on one tenant {peak}")
    return {"seconds": seconds, "fhir": calls["fhir"] + calls["smart"], "peak": peak, "sent": report.sent,
            "searched": report.searched}


def run(offset: int, size: Size = FULL) -> list[Figure]:
    """A whole-window run and a near-part run, both with nothing new to send, as figures."""
    state = Path(tempfile.mkdtemp(prefix="bench-large-"))
    ca = make_dev_ca(state / "ca")
    os.environ.update(ca.trust_env())
    sandbox = start_sandbox(offset=offset, state_dir=state / "sandbox", ca=ca, with_host=False, seed=False)
    # The deployed HTTP timeout (10 s), not the sandbox's 5 s: the stand-in shares this process's 2 cores with the job.
    settings = AppSettings({**sandbox.settings_env, "HTTP_TIMEOUT_SECONDS": "10"})
    try:
        oracle = sandbox.standins["oracle"]
        sandbox.standins["acs"].event_webhook = None
        accounts = TableAccounts(sandbox_settings(sandbox))
        whole = datetime.now(UTC).replace(second=0, microsecond=0)
        whole -= timedelta(minutes=whole.minute % 10)  # a minute that searches the whole window
        started = time.monotonic()
        sites = build_world(sandbox, accounts, size, whole)
        rows = seed_confirmations(accounts, sites, whole - timedelta(hours=1))
        print(f"{size.appointments} appointments on {size.endpoints} endpoints "
              f"({size.endpoints * size.departments_per_endpoint} departments), {rows} confirmations in the ledger; "
              f"set up in {time.monotonic() - started:.0f} s; every Oracle Health call takes {LATENCY * 1000:.0f} ms")
        for path in ("/r4/", "/tenants/"):
            oracle.delay_next(path, LATENCY, count=10**7)
        tenants = {endpoint.base_url.rsplit("/", 1)[-1] for endpoint, _ in sites}
        far = measure("whole window (the first 5 minutes of every 10)", oracle, tenants, whole)
        near = measure("near part only (the other runs)", oracle, tenants, whole + timedelta(minutes=5))
    finally:
        settings.undo()
        sandbox.stop()
    name = (f"large system ({size.endpoints} endpoints, {size.endpoints * size.departments_per_endpoint} "
            f"departments, {size.appointments} appointments, 100 ms per call)")
    return [
        Figure(name, "run time, nothing new to send, whole window (s)", round(far["seconds"], 1),
               f"≤ {TARGET_SECONDS}", far["seconds"] <= TARGET_SECONDS),
        Figure(name, "run time, nothing new to send, near part (s)", round(near["seconds"], 1),
               f"≤ {TARGET_SECONDS}", near["seconds"] <= TARGET_SECONDS),
        Figure(name, "FHIR and token calls per run, whole window", far["fhir"]),
        Figure(name, "FHIR and token calls per run, near part", near["fhir"]),
        Figure(name, "FHIR and token calls per run, average over 10 minutes", round((far["fhir"] + near["fhir"]) / 2)),
        Figure(name, "appointments searched, whole window", far["searched"]),
        Figure(name, "messages sent (nothing new: 0)", far["sent"] + near["sent"], "0",
               far["sent"] + near["sent"] == 0),
        Figure(name, "most requests at once on one Cerner tenant", max(far["peak"], near["peak"]),
               f"≤ {FHIR_REQUESTS_PER_ENDPOINT}", max(far["peak"], near["peak"]) <= FHIR_REQUESTS_PER_ENDPOINT),
    ]


if __name__ == "__main__":
    print_table(run(offset=3300 + int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))))
