"""The SMS reminder job: messages per second, peak RSS and table operations per message, and the share of ACS's
allowed rate it uses when the rate limit is on.

The job runs in a process of its own, as a worker would (bench/reminder_job.py); the stand-ins run in this process
and Azurite in its own, so the job's CPU time and peak RSS are its alone. Appointments are put straight into the
Oracle Health stand-in's memory. Every stand-in call takes 50 ms (ACS latency, Oracle Health delays on FHIR and
token calls).

- Throughput: ACS's rate limit and our per-number pacing are off, so the job's own concurrency is measured, for
  1,000 and then 10,000 due confirmations (each in a fresh job process, so each peak RSS is its own).
- Rate share: 5 sending numbers at ACS's 200 messages per number per minute, 2,000 due confirmations: the job
  paces itself to the limit; the figure is messages accepted per second over the allowed rate, and ACS's 429s.

Run: .venv/bin/python -m bench.bench_reminders   (starts its own sandbox on spare ports; prints the figures)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.table import Figure, print_table
from sandbox.devca import make_dev_ca
from sandbox.run import start_sandbox
from sandbox.seed import sandbox_settings
from shared.storage.accounts import TableAccounts
from shared.storage.config import ConfigRepository, SmsConsents
from tests.integration.reminders_world import book, open_organization, open_site

LATENCY = 0.05
SITES = 10
COUNTS = (1_000, 10_000)
WORKERS = 32
RATE_NUMBERS, RATE_PER_MINUTE, RATE_MESSAGES = 5, 200, 2_000
LANGUAGES = ("en", "es", "pt-BR", None)
AREA_CODES = (212, 213, 214, 215, 216, 217, 218, 219, 224, 225)  # US area codes a toll-free number reaches


class World:
    """Organizations, endpoints, numbers and bookings made for one measurement."""

    def __init__(self, sandbox, accounts: TableAccounts, now: datetime) -> None:
        self.sandbox, self.accounts, self.now = sandbox, accounts, now
        self.oracle, self.acs = sandbox.standins["oracle"], sandbox.standins["acs"]
        self.azurite = sandbox.processes[0].pid
        self.serial = 0

    def open(self, sites: int, appointments: int) -> tuple[str, list[str]]:
        """A new organization with `sites` endpoints (a number each) and `appointments` bookings among them, one a
        minute per endpoint from 30 minutes on; returns the organization and its sending numbers."""
        self.serial += 1
        organization = open_organization(self.accounts, "americas")
        numbers = []
        for index in range(sites):
            number = f"+1833{self.serial:03d}{index:04d}"
            self.acs.own_number(number, verification="verified")
            tenant = f"be0c0000-0000-4000-8{self.serial:03d}-{index:012d}"
            base_url = self.sandbox.world.fhir_base(tenant)
            site = open_site(self.oracle, self.accounts, base_url, f"b{self.serial}x{index}", organization, tenant,
                             10_000_000 * self.serial + 100_000 * index, sms_number=number,
                             reminder_offsets=[1440, 15])
            for n in range(appointments // sites):
                book(self.oracle, site, self.now + timedelta(minutes=30 + n), language=LANGUAGES[n % 4],
                     mobile=f"{AREA_CODES[index % len(AREA_CODES)]}{2 + self.serial % 8}{n:06d}")
            numbers.append(number)
        return organization, numbers

    def close(self, organization: str) -> None:
        """The organization withdraws its SMS consents: later runs leave its endpoints alone."""
        ConfigRepository(self.accounts).save_sms_consents(organization, SmsConsents())


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time so far of this process (the stand-ins) or of another one (Azurite)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_job(env: dict[str, str], now: datetime, workers: int = WORKERS, azurite: int | None = None) -> dict:
    """One run of the job in a fresh process; its figures, with the CPU time the stand-ins and Azurite spent."""
    standins, storage = cpu_seconds(), cpu_seconds(azurite) if azurite else 0.0
    command = [sys.executable, "-m", "bench.reminder_job", now.isoformat(), str(workers)]
    if os.environ.get("BENCH_PROFILE_DIR"):  # cProfile of each job run, for `python -m pstats`
        command += ["--profile", str(Path(os.environ["BENCH_PROFILE_DIR"]) / f"reminder-job-{time.time_ns()}.prof")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the reminder job failed:\n{result.stderr[-3000:]}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    outcome["storage_total"] = sum(outcome["storage"].values())
    outcome["standins_cpu"] = cpu_seconds() - standins
    outcome["azurite_cpu"] = cpu_seconds(azurite) - storage if azurite else 0.0
    print(f"  {outcome['sent']} sent in {outcome['seconds']:.1f} s ({outcome['sent'] / outcome['seconds']:.1f}/s), "
          f"CPU {outcome['cpu']:.1f} s (stand-ins {outcome['standins_cpu']:.1f} s, Azurite "
          f"{outcome['azurite_cpu']:.1f} s), peak RSS {outcome['peak_rss_mb']:.0f} MB; storage {outcome['storage']}; "
          f"calls {outcome['calls']}; {outcome['summary']}", flush=True)
    return outcome


def throughput(world: World, env: dict[str, str], counts: tuple[int, ...]) -> list[Figure]:
    """Messages per second, peak RSS and table operations per message at each count, rate limit off."""
    figures: list[Figure] = []
    name = "reminders (rate limit off, 50 ms per call)"
    runs = {}
    for count in counts:
        organization, _ = world.open(SITES, count)
        print(f"{count} due confirmations on {SITES} endpoints, {WORKERS} sending threads", flush=True)
        runs[count] = run_job(env, world.now, azurite=world.azurite)
        if count == counts[0]:
            print("the same minute again (nothing due):", flush=True)
            idle = run_job(env, world.now)
            beyond = (runs[count]["storage_total"] - idle["storage_total"]) / runs[count]["sent"]
            queries = runs[count]["storage"].get("query", 0) - idle["storage"].get("query", 0)
            figures += [
                Figure(name, f"table operations per message sent, beyond a run with nothing due ({count:,})",
                       round(beyond, 2), "≤ 2", beyond <= 2),
                Figure(name, f"table queries beyond a run with nothing due ({count:,}; an endpoint's opt-out list is "
                       "one partition read)", queries, f"≤ {SITES}: none per message", queries <= SITES),
                Figure(name, "table operations of a run with nothing due", idle["storage_total"]),
                Figure(name, f"all outbound calls per message sent ({count:,})",
                       round(sum(runs[count]["calls"].values()) / runs[count]["sent"], 2)),
            ]
        world.close(organization)
    for count, outcome in runs.items():
        rate = outcome["sent"] / outcome["seconds"]
        figures += [
            Figure(name, f"messages sent of {count:,} due", outcome["sent"], f"{count:,}", outcome["sent"] == count),
            Figure(name, f"messages/s, {count:,} due, {WORKERS} sending threads", round(rate, 1), "≥ 150",
                   rate >= 150),
            Figure(name, f"CPU ms per message sent, {count:,} due: job process", round(1000 * outcome["cpu"]
                                                                                       / outcome["sent"], 1)),
            Figure(name, f"CPU ms per message sent, {count:,} due: stand-ins (this process)",
                   round(1000 * outcome["standins_cpu"] / outcome["sent"], 1)),
            Figure(name, f"CPU ms per message sent, {count:,} due: Azurite", round(1000 * outcome["azurite_cpu"]
                                                                                  / outcome["sent"], 1)),
            Figure(name, f"job process peak RSS, {count:,} due (MB)", round(outcome["peak_rss_mb"]), "≤ 250",
                   outcome["peak_rss_mb"] <= 250),
        ]
    if len(runs) > 1:
        small, large = runs[counts[0]]["peak_rss_mb"], runs[counts[-1]]["peak_rss_mb"]
        figures.append(Figure(name, f"peak RSS growth, {counts[0]:,} → {counts[-1]:,} due (ratio)",
                              round(large / small, 2), "flat (≤ 1.25)", large / small <= 1.25))
    return figures


def rate_share(world: World, env: dict[str, str], messages: int) -> list[Figure]:
    """The share of ACS's allowed rate the job uses with the limit on, and the 429s it gets."""
    acs = world.acs
    acs.rate_limit_per_minute = RATE_PER_MINUTE
    throttled_before = acs.request_counts["throttled"]
    organization, numbers = world.open(RATE_NUMBERS, messages)
    print(f"{messages} due confirmations from {RATE_NUMBERS} numbers at {RATE_PER_MINUTE}/min each:", flush=True)
    outcome = run_job({**env, "SMS_RATE_PER_MINUTE": str(RATE_PER_MINUTE)}, world.now)
    world.close(organization)
    acs.rate_limit_per_minute = None
    times = sorted(m.sent_at for phone in acs.phones() for m in acs.outbox(phone) if m.from_ in numbers)
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
    # N sends spread evenly at the allowed rate take (N - 1) intervals of 1 / rate.
    allowed = RATE_NUMBERS * RATE_PER_MINUTE / 60
    share = (len(times) - 1) / span / allowed if span else 0.0
    throttled = acs.request_counts["throttled"] - throttled_before
    name = f"reminders ({RATE_NUMBERS} numbers at {RATE_PER_MINUTE}/min, {messages:,} due, 50 ms per call)"
    return [
        Figure(name, "messages sent", outcome["sent"], f"{messages:,}", outcome["sent"] == messages),
        Figure(name, "share of the allowed rate used, first to last send (%)", round(100 * share, 1), "≥ 95",
               share >= 0.95),
        Figure(name, "ACS answers 429 (too many requests)", throttled, "0", throttled == 0),
        Figure(name, "whole run (planning included) ÷ the time the allowed rate needs",
               round(outcome["seconds"] / (messages / allowed), 2)),
    ]


