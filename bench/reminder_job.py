"""One run of the reminder job in a process of its own, as a worker runs it; prints its figures as one JSON line.

The benchmark's stand-ins and Azurite run in other processes, so the CPU time and peak RSS measured here are the
job's alone. The app settings come from the environment (the benchmark passes a sandbox's).

Run by bench.bench_reminders: python -m bench.reminder_job NOW_ISO WORKERS [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import threading
import time
from datetime import datetime

from bench.storage_counts import CountingAccounts
from shared.http import call_counts
from shared.notifications import run_notifications
from shared.settings import get_settings

MAX_SECONDS = 900.0  # the benchmark measures the job's pace, not its carry-over


def every_thread_profiled() -> list[cProfile.Profile]:
    """A cProfile of CPU time (not waits) for this thread and each thread started from now on (the sends run in a
    pool)."""
    profilers = [cProfile.Profile(time.thread_time)]

    def start(*_args) -> None:
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()  # replaces this hook for the new thread

    threading.setprofile(start)
    profilers[0].enable()
    return profilers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("now")
    parser.add_argument("workers", type=int)
    parser.add_argument("--profile", help="write a cProfile of the run here")
    args = parser.parse_args()
    accounts = CountingAccounts(get_settings())
    profilers = every_thread_profiled() if args.profile else []
    started, cpu_started = time.monotonic(), time.process_time()
    report = run_notifications(datetime.fromisoformat(args.now), accounts=accounts, workers=args.workers,
                               max_seconds=MAX_SECONDS)
    if profilers:
        for profiler in profilers:
            profiler.create_stats()
        pstats.Stats(*profilers).dump_stats(args.profile)
    print(json.dumps({
        "seconds": time.monotonic() - started, "cpu": time.process_time() - cpu_started, "sent": report.sent,
        "carried_over": report.carried_over, "summary": report.summary(), "storage": dict(accounts.transport.counts),
        "calls": call_counts(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
