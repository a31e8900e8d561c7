"""Fuzzing budget and figures: about FUZZ_CASES cases in all (CI ≥ 2,000, `make fuzz` 20,000), zero 5xx allowed.

The budget is what hypothesis may spend; it stops early on operations with few distinct inputs (a GET without
parameters), so the default budget is a little above the 2,000 cases each CI run must send.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from sandbox.run import start_sandbox

FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "2200"))
FIGURES = Path(__file__).resolve().parents[2] / "test-output" / "fuzz-figures.json"

# Share of the budget each fuzz target gets; the portal API (three sessions) takes most of it.
SHARES = {"portal_api": 0.6, "launch": 0.1, "callbacks": 0.1, "join": 0.1, "visits": 0.1}

_cases: Counter[str] = Counter()
_statuses: Counter[str] = Counter()
_seconds: Counter[str] = Counter()


def budget(target: str, parts: int = 1) -> int:
    """Hypothesis examples for one of `parts` tests of a target (at least 1)."""
    return max(1, math.ceil(FUZZ_CASES * SHARES[target] / parts))


class Tally:
    """Counts the cases a fuzz test sent and the status classes it got back."""

    def __init__(self, target: str):
        self.target = target

    def record(self, status: int) -> None:
        _cases[self.target] += 1
        _statuses[f"{status // 100}xx"] += 1
        assert status < 500, f"{self.target}: HTTP {status}"


@pytest.fixture()
def tally(request):
    """A Tally for the test's target, timed."""
    started = time.monotonic()
    target = request.node.get_closest_marker("fuzz_target").args[0]
    yield Tally(target)
    _seconds[target] += time.monotonic() - started


@pytest.fixture(scope="package")
def sandbox(tmp_path_factory, dev_ca):
    """The fuzzer's own sandbox (demo configuration, beside the suite's): what generated admin requests change,
    other tests never see."""
    offset = int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "1000")) + 1600
    running = start_sandbox(offset=offset, state_dir=tmp_path_factory.mktemp("fuzz-sandbox"), ca=dev_ca,
                            settings={"SMS_SCHEDULE": "0 0 0 1 1 *"})
    try:
        yield running
    finally:
        running.stop()


def pytest_terminal_summary(terminalreporter):
    if not _cases:
        return
    figures = {"budget": FUZZ_CASES, "cases": dict(_cases), "total_cases": sum(_cases.values()),
               "statuses": dict(_statuses), "seconds": {k: round(v, 1) for k, v in _seconds.items()},
               "total_seconds": round(sum(_seconds.values()), 1)}
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    terminalreporter.write_line(
        f"fuzz: {figures['total_cases']} cases in {figures['total_seconds']} s, statuses {figures['statuses']} "
        f"(figures in {FIGURES.relative_to(FIGURES.parents[1])})")
