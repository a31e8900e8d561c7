"""One authorization server for the SMART unit tests, and a process with no cached discovery, keys or tokens."""

from __future__ import annotations

import pytest

from sandbox.servers import free_port, serve
from shared.runtime import reset_process_state
from tests.unit.shared.smart.authorization_server import AuthorizationServer


@pytest.fixture(scope="session")
def _running_server(dev_ca):
    server = AuthorizationServer()
    port = free_port()
    running = serve(server.app(), port, dev_ca)
    server.origin = f"https://localhost:{port}"
    yield server
    running.stop()


@pytest.fixture()
def server(_running_server, monkeypatch) -> AuthorizationServer:
    """The server with its default answers, nothing asked yet, nothing cached in this process, and its host
    trusted as an Oracle Health host."""
    monkeypatch.setenv("TRUSTED_EHR_HOSTS", "localhost")
    monkeypatch.setenv("ALLOW_PRIVATE_FHIR_HOSTS", "true")  # the server listens on loopback, like the sandbox
    _running_server.reset()
    reset_process_state()
    yield _running_server
    monkeypatch.undo()
    reset_process_state()
