"""/api/health as a load balancer or an operator sees it when external systems cannot be reached."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from functions.health import health, health_ready
from sandbox import config
from sandbox.servers import free_port
from shared.settings import get_settings


@pytest.fixture()
def systems_down(azurite_settings, monkeypatch):
    """The app's settings with storage on Azurite and Entra, Graph and ACS on a port where nothing listens."""
    for name, value in config.world(0).app_settings().items():
        monkeypatch.setenv(name, value)
    for field in ("table_endpoint", "table_endpoint_americas", "table_endpoint_emea", "table_endpoint_apac"):
        monkeypatch.setenv(field.upper(), getattr(azurite_settings, field))
    dead = f"https://127.0.0.1:{free_port()}"
    for name in ("ENTRA_AUTHORITY_HOST", "GRAPH_BASE_URL", "ACS_ENDPOINT"):
        monkeypatch.setenv(name, dead)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_health_is_503_naming_what_fails_and_no_more(systems_down):
    response = health_ready(func.HttpRequest("GET", "http://127.0.0.1/api/health/ready", body=b""))
    body = json.loads(response.get_body())
    assert response.status_code == 503
    assert sorted(body["failing"]) == ["acs", "entra", "graph"], "storage answers; the three systems do not"
    assert all(body["parts"][name]["ok"] for name in ("storage:app", "storage:americas", "storage:emea"))
    assert all(body["parts"][name]["detail"].startswith("unreachable (") for name in body["failing"])
    assert "127.0.0.1" not in response.get_body().decode(), "no address or stack trace in the answer"


def test_liveness_answers_without_settings_or_network(monkeypatch):
    """/api/health is what a cold instance answers first: 200 even with no settings and nothing reachable."""
    for name in ("TABLE_ENDPOINT", "ACS_ENDPOINT", "SEAL_KEYS", "HASH_KEY", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    response = health(func.HttpRequest("GET", "http://127.0.0.1/api/health", body=b""))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"ok": True, "check": "liveness"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"
