"""Outbound calls the app makes on the provider launch (callback → visit page) and the patient join, cold and warm.

Run: .venv/bin/python -m bench.bench_launch_join   (starts its own sandbox on spare ports; prints counts)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import httpx

from sandbox.devca import make_dev_ca
from sandbox.run import start_sandbox

ROUTES = ("launch/provider", "launch/callback", "visits/")


def outbound(sandbox) -> Counter:
    """What the stand-ins were asked, by system (browser hops to authorize pages are counted apart)."""
    oracle, entra, graph = (sandbox.standins[n] for n in ("oracle", "entra", "graph"))
    counts = Counter()
    for route, n in oracle.request_counts.items():
        counts["oracle:authorize (browser)" if "authorize" in route else "oracle"] += n
    for route, n in entra.requests.items():
        counts["entra:authorize (browser)" if "authorize" in route else "entra"] += n
    counts["graph"] += sum(graph.requests.values())
    return counts


def delta(before: Counter, after: Counter) -> dict[str, int]:
    return {k: after[k] - before[k] for k in after if after[k] - before[k]}


def main() -> None:
    state = Path(tempfile.mkdtemp(prefix="bench-"))
    ca = make_dev_ca(state / "ca")
    os.environ.update(ca.trust_env())
    sandbox = start_sandbox(offset=3000, state_dir=state / "sandbox", ca=ca)
    try:
        oracle, entra, acs = (sandbox.standins[n] for n in ("oracle", "entra", "acs"))
        entra.auto_sign_in_upn = "dr.grey@contoso-health.example"
        appointment = oracle.seeded[next(iter(oracle.seeded))].today[2]
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            def launch() -> dict[str, int]:
                url = f"{sandbox.world.host_url}/api/launch/provider?" + urlencode(
                    {"iss": sandbox.world.fhir_base(), "launch": oracle.create_launch(appointment)})
                before = outbound(sandbox)
                page = browser.get(url)
                assert page.status_code == 200, page.text[:300]
                return delta(before, outbound(sandbox)), page.text

            first, _ = launch()
            warm, page = launch()
            print(f"provider launch, first ever (Microsoft link, meeting created): {first}")
            print(f"provider launch, warm (callback → visit page):               {warm}")
            print(f"  outbound calls on the warm path (excluding the browser's own hops): "
                  f"{sum(v for k, v in warm.items() if 'browser' not in k)}")
            send = re.search(r'sendUrl = "([^"]+)"', page).group(1)
            token = re.search(r'csrfToken = "([^"]+)"', page).group(1)
            browser.post(sandbox.world.host_url + send, headers={"accept": "application/json", "X-CSRF-Token": token})
        link = next(re.search(r"(http://\S+/api/join/\S+)", m.message).group(1)
                    for phone in acs.phones() for m in acs.outbox(phone))
        token = link.rsplit("/", 1)[-1]
        print(f"patient link: {len(link)} characters, token {len(token)} characters")
        for label in ("patient join, first tap", "patient join, second tap (warm)"):
            before = outbound(sandbox)
            response = httpx.get(link, follow_redirects=False)
            assert response.status_code == 302
            calls = delta(before, outbound(sandbox))
            print(f"{label}: {calls} → {sum(calls.values())} outbound calls")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
