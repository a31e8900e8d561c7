"""Start the whole product locally: Azurite, the stand-ins (https, dev CA), the Functions host, a demo configuration.

`python -m sandbox.run` is what `make run` starts; tests use `start_sandbox()` for the same set-up.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox import config
from sandbox.devca import DevCA, make_dev_ca
from sandbox.functions_host.runner import EVENT_GRID_KEY_ENV, MASTER_KEY_ENV
from sandbox.running import Sandbox
from sandbox.servers import serve, wait_for_port

NODE_BIN = config.ROOT / "node_modules" / ".bin"


def die_with_parent() -> None:
    """In the child: end when the process that started us ends, even if it is killed (no orphans on ports)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def ensure_free(*ports: int) -> None:
    """Refuse to start on a port someone else already serves: we would test their process, not ours."""
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(f"port {port} is already in use: stop what listens there or choose other ports")


def wait_started(process: subprocess.Popen, ports: tuple[int, ...], log: Path, timeout: float = 20) -> None:
    """Ports open and the process still alive (a port taken by someone else would fool a connect test)."""
    for port in ports:
        wait_for_port(port, timeout=timeout)
    time.sleep(0.3)
    if process.poll() is not None:
        raise RuntimeError(f"{process.args[0]} exited at start-up (ports {ports} in use?); see {log}")


def start_azurite(world: config.World, log_dir: Path) -> subprocess.Popen:
    """Azurite with one account per region plus the app's own, in memory."""
    azurite = NODE_BIN / "azurite"
    if not azurite.exists():
        raise SystemExit("Azurite is not installed: run `make run` (it runs npm install) or `npm install`.")
    env = dict(os.environ)
    env["AZURITE_ACCOUNTS"] = ";".join(f"{name}:{config.AZURITE_KEY}" for name in config.STORAGE_ACCOUNTS)
    ports = world.ports
    ensure_free(ports.blob, ports.queue, ports.table)
    log = open(log_dir / "azurite.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [str(azurite), "--silent", "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck",
         "--blobHost", "127.0.0.1", "--blobPort", str(ports.blob),
         "--queueHost", "127.0.0.1", "--queuePort", str(ports.queue),
         "--tableHost", "127.0.0.1", "--tablePort", str(ports.table)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
    )
    wait_started(process, (ports.blob, ports.queue, ports.table), log_dir / "azurite.log")
    return process


def start_standins(sandbox: Sandbox) -> None:
    """Oracle Health, Entra ID, Graph (with the Teams pages) and ACS, each on its own https port."""
    from sandbox import acs, entra, graph, oracle

    world = sandbox.world
    host = world.host_url
    entra_state = entra.EntraState(redirect_uris=[
        f"{host}/api/launch/microsoft/callback", f"{host}/api/portal/auth/callback",
    ])
    states = {
        "oracle": oracle.OracleState(redirect_uris=[f"{host}/api/launch/callback"],
                                     launch_url=f"{host}/api/launch/provider", public_url=world.oracle_url),
        "entra": entra_state,
        "graph": graph.GraphState(entra_state),
        "acs": acs.AcsState(access_key=config.ACS_ACCESS_KEY),
    }
    # As Event Grid's subscription URL does in Azure, the webhook carries the host's eventgrid_extension key.
    states["acs"].event_webhook = (f"{host}/runtime/webhooks/eventgrid?functionName=sms_delivery_report"
                                   f"&code={sandbox.host_keys.event_grid}")
    modules = {"oracle": oracle, "entra": entra, "graph": graph, "acs": acs}
    for name, state in states.items():
        port = getattr(world.ports, name)
        sandbox.servers.append(serve(modules[name].build_app(state), port, sandbox.ca))
    sandbox.standins.update(states)


def start_host(sandbox: Sandbox, log_dir: Path) -> subprocess.Popen:
    """The Functions host stand-in in its own process, with the app settings in its environment."""
    env = {**os.environ, **sandbox.ca.trust_env(), **sandbox.settings_env,
           MASTER_KEY_ENV: sandbox.host_keys.master, EVENT_GRID_KEY_ENV: sandbox.host_keys.event_grid}
    ensure_free(sandbox.world.ports.host)
    log = open(log_dir / "host.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.functions_host", "--app", "function_app:app",
         "--port", str(sandbox.world.ports.host), "--state-dir", str(log_dir / "timers"), "--keys-from-env"],
        cwd=config.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=die_with_parent,
    )
    wait_started(process, (sandbox.world.ports.host,), log_dir / "host.log", timeout=60)
    return process


def seed_demo(sandbox: Sandbox) -> None:
    """A ready demo configuration: one organization in americas, test and production FHIR endpoints, SMS on."""
    from sandbox.seed import seed_demo_configuration

    seed_demo_configuration(sandbox)


def start_sandbox(offset: int = 0, state_dir: Path | None = None, with_host: bool = True,
                  seed: bool = True, ca: DevCA | None = None, settings: dict[str, str] | None = None) -> Sandbox:
    """Start Azurite, the stand-ins, (optionally) the host and the demo configuration."""
    world = config.world(offset)
    state_dir = state_dir or config.STATE_DIR / f"run-{offset}"
    shutil.rmtree(state_dir, ignore_errors=True)
    state_dir.mkdir(parents=True)
    ca = ca or make_dev_ca(state_dir / "ca")
    sandbox = Sandbox(world=world, ca=ca, settings_env={**world.app_settings(), **(settings or {})},
                      state_dir=state_dir)
    try:
        sandbox.processes.append(start_azurite(world, state_dir))
        start_standins(sandbox)
        if seed:
            seed_demo(sandbox)
        if with_host:
            sandbox.processes.append(start_host(sandbox, state_dir))
    except BaseException:
        sandbox.stop()
        raise
    return sandbox


def write_local_settings(sandbox: Sandbox, path: Path) -> None:
    """local.settings.json for `func start` users, pointing at this sandbox."""
    values = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
              **sandbox.settings_env}
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n")


def main() -> None:
    started = time.monotonic()
    sandbox = start_sandbox()
    # See the fallback to the meeting link: Graph refusing app-only tokens the virtual-appointment join link.
    refuse_join_link = os.environ.get("SANDBOX_GRAPH_REFUSES_APP_ONLY_JOIN_LINK") == "1"
    sandbox.standins["graph"].refuse_app_only_join_link = refuse_join_link
    stop_requested = False

    def request_stop(*_args) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    health = httpx.get(f"{sandbox.world.host_url}/api/health/ready", timeout=30).status_code
    print(f"\nTeams EHR connector sandbox is up in {time.monotonic() - started:.1f}s (health: HTTP {health}).\n")
    for label, url in sandbox.urls().items():
        print(f"  {label:45s} {url}")
    if refuse_join_link:
        print("\nGraph refuses app-only tokens the virtual-appointment join link: patients get the meeting link.")
    print("\nYour browser must trust the dev CA for the https stand-ins, or click through the warning once per port:")
    print(f"  {sandbox.ca.ca_pem}")
    print(f"The host's admin API (POST /admin/functions/<name>) wants x-functions-key: {sandbox.host_keys.master}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop_requested and all(p.poll() is None for p in sandbox.processes):
            time.sleep(0.5)
    finally:
        print("\nStopping…", flush=True)
        sandbox.stop()


if __name__ == "__main__":
    main()
