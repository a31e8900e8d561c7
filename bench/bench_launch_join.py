"""The provider launch (callback → visit page) and the patient join, cold and warm: outbound calls, table
operations, latency with instant stand-ins, and time over the floor when every stand-in call takes 50 ms.

The app runs in the Functions host stand-in (its own process), as in `make run`; its table requests go through a
counting proxy in front of Azurite, so they are counted by kind whichever process sends them. The floor of a
step is its outbound calls x 50 ms: what it would take if the app itself took no time at all.

Run: .venv/bin/python -m bench.bench_launch_join   (starts its own sandbox on spare ports; prints the figures);
`make bench` runs it with the others.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode, urljoin

import httpx

from bench.storage_counts import SCANS, CountingProxy
from bench.table import Figure, print_table
from sandbox import config
from sandbox.devca import make_dev_ca
from sandbox.run import start_sandbox
from sandbox.servers import free_port, serve

LATENCY = 0.05
REPEATS = 20


def outbound(sandbox) -> Counter:
    """What the stand-ins were asked, by system (browser hops to authorize pages are counted apart)."""
    oracle, entra, graph, acs = (sandbox.standins[n] for n in ("oracle", "entra", "graph", "acs"))
    counts = Counter()
    for route, n in oracle.request_counts.items():
        counts["oracle:authorize (browser)" if "authorize" in route else "oracle"] += n
    for route, n in entra.requests.items():
        counts["entra:authorize (browser)" if "authorize" in route else "entra"] += n
    counts["graph"] += sum(graph.requests.values())
    counts["acs"] += sum(acs.request_counts.values())
    return counts


def app_calls(before: Counter, after: Counter) -> int:
    """Outbound calls the app made between two readings (browser hops left out)."""
    return sum(after[k] - before[k] for k in after if "browser" not in k)


class Probe:
    """Counts around one step: the app's outbound calls, its table operations by kind, and the wall time."""

    def __init__(self, sandbox, proxy: CountingProxy) -> None:
        self.sandbox, self.proxy = sandbox, proxy

    def __enter__(self) -> Probe:
        self.calls, self.tables, self.started = outbound(self.sandbox), Counter(self.proxy.counts), time.perf_counter()
        return self

    def __exit__(self, *_exc) -> None:
        self.seconds = time.perf_counter() - self.started
        self.calls = app_calls(self.calls, outbound(self.sandbox))
        self.tables = Counter({k: v - self.tables[k] for k, v in self.proxy.counts.items() if v - self.tables[k]})


def start(sandbox, browser: httpx.Client, appointment: str) -> str:
    """PowerChart opens the launch and Cerner's authorize page answers: the callback URL the browser goes to."""
    oracle = sandbox.standins["oracle"]
    url = f"{sandbox.world.host_url}/api/launch/provider?" + urlencode(
        {"iss": sandbox.world.fhir_base(), "launch": oracle.create_launch(appointment)})
    authorize = browser.get(url)
    assert authorize.status_code == 302, authorize.text[:300]
    callback = browser.get(authorize.headers["location"])
    assert callback.status_code in (302, 303), callback.text[:300]
    return urljoin(str(callback.url), callback.headers["location"])


def finish(sandbox, browser: httpx.Client, callback: str) -> str:
    """Callback → visit page (following the app's own redirects): the page."""
    response = browser.get(callback)
    while response.status_code in (302, 303):
        response = browser.get(urljoin(str(response.url), response.headers["location"]))
    assert response.status_code == 200, response.text[:300]
    return response.text


