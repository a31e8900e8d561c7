"""Running the host: in-process (tests) with start_host, or as `python -m sandbox.functions_host`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.config import STATE_DIR
from sandbox.functions_host.host import FunctionsHost, HostKeys
from sandbox.functions_host.http import build_app
from sandbox.functions_host.loading import apply_settings, load_app, logger, read_local_settings, restore_settings
from sandbox.servers import RunningServer, serve

MASTER_KEY_ENV = "SANDBOX_HOST_MASTER_KEY"
EVENT_GRID_KEY_ENV = "SANDBOX_HOST_EVENTGRID_KEY"


@dataclass
class HostHandle:
    """A host serving plain http in this process; stop() ends the server, the timers and the worker."""

    host: FunctionsHost
    server: RunningServer
    url: str
    replaced_settings: dict[str, str | None]

    def run_function(self, name: str, input: Any = None, timeout: float = 30.0) -> Any:
        """Run a function now and return its result (see FunctionsHost.run_function)."""
        return self.host.run_function(name, input, timeout)

    def stop(self) -> None:
        self.server.stop()
        self.host.stop()
        restore_settings(self.replaced_settings)


def start_host(
    function_app: Any,
    port: int,
    settings_env: Mapping[str, str] | None = None,
    state_dir: Path | str | None = None,
    **host_options: Any,
) -> HostHandle:
    """Serve the app on http://127.0.0.1:port with timers running; settings go to os.environ until stop()."""
    replaced = apply_settings(settings_env or {})
    try:
        host = FunctionsHost(function_app, settings_env, state_dir=state_dir, **host_options)
        server = serve(build_app(host), port, ca=None)
    except BaseException:
        restore_settings(replaced)
        raise
    host.start_timers()
    return HostHandle(host, server, f"http://127.0.0.1:{port}", replaced)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.functions_host", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", type=Path, help="a local.settings.json-shaped file whose Values are applied")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR / "timers", help="where timer statuses persist")
    # Keys on the command line would show in `ps`: they come from the environment, else are made up at start.
    parser.add_argument("--keys-from-env", action="store_true",
                        help=f"read the master and Event Grid keys from {MASTER_KEY_ENV} and {EVENT_GRID_KEY_ENV}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the host like `func start`: settings first, then the app, then http on 127.0.0.1 and the timers."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    values = read_local_settings(args.settings) if args.settings else {}
    apply_settings(values, override=False)
    keys = HostKeys(os.environ[MASTER_KEY_ENV], os.environ[EVENT_GRID_KEY_ENV]) if args.keys_from_env else None
    host = FunctionsHost(load_app(args.app), {name: os.environ[name] for name in values}, state_dir=args.state_dir,
                         keys=keys)
    server = uvicorn.Server(
        uvicorn.Config(build_app(host), host="127.0.0.1", port=args.port, access_log=False, lifespan="off")
    )

    def request_exit(signum: int, _frame: Any) -> None:
        server.should_exit = True

    # uvicorn re-raises the signal it caught after shutting down; these handlers make that a no-op.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_exit)
    logger.info("Functions host on http://127.0.0.1:%d (routes under /%s)", args.port, host.route_prefix)
    host.start_timers()
    try:
        server.run()
    finally:
        clean = host.stop()
    logger.info("Functions host stopped")
    if not clean:
        os._exit(1)  # a function is still running in a worker thread; the real host would kill the worker
    return 0
