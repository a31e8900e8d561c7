"""A small FunctionApp for the sandbox host's tests: HTTP routes, timers and an Event Grid trigger on a blueprint."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import azure.functions as func

from tests.waiting import PATIENCE

# Read at import, so a test can tell whether the host applied the settings before importing the app.
GREETING_AT_IMPORT = os.environ.get("SAMPLE_GREETING", "")


class Recorder:
    """What the sample functions saw, in order (thread-safe), and a gate that can hold the `held` timer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[str, dict[str, Any]]] = []
        self.hold_runs = False
        self.release = threading.Event()

    def note(self, function: str, **seen: Any) -> None:
        with self._lock:
            self._calls.append((function, seen))

    def seen(self, function: str) -> list[dict[str, Any]]:
        with self._lock:
            return [seen for name, seen in self._calls if name == function]

    def wait_for(self, function: str, count: int = 1, timeout: float = PATIENCE) -> list[dict[str, Any]]:
        """Block until the function has been called `count` times; return what it saw."""
        deadline = time.monotonic() + timeout
        while len(self.seen(function)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{function} ran {len(self.seen(function))} times, wanted {count}")
            time.sleep(0.02)
        return self.seen(function)


def _json(document: Any, status_code: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document), status_code=status_code, mimetype="application/json")


def _http_functions(bp: func.Blueprint) -> None:
    @bp.route(route="items/{id:int}", methods=["GET", "POST"])
    def item(req: func.HttpRequest) -> func.HttpResponse:
        return _json(
            {
                "id": req.route_params["id"],
                "method": req.method,
                "params": dict(req.params),
                "header": req.headers.get("x-sample"),
                "body": req.get_body().decode(),
                "url": req.url,
            }
        )

    @bp.route(route="files/{*rest}", methods=["GET"])
    def files(req: func.HttpRequest) -> func.HttpResponse:
        return _json({"rest": req.route_params.get("rest")})

    @bp.route(route="greet/{name:alpha?}", methods=["GET"])
    def greet(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(f"hello {req.route_params.get('name', 'world')}")

    @bp.route()
    async def ping(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse(f"pong from {context.function_name}")

    @bp.route(route="cookies", methods=["GET"])
    def cookies(req: func.HttpRequest) -> func.HttpResponse:
        response = func.HttpResponse("<p>ok</p>", status_code=201, headers={"X-Custom": "yes"}, mimetype="text/html")
        response.headers.add("Set-Cookie", "first=1; Path=/; HttpOnly")
        response.headers.add("Set-Cookie", "second=2; Path=/api; Secure; SameSite=Lax")
        return response

    @bp.route(route="boom", methods=["GET"])
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("could not reach patient at 555-0100")

    @bp.route(route="setting", methods=["GET"])
    def setting(req: func.HttpRequest) -> func.HttpResponse:
        return _json({"now": os.environ.get("SAMPLE_GREETING", ""), "at_import": GREETING_AT_IMPORT})


def _timer_functions(bp: func.Blueprint, recorder: Recorder) -> None:
    def note(name: str, timer: func.TimerRequest) -> None:
        recorder.note(name, past_due=timer.past_due, status=dict(timer.schedule_status), at=time.monotonic())

    @bp.timer_trigger(schedule="%SAMPLE_SCHEDULE%", arg_name="timer", use_monitor=False)
    def every_second(timer: func.TimerRequest) -> None:
        note("every_second", timer)

    @bp.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", use_monitor=True)
    def monitored(timer: func.TimerRequest) -> None:
        note("monitored", timer)

    @bp.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
    def yearly(timer: func.TimerRequest) -> None:
        note("yearly", timer)

    @bp.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", use_monitor=False)
    def held(timer: func.TimerRequest) -> None:
        note("held", timer)
        if recorder.hold_runs:
            recorder.release.wait(PATIENCE)  # until the test lets it go

    @bp.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", use_monitor=False)
    def failing(timer: func.TimerRequest) -> None:
        note("failing", timer)
        raise RuntimeError("reminder run failed")

    @bp.timer_trigger(schedule="%SAMPLE_MISSING_SETTING%", arg_name="timer")
    def unresolved(timer: func.TimerRequest) -> None:
        note("unresolved", timer)


def _event_functions(bp: func.Blueprint, recorder: Recorder) -> None:
    @bp.event_grid_trigger(arg_name="event")
    def on_delivery_report(event: func.EventGridEvent) -> None:
        recorder.note(
            "on_delivery_report",
            id=event.id,
            topic=event.topic,
            subject=event.subject,
            event_type=event.event_type,
            event_time=event.event_time,
            data=event.get_json(),
        )


def make_app() -> tuple[func.FunctionApp, Recorder]:
    """A fresh app (get_functions() works once per app) and the recorder its functions write to."""
    recorder = Recorder()
    bp = func.Blueprint()
    _http_functions(bp)
    _timer_functions(bp, recorder)
    _event_functions(bp, recorder)
    function_app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
    function_app.register_functions(bp)
    return function_app, recorder


# For `python -m sandbox.functions_host --app tests.sandbox.sample_app:app`.
app, recorder = make_app()
