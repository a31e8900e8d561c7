"""One sandbox for the integration suite: Azurite, the stand-ins, the Functions host and the demo configuration."""

from __future__ import annotations

import httpx
import pytest

from sandbox.run import Sandbox, start_sandbox
from sandbox.seed import sandbox_settings
from shared.storage.accounts import TableAccounts
from tests.integration.launching import PROVIDER


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory, dev_ca) -> Sandbox:
    running = start_sandbox(offset=1000, state_dir=tmp_path_factory.mktemp("sandbox"), ca=dev_ca)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def accounts(sandbox) -> TableAccounts:
    """Table access as the app has it, for assertions on what was stored."""
    return TableAccounts(sandbox_settings(sandbox))


@pytest.fixture()
def oracle(sandbox):
    return sandbox.standins["oracle"]


@pytest.fixture()
def entra(sandbox):
    return sandbox.standins["entra"]


@pytest.fixture()
def graph(sandbox):
    return sandbox.standins["graph"]


@pytest.fixture()
def acs(sandbox):
    return sandbox.standins["acs"]


@pytest.fixture()
def browser():
    """A real HTTP client that follows redirects and keeps cookies, like a browser."""
    with httpx.Client(follow_redirects=True, timeout=30) as client:
        yield client


@pytest.fixture()
def signed_in_provider(entra):
    """The provider's Microsoft sign-in completes without the account picker."""
    entra.auto_sign_in_upn = PROVIDER
    yield
    entra.auto_sign_in_upn = None
