"""`make bench`: every benchmark in bench/, one table printed and the same figures written as JSON.

Run: .venv/bin/python -m bench [--size full|tiny] [--json bench-results.json]
Each benchmark starts its own sandbox on its own ports (shifted by SANDBOX_TEST_PORT_OFFSET when set).
`--size tiny` is the smoke run the test suite makes: same code paths, a handful of messages.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from bench import bench_cold_start, bench_large_system, bench_launch_join, bench_reminders
from bench.table import Figure, print_table, write_json

SIZES = {  # cold-start runs, warm launches and taps timed, due messages per throughput run, rate-share messages
    "full": (5, bench_launch_join.REPEATS, bench_reminders.COUNTS, bench_reminders.RATE_MESSAGES),
    "tiny": (1, 2, (40,), 10),
}
LARGE_SYSTEM = {"full": bench_large_system.FULL, "tiny": bench_large_system.TINY}


def machine() -> dict:
    """What the figures were measured on."""
    memory_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")), 0) if Path("/proc/meminfo").exists() else 0
    return {"cpus": os.cpu_count(), "memory_gb": round(memory_kb / 1024 / 1024, 1), "python": platform.python_version(),
            "platform": platform.platform(), "load_average_1min": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()
    cold_runs, repeats, counts, rate_messages = SIZES[args.size]
    offset = int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))
    started = time.monotonic()
    figures: list[Figure] = []
    figures += bench_cold_start.run(offset=offset + 2200, runs=cold_runs)
    figures += bench_launch_join.run(offset=offset + 2000, repeats=repeats)
    figures += bench_reminders.run(offset=offset + 2100, counts=counts, rate_messages=rate_messages)
    figures += bench_large_system.run(offset=offset + 2300, size=LARGE_SYSTEM[args.size])
    figures.append(Figure("make bench", "wall time (s)", round(time.monotonic() - started, 1)))
    print()
    print_table(figures)
    write_json(figures, args.json, machine())
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
