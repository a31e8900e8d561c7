"""Run ASGI stand-ins on real sockets (https with the dev CA) in background threads."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

import uvicorn

from sandbox.devca import DevCA


class Latency:
    """ASGI middleware holding every HTTP request for `seconds` first (0: none), as a distant service would;
    benchmarks set it on every stand-in at once."""

    def __init__(self, app) -> None:
        self.app, self.seconds = app, 0.0

    async def __call__(self, scope, receive, send) -> None:
        if self.seconds and scope["type"] == "http":
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


@dataclass
class RunningServer:
    """One uvicorn server in a thread; stop() ends it; `latency.seconds` delays each of its answers."""

    server: uvicorn.Server
    thread: threading.Thread
    port: int
    latency: Latency | None = None

    def stop(self) -> None:
        # Clients that keep https connections open (azure-core after a failed poll) must not hold shutdown up.
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(timeout=10)


def wait_for_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def serve(app, port: int, ca: DevCA | None = None, host: str = "127.0.0.1") -> RunningServer:
    """Start `app` on host:port (https when a dev CA is given) and wait until it accepts connections."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        if probe.connect_ex((host, port)) == 0:
            raise OSError(f"port {port} is already in use")
    tls = {"ssl_certfile": str(ca.server_cert_pem), "ssl_keyfile": str(ca.server_key_pem)} if ca else {}
    app = latency = Latency(app)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1, **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox-{port}", daemon=True)
    thread.start()
    # Our own server must be the one listening: a port taken by another process would pass a mere connect test.
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OSError(f"could not serve on {host}:{port} (port in use?)")
        time.sleep(0.02)
    return RunningServer(server, thread, port, latency)


def free_port() -> int:
    """A TCP port nobody listens on right now (for tests that run stand-ins beside each other)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