def run(offset: int, counts: tuple[int, ...] = COUNTS, rate_messages: int = RATE_MESSAGES) -> list[Figure]:
    """Throughput at each count (rate limit off), then the rate share (limit on)."""
    state = Path(tempfile.mkdtemp(prefix="bench-reminders-"))
    ca = make_dev_ca(state / "ca")
    sandbox = start_sandbox(offset=offset, state_dir=state / "sandbox", ca=ca, with_host=False, seed=False)
    env = {**os.environ, **ca.trust_env(), **sandbox.settings_env, "SMS_RATE_PER_MINUTE": "1000000"}
    try:
        oracle, acs = sandbox.standins["oracle"], sandbox.standins["acs"]
        acs.event_webhook = None  # no host here: delivery reports are not part of the job's cost
        acs.rate_limit_per_minute = None
        acs.latency_seconds = LATENCY
        for path in ("/r4/", "/tenants/"):  # every FHIR read and token request
            oracle.delay_next(path, LATENCY, count=10**9)
        world = World(sandbox, TableAccounts(sandbox_settings(sandbox)), datetime.now(UTC))
        figures = throughput(world, env, counts)
        figures += rate_share(world, env, rate_messages)
    finally:
        sandbox.stop()
    return figures


if __name__ == "__main__":
    print_table(run(offset=3100 + int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))))
