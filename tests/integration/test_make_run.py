"""`make run` comes up on a clean port set, answers /api/health/ready 200, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Beside the suite's own sandbox (which follows the same variable), so two checkouts' suites never share a port.
OFFSET = int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "1000")) + 1000


def test_make_run_prints_urls_and_is_healthy_then_stops_on_ctrl_c(tmp_path):
    env = dict(os.environ)
    for name, base in (("HOST", 7071), ("ORACLE", 8441), ("ENTRA", 8442), ("GRAPH", 8443), ("ACS", 8444),
                       ("BLOB", 10000), ("QUEUE", 10001), ("TABLE", 10002)):
        env[f"SANDBOX_{name}_PORT"] = str(base + OFFSET)
    log = tmp_path / "make-run.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = started + 120
        while "Press Ctrl-C to stop" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        output = log.read_text()
        assert "Press Ctrl-C to stop" in output, output
        assert f"http://127.0.0.1:{7071 + OFFSET}/api/portal" in output
        assert f"https://localhost:{8441 + OFFSET}/powerchart" in output
        health = httpx.get(f"http://127.0.0.1:{7071 + OFFSET}/api/health/ready", timeout=30)
        assert health.status_code == 200, health.text
        assert all(part["ok"] for part in health.json()["parts"].values())
    finally:
        os.killpg(process.pid, signal.SIGINT)
        code = process.wait(timeout=30)
    # make itself ends by the SIGINT (as in a terminal); what matters is that the product stopped cleanly.
    assert code in (0, -signal.SIGINT), log.read_text()
    assert "Stopping" in log.read_text() and "Traceback" not in log.read_text()
    for port in (7071 + OFFSET, 10002 + OFFSET):
        with httpx.Client() as client:
            try:
                client.get(f"http://127.0.0.1:{port}/", timeout=1)
                raise AssertionError(f"port {port} still answers after Ctrl-C")
            except httpx.TransportError:
                pass
