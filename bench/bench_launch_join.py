"""The provider launch (callback → visit page) and the patient join, cold and warm: outbound calls, table
operations, latency with instant stand-ins, and time over the floor when every stand-in call takes 50 ms.

The app runs in the Functions host stand-in (its own process), as in `make run`; its table requests go through a
counting proxy in front of Azurite, so they are counted by kind whichever process sends them. The floor of a
step is its outbound calls x 50 ms: what it would take if the app itself took no time at all.

Run: .venv/bin/python -m bench.bench_launch_join   (starts its own sandbox on spare ports; prints the figures);
`make bench` runs it with the others.
"""

from __future__ import annotations

import contextlib
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


HOST_LINE = re.compile(rb" (?:GET|POST) /api/\S+ -> \d+ \((\d+) ms\)")


class Probe:
    """Counts around one step: the app's outbound calls, its table operations by kind, and the wall time; and
    where the time went: in the app (the host stand-in's log of each request, measured in the app's process),
    waiting on table storage (the counting proxy), and the rest (the host stand-in, HTTP, the client)."""

    def __init__(self, sandbox, proxy: CountingProxy) -> None:
        self.sandbox, self.proxy = sandbox, proxy
        self.host_log = sandbox.state_dir / "host.log"
        self.requests = 0  # the browser's requests to the app, counted by an httpx event hook

    def count_request(self, request: httpx.Request) -> None:
        if request.url.path.startswith("/api/"):
            self.requests += 1

    def __enter__(self) -> Probe:
        self.calls, self.tables, self.started = outbound(self.sandbox), Counter(self.proxy.counts), time.perf_counter()
        self.table_seconds, self.requests, self.log_at = self.proxy.seconds, 0, self.host_log.stat().st_size
        return self

    def __exit__(self, *_exc) -> None:
        self.seconds = time.perf_counter() - self.started
        self.calls = app_calls(self.calls, outbound(self.sandbox))
        self.tables = Counter({k: v - self.tables[k] for k, v in self.proxy.counts.items() if v - self.tables[k]})
        self.table_seconds = self.proxy.seconds - self.table_seconds
        self.app_seconds = self._app_seconds()

    def _app_seconds(self) -> float:
        """The step's requests as the host timed them (its log line comes just after the answer: wait for it)."""
        waited_until = time.monotonic() + 5
        while True:
            with self.host_log.open("rb") as log:
                log.seek(self.log_at)
                times = [int(m.group(1)) for m in HOST_LINE.finditer(log.read())]
            if len(times) >= self.requests or time.monotonic() > waited_until:
                return sum(times) / 1000
            time.sleep(0.01)


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
    as_deployed = {"CONFIG_CACHE_SECONDS": "30"}  # the sandbox reads configuration afresh for the tests' sake
    sandbox = start_sandbox(offset=offset, state_dir=state / "sandbox", ca=ca, settings=proxied | as_deployed)
    figures: list[Figure] = []
    stack = contextlib.ExitStack()
    try:
        oracle, entra, acs = (sandbox.standins[n] for n in ("oracle", "entra", "acs"))
        entra.auto_sign_in_upn = "dr.grey@contoso-health.example"
        appointment = oracle.seeded[next(iter(oracle.seeded))].today[2]
        probe = Probe(sandbox, proxy)
        hooks = {"request": [probe.count_request]}
        with httpx.Client(follow_redirects=False, timeout=30, event_hooks=hooks) as browser:
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

        # One phone's browser for every tap (a client made per tap spent ~40 ms building its TLS context on this
        # side of the timing: the client's cost, not the app's).
        patient = stack.enter_context(httpx.Client(follow_redirects=False, timeout=30, event_hooks=hooks))

        def tap() -> None:
            response = patient.get(link)
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
        stack.close()
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
        seconds, in_app, tables, calls = [], [], [], 0
        for _ in range(max(3, repeats // 4)):
            once()
            seconds.append(probe.seconds)
            in_app.append(probe.app_seconds)
            tables.append(probe.table_seconds)
            calls = probe.calls
    finally:
        set_latency(sandbox, 0.0)
    floor = calls * LATENCY
    ratio = statistics.median(seconds) / floor if calls else 0.0
    app, table = statistics.median(in_app), statistics.median(tables)
    stand_ins = "stand-ins" if calls > 1 else "stand-in"
    return [
        Figure(benchmark, f"time ÷ floor ({calls} calls x 50 ms), warm, 50 ms per call ({step})",
               round(ratio, 2), "≤ 1.2", ratio <= 1.2),
        Figure(benchmark,
               "the same, in the app only (the host stand-in's timing of each request, in the app's process)",
               round(app / floor, 2) if calls else 0.0),
        Figure(benchmark, f"in the app, median ms: waiting on the {stand_ins} ({calls} x 50 ms)", round(1000 * floor)),
        # A table request made while a call is awaited (the visit page's usage read) counts here too.
        Figure(benchmark, "in the app, median ms: waiting on table storage (through the counting proxy)",
               round(1000 * table, 1)),
        Figure(benchmark, f"in the app, median ms: the rest (our code, the SDKs, HTTP to the {stand_ins})",
               round(1000 * (app - floor - table), 1)),
        Figure(benchmark, "median ms outside the app (the host stand-in, HTTP to it, the client)",
               round(1000 * (statistics.median(seconds) - app), 1)),
    ]


if __name__ == "__main__":
    print_table(run(offset=3000 + int(os.environ.get("SANDBOX_TEST_PORT_OFFSET", "0"))))
