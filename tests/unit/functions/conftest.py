"""Handlers refuse to serve without safe keys: give this process the sandbox's (loopback URL, so allowed)."""

from __future__ import annotations

import pytest

from sandbox import config


@pytest.fixture(autouse=True)
def sandbox_keys(app_settings):
    app_settings(SEAL_KEYS=config.SEAL_KEYS, SEAL_ACTIVE_KEY_ID="k1", HASH_KEY=config.HASH_KEY,
                 PUBLIC_BASE_URL="http://127.0.0.1:7071")