def set_latency(sandbox, seconds: float) -> None:
    for server in sandbox.servers:
        if server.latency is not None:
            server.latency.seconds = seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(offset: int, repeats: int = REPEATS) -> list[Figure]:
    """Outbound calls, table operations and timings of the provider launch and the patient's taps on the link."""
    state = Path(tempfile.mkdtemp(prefix="bench-"))
    ca = make_dev_ca(state / "ca")
    os.environ.update(ca.trust_env())
    world = config.world(offset)
    proxy = CountingProxy(f"http://127.0.0.1:{world.ports.table}")
    proxy_server = serve(proxy, free_port())
    proxied = {name: value.replace(f":{world.ports.table}/", f":{proxy_server.port}/")
               for name, value in world.app_settings().items() if name.startswith("TABLE_ENDPOINT")}
    sandbox = start_sandbox(offset=offset, state_dir=state / "sandbox", ca=ca, settings=proxied)
    figures: list[Figure] = []
    try:
        oracle, entra, acs = (sandbox.standins[n] for n in ("oracle", "entra", "acs"))
        entra.auto_sign_in_upn = "dr.grey@contoso-health.example"
        appointment = oracle.seeded[next(iter(oracle.seeded))].today[2]
        probe = Probe(sandbox, proxy)
        with httpx.Client(follow_redirects=False, timeout=30) as browser:
            with probe:  # the first launch ever: the one-time Microsoft link and the meeting
                finish(sandbox, browser, start(sandbox, browser, appointment))
            figures.append(Figure("launch", "outbound calls, first ever (Microsoft link, meeting created)",
                                  probe.calls))
            warm: list[float] = []
            for _ in range(repeats):
                callback = start(sandbox, browser, appointment)
                with probe:
                    page = finish(sandbox, browser, callback)
                warm.append(probe.seconds)
            figures += step_figures("launch", "callback → visit page", probe, warm, 3)

            def launch_once() -> None:
                callback = start(sandbox, browser, appointment)
                with probe:
                    finish(sandbox, browser, callback)

            figures += slow_figures("launch", "callback → visit page", sandbox, probe, launch_once, repeats)
            send = re.search(r'sendUrl = "([^"]+)"', page).group(1)
            token = re.search(r'csrfToken = "([^"]+)"', page).group(1)
            browser.post(sandbox.world.host_url + send, headers={"accept": "application/json", "X-CSRF-Token": token})
        link = next(re.search(r"(http://\S+/api/join/\S+)", m.message).group(1)
                    for phone in acs.phones() for m in acs.outbox(phone))
        figures.append(Figure("join", "patient link length (characters)", len(link)))
        figures.append(Figure("join", "patient link token length (characters)", len(link.rsplit("/", 1)[-1])))

        def tap() -> None:
            response = httpx.get(link, follow_redirects=False)
            assert response.status_code == 302, response.text[:300]

        with probe:
            tap()
        figures.append(Figure("join", "outbound calls, first tap", probe.calls))
        taps: list[float] = []
        for _ in range(repeats):
            with probe:
                tap()
            taps.append(probe.seconds)
        figures += step_figures("join", "a tap on the link", probe, taps, 1)

        def tap_once() -> None:
            with probe:
                tap()

        figures += slow_figures("join", "a tap on the link", sandbox, probe, tap_once, repeats)
    finally:
        sandbox.stop()
        proxy_server.stop()
    return figures


def step_figures(benchmark: str, step: str, probe: Probe, seconds: list[float], most_calls: int) -> list[Figure]:
    """Calls, table operations by kind and p50/p99 of the last run of a warm step (instant stand-ins)."""
    scans = sum(n for kind, n in probe.tables.items() if kind in SCANS)
    return [
        Figure(benchmark, f"outbound calls, warm ({step})", probe.calls, f"≤ {most_calls}", probe.calls <= most_calls),
        Figure(benchmark, f"table operations, warm ({step}): "
               + (", ".join(f"{n} {kind}" for kind, n in sorted(probe.tables.items())) or "none"),
               sum(probe.tables.values())),
        Figure(benchmark, f"table queries or scans, warm ({step})", scans, "0", scans == 0),
        Figure(benchmark, f"p50 ms, warm, instant stand-ins ({step}, {len(seconds)} runs)",
               round(1000 * statistics.median(seconds), 1)),
        Figure(benchmark, f"p99 ms, warm, instant stand-ins ({step}, {len(seconds)} runs)",
               round(1000 * percentile(seconds, 0.99), 1)),
    ]


def slow_figures(benchmark: str, step: str, sandbox, probe: Probe, once, repeats: int) -> list[Figure]:
    """Median time of the warm step when every stand-in call takes 50 ms, over its floor (calls x 50 ms); `once`
    runs the step once with `probe` around what is timed."""
    set_latency(sandbox, LATENCY)
    try:
        seconds, calls = [], 0
        for _ in range(max(3, repeats // 4)):
            once()
            seconds.append(probe.seconds)
            calls = probe.calls
    finally:
        set_latency(sandbox, 0.0)
    ratio = statistics.median(seconds) / (calls * LATENCY) if calls else 0.0
    return [Figure(benchmark, f"time ÷ floor ({calls} calls x 50 ms), warm, 50 ms per call ({step})",
                   round(ratio, 2), "≤ 1.2", ratio <= 1.2)]


if __name__ == "__main__":
    print_table(run(offset=3000 + int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))))
