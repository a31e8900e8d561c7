"""`make bench` at a tiny size: every benchmark runs, prints one table and writes the same figures as JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = {"cold start", "launch", "join", "make bench"}


def test_make_bench_at_tiny_size_prints_one_table_and_writes_json(tmp_path):
    """Each benchmark contributes its figures; the printed table and the JSON carry the same rows."""
    out = tmp_path / "bench.json"
    offset = os.environ.get("SANDBOX_TEST_PORT_OFFSET", "1000")  # the bench adds 2000-2300 (apart from tests)
    result = subprocess.run([sys.executable, "-m", "bench", "--size", "tiny", "--json", str(out)], cwd=ROOT,
                            env={**os.environ, "SANDBOX_TEST_PORT_OFFSET": offset}, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads(out.read_text())
    figures = written["figures"]
    assert {f["benchmark"] for f in figures} >= BENCHMARKS
    assert any(f["benchmark"].startswith("reminders") for f in figures)
    assert any(f["benchmark"].startswith("large system") for f in figures)
    assert written["machine"]["cpus"] >= 1
    table = result.stdout.split("\n\n")[-2] if "\n\nwritten to" in result.stdout else result.stdout
    for figure in figures:
        assert figure["figure"] in table
        assert isinstance(figure["value"], int | float)
    sent = next(f for f in figures if f["figure"] == "messages sent of 40 due")
    assert sent["value"] == 40, "the tiny job really sent its confirmations"
    assert any(f["figure"].startswith("share of the allowed rate used") for f in figures)
    large = {f["figure"]: f for f in figures if f["benchmark"].startswith("large system")}
    assert large["appointments searched, whole window"]["value"] > 0  # the run really searched the bookings
    # A count, not a time: no Cerner tenant ever had more of the job's requests at once than the per-endpoint limit.
    assert large["most requests at once on one Cerner tenant"]["met"] is True
