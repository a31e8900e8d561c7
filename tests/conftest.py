"""Suite-wide fixtures: a dev CA trusted by every client in this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox.devca import DevCA, make_dev_ca

_CA_DIR = Path(__file__).resolve().parent.parent / ".sandbox" / f"test-ca-{os.getpid()}"
_CA = make_dev_ca(_CA_DIR)
# Set before any client is built, so httpx, requests (msal, Azure SDKs) trust the stand-ins' https.
os.environ.update(_CA.trust_env())


@pytest.fixture(scope="session")
def dev_ca() -> DevCA:
    """The dev CA whose bundle this test process trusts."""
    return _CA


@pytest.fixture(scope="session")
def azurite_settings(tmp_path_factory):
    """Settings pointing at a private Azurite (all accounts) started for this test session."""
    from sandbox import config
    from sandbox.run import start_azurite
    from shared.settings import Settings

    world = config.world(offset=1500)
    process = start_azurite(world, tmp_path_factory.mktemp("azurite"))
    try:
        env = world.app_settings()
        yield Settings(**{name.lower(): value for name, value in env.items()})
    finally:
        process.terminate()
        process.wait(timeout=10)
