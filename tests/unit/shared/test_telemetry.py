"""Metrics and spans the connector emits, read back from in-memory OpenTelemetry readers: names, attributes, no PHI."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest

import shared.storage.accounts
import shared.tokens
from functions.responses import friendly_errors
from shared import telemetry as module
from shared.errors import ConnectorError, DependencyFailed, NotFound
from shared.http import client, dependency, reset_clients
from shared.join import join
from shared.launch import ProviderLaunch
from shared.notifications.job import run_notifications
from shared.settings import get_settings
from shared.storage.accounts import TableAccounts

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def keys(azurite_settings, monkeypatch):
    """This process set up like the app: the sandbox's keys and its Azurite."""
    for name, value in azurite_settings.model_dump().items():
        plain = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        monkeypatch.setenv(name.upper(), str(plain))
    monkeypatch.setattr(shared.storage.accounts, "_default", None)
    get_settings.cache_clear()
    shared.tokens._sealer = None
    yield azurite_settings
    get_settings.cache_clear()
    shared.tokens._sealer = None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503 if self.path.startswith("/down") else 429)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_tampered_link_and_one_to_an_endpoint_we_do_not_have_are_counted_as_invalid(telemetry, keys):
    join("not-a-real-token", "fr")
    # A link ends with its appointment, not with its own expiry: with no such endpoint it is simply not valid.
    token = shared.tokens.sealer().seal_link("ab" * 8, "12724070", datetime(2026, 1, 2, tzinfo=UTC))
    join(token, "es")
    assert telemetry.value("connector.joins", outcome="invalid") == 2
    assert telemetry.value("connector.joins", outcome="expired") == 0


def test_a_launch_callback_without_its_cookie_is_counted_as_a_failed_launch(telemetry, keys):
    with pytest.raises(ConnectorError) as refused:
        ProviderLaunch().callback({"state": "s", "code": "c"}, None)
    assert telemetry.value("connector.launches", outcome=refused.value.code) == 1
    assert telemetry.value("connector.launch.duration", outcome="visit") == 0


def test_unreachable_graph_and_a_cerner_503_and_429_are_dependency_failures_by_system(telemetry):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reset_clients()
    try:
        with pytest.raises(DependencyFailed), dependency("graph"):
            client("graph").get(f"http://127.0.0.1:{closed_port()}/v1.0/users?$filter=mail eq 'x'")
        port = server.server_address[1]
        client("entra").get(f"http://127.0.0.1:{port}/down/token")
        client("entra").get(f"http://127.0.0.1:{port}/busy")
    finally:
        server.shutdown()
        server.server_close()
        reset_clients()
    assert telemetry.value("connector.dependency.failures", system="graph", reason="unreachable") == 1
    assert telemetry.value("connector.dependency.failures", system="entra", reason="server_error") == 1
    assert telemetry.value("connector.dependency.failures", system="entra", reason="throttled") == 1


def test_a_reminder_run_that_cannot_reach_storage_is_counted_failed_with_its_duration(telemetry, keys):
    unreachable = keys.model_copy(update={"table_endpoint": f"http://127.0.0.1:{closed_port()}/devstoreaccount1"})
    # Whatever the storage SDK raises, the run must be counted as failed.
    with pytest.raises(Exception):
        run_notifications(datetime.now(UTC), accounts=TableAccounts(unreachable))
    assert telemetry.value("connector.reminders.runs", outcome="failed") == 1
    assert telemetry.value("connector.reminders.duration", outcome="failed") == 1


def test_request_spans_are_named_by_function_and_carry_no_url_or_query(telemetry, keys):
    @friendly_errors
    def join_patient(req: func.HttpRequest) -> func.HttpResponse:
        raise NotFound("No such link.")

    url = "http://127.0.0.1/api/join/SEALEDTOKEN?iss=https%3A%2F%2Ffhir.example&launch=12724070"
    join_patient(func.HttpRequest("GET", url, headers={"accept": "text/html"}, body=b""))
    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "join_patient"
    assert span.attributes["http.response.status_code"] == 404
    flat = repr(dict(span.attributes)) + span.name
    assert "SEALEDTOKEN" not in flat and "12724070" not in flat and "?" not in flat


@pytest.mark.parametrize("value", ["+13125550142", "12724070", "1948-03-02", "Jane Doe", "iss=https://x", "a" * 40])
def test_an_attribute_that_could_hold_phi_or_a_query_is_refused(telemetry, value):
    with pytest.raises(module.UnsafeAttribute):
        module.count("connector.joins", outcome=value)
    with pytest.raises(module.UnsafeAttribute):
        module.count("connector.joins", patient="lobby")
    assert telemetry.points() == []


def test_every_emitted_attribute_is_a_known_key_with_a_short_word(telemetry, keys):
    join("tampered", "en")
    with pytest.raises(ConnectorError):
        ProviderLaunch().callback({}, "garbage")
    points = telemetry.points()
    assert points
    for name, attributes, _value in points:
        assert name in module.METRICS
        assert set(attributes) <= module.METRICS[name][3]
        assert all(module.WORD.fullmatch(value) for value in attributes.values())


def test_without_application_insights_or_console_nothing_is_imported_or_exported():
    code = ("import sys, function_app; from shared import telemetry; telemetry.count('connector.joins', "
            "outcome='lobby'); print(any(m.startswith(('opentelemetry', 'azure.monitor')) for m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    env["TELEMETRY_CONSOLE"] = "false"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_the_console_setting_prints_the_metrics_locally():
    code = ("from shared import telemetry; telemetry.count('connector.joins', outcome='lobby'); "
            "from opentelemetry import metrics; metrics.get_meter_provider().shutdown()")
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    env["TELEMETRY_CONSOLE"] = "true"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "connector.joins" in out.stdout and '"outcome": "lobby"' in out.stdout, out.stderr[-2000:]
