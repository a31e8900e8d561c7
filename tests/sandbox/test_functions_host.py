"""The sandbox Functions host, over real HTTP: routes, responses, failures, timers, admin and Event Grid."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sandbox.functions_host import FunctionFailedError, HostHandle, start_host
from sandbox.servers import free_port, wait_for_port
from tests.sandbox.sample_app import Recorder, make_app
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"SAMPLE_SCHEDULE": "*/1 * * * * *", "SAMPLE_GREETING": "hello from settings"}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HostHandle, Recorder]]:
    function_app, recorder = make_app()
    recorder.hold_runs = True
    handle = start_host(function_app, free_port(), SETTINGS, state_dir=tmp_path_factory.mktemp("timers"))
    yield handle, recorder
    recorder.release.set()
    handle.stop()


@pytest.fixture(scope="module")
def client(host: tuple[HostHandle, Recorder]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host[0].url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def seen(host: tuple[HostHandle, Recorder]) -> Recorder:
    return host[1]


# HTTP triggers


def test_route_parameters_query_and_headers_reach_the_function(client: httpx.Client) -> None:
    response = client.get("/api/items/42", params={"color": "blue"}, headers={"X-Sample": "s1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    seen = response.json()
    assert (seen["id"], seen["method"], seen["params"], seen["header"]) == ("42", "GET", {"color": "blue"}, "s1")
    assert seen["url"] == f"{str(client.base_url).rstrip('/')}/api/items/42?color=blue"


def test_int_constraint_rejects_what_is_not_an_int32(client: httpx.Client) -> None:
    assert client.get("/api/items/abc").status_code == 404
    assert client.get("/api/items/99999999999").status_code == 404
    assert client.get("/api/items/-7").json()["id"] == "-7"


def test_catch_all_takes_the_rest_of_the_path(client: httpx.Client) -> None:
    assert client.get("/api/files/reports/2024/usage.csv").json() == {"rest": "reports/2024/usage.csv"}
    assert client.get("/api/files").json() == {"rest": None}


def test_optional_alpha_parameter(client: httpx.Client) -> None:
    assert client.get("/api/greet").text == "hello world"
    assert client.get("/api/greet/Ada").text == "hello Ada"
    assert client.get("/api/greet/123").status_code == 404


def test_literals_match_any_case_and_default_route_is_the_function_name(client: httpx.Client) -> None:
    assert client.get("/API/Items/7").json()["id"] == "7"
    response = client.delete("/api/PING")  # no methods given: any method; async function with a context
    assert response.status_code == 200
    assert response.text == "pong from ping"


def test_auth_level_function_asks_for_no_key_locally(client: httpx.Client) -> None:
    assert client.get("/api/ping").status_code == 200


def test_post_body_passes_through_unchanged(client: httpx.Client) -> None:
    body = '{"note": "ünïcode & bytes"}'.encode()
    response = client.post("/api/items/1", content=body)
    assert response.json()["method"] == "POST"
    assert response.json()["body"].encode() == body


def test_unknown_route_is_404_json(client: httpx.Client) -> None:
    response = client.get("/api/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_wrong_method_is_405_with_allow(client: httpx.Client) -> None:
    response = client.delete("/api/items/3")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


def test_status_headers_mimetype_and_both_cookies_arrive(client: httpx.Client) -> None:
    response = client.get("/api/cookies")
    assert response.status_code == 201
    assert response.text == "<p>ok</p>"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-custom"] == "yes"
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 2
    assert cookies[0].startswith("first=1") and "HttpOnly" in cookies[0]
    assert cookies[1].startswith("second=2") and "Path=/api" in cookies[1] and "SameSite=Lax" in cookies[1]


def test_a_failing_function_gives_500_with_a_reference_and_no_details(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="sandbox.functions_host")
    response = client.get("/api/boom")
    assert response.status_code == 500
    reference = response.json()["reference"]
    assert response.json() == {"error": "The function failed.", "reference": reference}
    assert len(reference) == 32 and int(reference, 16) >= 0
    assert "Traceback" not in response.text and "555-0100" not in response.text
    logged = [record for record in caplog.records if reference in record.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_body_over_4_mib_is_413_and_4_mib_is_fine(client: httpx.Client) -> None:
    limit = 4 * 1024 * 1024
    assert client.post("/api/ping", content=b"x" * limit).status_code == 200
    response = client.post("/api/ping", content=b"x" * (limit + 1))
    assert response.status_code == 413
    assert response.json()["error"] == "Request body too large."


def test_settings_reach_the_function(client: httpx.Client) -> None:
    assert client.get("/api/setting").json()["now"] == "hello from settings"


# Event Grid


def test_event_grid_delivery_calls_the_function_once_per_event(client: httpx.Client, seen: Recorder) -> None:
    events = [
        {
            "id": f"evt-{n}",
            "topic": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Communication/communicationServices/a",
            "subject": f"sms/{n}",
            "eventType": "Microsoft.Communication.SMSDeliveryReportReceived",
            "eventTime": "2024-05-01T10:00:00Z",
            "data": {"deliveryStatus": "Delivered"},
            "dataVersion": "1.0",
        }
        for n in (1, 2)
    ]
    response = client.post(
        "/runtime/webhooks/eventgrid",
        params={"functionName": "on_delivery_report"},
        json=events,
        headers={"aeg-event-type": "Notification"},
    )
    assert response.status_code == 202
    received = sorted(seen.seen("on_delivery_report"), key=lambda event: event["id"])
    assert [event["id"] for event in received] == ["evt-1", "evt-2"]
    assert received[0]["event_type"] == "Microsoft.Communication.SMSDeliveryReportReceived"
    assert received[0]["data"] == {"deliveryStatus": "Delivered"}
    assert received[0]["event_time"].year == 2024


def test_event_grid_subscription_validation_echoes_the_code(client: httpx.Client) -> None:
    validation = [
        {
            "id": "v1",
            "topic": "/subscriptions/0000",
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2024-05-01T10:00:00Z",
            "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"},
            "dataVersion": "2",
        }
    ]
    response = client.post(
        "/runtime/webhooks/eventgrid?functionName=on_delivery_report",
        json=validation,
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}


def test_event_grid_for_an_unknown_function_is_404(client: httpx.Client) -> None:
    response = client.post("/runtime/webhooks/eventgrid?functionName=nope", json=[], headers={"aeg-event-type": "x"})
    assert response.status_code == 404


# Admin


def test_admin_lists_functions_with_triggers_routes_and_schedules(client: httpx.Client) -> None:
    listed = {function["name"]: function for function in client.get("/admin/functions").json()}
    assert listed["item"]["trigger"] == "httpTrigger"
    assert listed["item"]["route"] == "api/items/{id:int}" and listed["item"]["methods"] == ["GET", "POST"]
    assert listed["on_delivery_report"]["trigger"] == "eventGridTrigger"
    every_second = listed["every_second"]
    assert every_second["schedule"] == "*/1 * * * * *"  # resolved from %SAMPLE_SCHEDULE%
    assert every_second["nextOccurrence"] >= time.strftime("%Y-%m-%dT%H:%M", time.gmtime())
    assert "%SAMPLE_MISSING_SETTING%" in listed["unresolved"]["error"]


def test_admin_runs_a_timer_now_with_past_due_false(client: httpx.Client, seen: Recorder) -> None:
    assert not seen.seen("yearly")
    response = client.post("/admin/functions/yearly", json={"input": None})
    assert response.status_code == 202
    assert seen.wait_for("yearly")[0]["past_due"] is False


def test_admin_for_an_unknown_function_is_404(client: httpx.Client) -> None:
    assert client.post("/admin/functions/nope", json={"input": None}).status_code == 404


def test_run_function_runs_in_process_and_reports_failures(host: tuple[HostHandle, Recorder], seen: Recorder) -> None:
    handle, _ = host
    handle.run_function("on_delivery_report", input={"id": "direct", "eventType": "Test", "data": {"n": 1}})
    assert seen.seen("on_delivery_report")[-1]["data"] == {"n": 1}
    with pytest.raises(FunctionFailedError):
        handle.run_function("failing")


# Timers across a restart, and the command line


def test_a_missed_occurrence_after_restart_runs_once_past_due(tmp_path: Path) -> None:
    settings = {**SETTINGS, "SAMPLE_RESTART_ONLY": "set"}
    first_app, first = make_app()
    handle = start_host(first_app, free_port(), settings, state_dir=tmp_path)
    try:
        assert os.environ["SAMPLE_RESTART_ONLY"] == "set"
        first.wait_for("monitored")
    finally:
        handle.stop()
    assert "SAMPLE_RESTART_ONLY" not in os.environ
    recorded = json.loads((tmp_path / "monitored.json").read_text())
    missed = datetime.fromisoformat(recorded["Next"])
    time.sleep(max(0.0, (missed - datetime.now(UTC)).total_seconds() + 0.05))  # it goes by while the host is down

    second_app, second = make_app()
    handle = start_host(second_app, free_port(), settings, state_dir=tmp_path)
    try:
        first_run = second.wait_for("monitored")[0]
    finally:
        handle.stop()
    assert first_run["past_due"] is True
    assert first_run["status"]["Next"] == recorded["Next"]


def test_cli_applies_settings_before_import_serves_and_exits_cleanly(tmp_path: Path) -> None:
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": SETTINGS}))
    port = free_port()
    command = [sys.executable, "-m", "sandbox.functions_host", "--app", "tests.sandbox.sample_app:app"]
    command += ["--port", str(port), "--settings", str(settings_file), "--state-dir", str(tmp_path / "timers")]
    environment = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=15)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as cli_client:
            assert cli_client.get("/api/setting").json()["at_import"] == "hello from settings"
            assert cli_client.get("/api/ping", params={"code": "private-query-value"}).status_code == 200
        process.send_signal(signal.SIGTERM)
        _, logs = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "GET /api/ping -> 200" in logs
    assert "private-query-value" not in logs


# Timers of the module's host (last: it has been running a while by now, so these waits are short)


def test_a_timer_fires_on_its_setting_named_schedule(seen: Recorder) -> None:
    runs = seen.wait_for("every_second", count=2)
    assert all(run["past_due"] is False for run in runs)
    last, following = (datetime.fromisoformat(runs[1]["status"][key]) for key in ("Last", "Next"))
    assert runs[1]["status"]["Last"] != "0001-01-01T00:00:00+00:00"
    assert last.microsecond == following.microsecond == 0 and following > last, "occurrences on whole seconds"


def test_a_failing_timer_is_logged_and_keeps_its_schedule(seen: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="sandbox.functions_host")
    before = len(seen.seen("failing"))
    seen.wait_for("failing", count=before + 1)
    wait_until(lambda: any("'Functions.failing'" in record.getMessage() for record in caplog.records))
    failures = [record for record in caplog.records if "'Functions.failing'" in record.getMessage()]
    assert failures and "reference" in failures[0].getMessage() and failures[0].exc_info is not None


def test_a_timer_does_not_fire_while_its_previous_run_is_running(seen: Recorder,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sandbox.functions_host")
    seen.wait_for("held")
    skipped = "Timer 'held' skipped an occurrence: its previous run is still running"
    assert wait_until(lambda: any(skipped in record.getMessage() for record in caplog.records)), "an occurrence came"
    assert len(seen.seen("held")) == 1
    seen.release.set()
    seen.wait_for("held", count=2)
