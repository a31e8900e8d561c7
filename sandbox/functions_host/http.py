"""The host over HTTP: requests in, azure.functions objects through, responses out; admin and Event Grid routes."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import azure.functions as func
from azure.functions.http import HttpResponseConverter
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.functions_host.functions import FunctionEntry, FunctionFailedError, event_grid_event, log_failure
from sandbox.functions_host.host import FunctionsHost
from sandbox.functions_host.loading import EVENT_GRID_TRIGGER, HTTP_METHODS, HTTP_TRIGGER, logger


def _joined(values: Headers | QueryParams) -> dict[str, str]:
    """Multi-valued headers or query parameters as one comma-joined string each, as the host passes them."""
    return {key: ",".join(values.getlist(key)) for key in values}


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it exceeds the limit (the rest is read and dropped so the 413 arrives)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


def http_response_from(result: Any) -> Response:
    """Turn a function's return value into the response the host sends, through the library's own converter."""
    if result is None:
        return Response(status_code=204)
    datum = HttpResponseConverter.encode(result, expected_type=None)  # NotImplementedError for other types
    if datum.type == "string":
        return PlainTextResponse(datum.value)
    value = datum.value
    headers = {name: header.value for name, header in value["headers"].items()}
    response = Response(value["body"].value, status_code=int(value["status_code"].value), headers=headers)
    # The converter parses every Set-Cookie header into its own SimpleCookie; the host sends each one back.
    for cookie in value["cookies"] or []:
        if not cookie:
            logger.warning("A Set-Cookie header could not be parsed and was dropped (as on Azure)")
        for morsel in cookie.values():
            response.raw_headers.append((b"set-cookie", morsel.OutputString().encode("latin-1")))
    return response


def _error(status_code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status_code)


def _failure_response(reference: str) -> JSONResponse:
    return _error(500, "The function failed.", reference=reference)


def _log_label(request: Request, label: str) -> None:
    request.state.log_label = label


_HOME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Functions host (sandbox)</title>
</head><body><h1>Your Functions app is up and running</h1><p>Sandbox host. Functions: <a href="/admin/functions">
/admin/functions</a></p></body></html>"""


class _Endpoints:
    """The host's HTTP surface over one FunctionsHost."""

    def __init__(self, host: FunctionsHost) -> None:
        self.host = host

    def _admitted(self, request: Request, *, system: bool = False) -> bool:
        # Like the real host: the key comes in the x-functions-key header or the `code` query parameter.
        presented = request.headers.get("x-functions-key") or request.query_params.get("code")
        return self.host.keys.admits(presented, system=system)

    async def list_functions(self, request: Request) -> Response:
        _log_label(request, request.url.path)
        if not self._admitted(request):
            return Response(status_code=401)
        return JSONResponse(self.host.describe_functions(str(request.base_url).rstrip("/")))

    async def invoke(self, request: Request) -> Response:
        _log_label(request, request.url.path)
        if not self._admitted(request):
            return Response(status_code=401)  # the admin API needs the master key
        entry = self.host.function(request.path_params["name"])
        if entry is None:
            return _error(404, "No function of that name.")
        if entry.trigger == HTTP_TRIGGER:
            return _error(400, "HTTP functions are invoked through their route.")
        try:
            body = await request.body()
            input_value = json.loads(body).get("input") if body.strip() else None
            if entry.trigger == EVENT_GRID_TRIGGER:
                event_grid_event(input_value)  # reject a bad event here, not later in the background
        except (ValueError, AttributeError, TypeError):
            return _error(400, 'The body must be JSON: {"input": ...}.')
        self.host.start_invocation(entry, input_value)
        return Response(status_code=202)

    async def event_grid(self, request: Request) -> Response:
        _log_label(request, request.url.path)
        if not self._admitted(request, system=True):
            return Response(status_code=401)  # Event Grid's subscription URL carries the eventgrid_extension key
        name = request.query_params.get("functionName", "")
        entry = self.host.function(name)
        if entry is None or entry.trigger != EVENT_GRID_TRIGGER:
            return PlainTextResponse(f"cannot find function: '{name}'", status_code=404)
        body = await _read_body(request, self.host.max_body_bytes)
        if body is None:
            return _error(413, "Request body too large.", limit=self.host.max_body_bytes)
        try:
            events = _event_list(json.loads(body))
            kind = _aeg_event_type(request.headers.get("aeg-event-type"), events)
            if kind == "subscriptionvalidation":
                return JSONResponse({"validationResponse": events[0]["data"]["validationCode"]})
            triggers = [event_grid_event(event) for event in events]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return _error(400, "The body must be a JSON array of Event Grid events.")
        if kind == "unsubscribe":
            return Response(status_code=202)
        if kind != "notification":
            return Response(status_code=400)
        try:
            await self.host.deliver_events(entry, triggers)
        except FunctionFailedError as failed:
            return _failure_response(failed.reference)
        return Response(status_code=202)  # what the Event Grid extension answers for delivered events

    async def http(self, request: Request) -> Response:
        path, method = request.scope["path"], request.method
        matches = self.host.match_http(path)
        if not matches:
            if path == "/" and method == "GET":
                _log_label(request, "/")
                return HTMLResponse(_HOME_PAGE)
            _log_label(request, "(no matching route)")
            return _error(404, "Not Found")
        allowed = [match for match in matches if match[0].allows(method)]
        if not allowed:
            _log_label(request, "/" + matches[0][1].template)
            allow = sorted({allowed_method for entry, _, _ in matches for allowed_method in entry.methods or []})
            return JSONResponse({"error": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allow)})
        entry, route, route_params = allowed[0]
        _log_label(request, "/" + route.template)
        return await self._call_http(request, entry, route_params)

    async def _call_http(self, request: Request, entry: FunctionEntry, route_params: dict[str, str]) -> Response:
        body = await _read_body(request, self.host.max_body_bytes)
        if body is None:
            return _error(413, "Request body too large.", limit=self.host.max_body_bytes)
        # authLevel is not enforced: like Core Tools running locally, the sandbox host asks for no function keys.
        http_request = func.HttpRequest(
            request.method,
            str(request.url),
            headers=_joined(request.headers),
            params=_joined(request.query_params),
            route_params=route_params,
            body=body,
        )
        try:
            result = await self.host.invoke_async(entry, http_request)
        except FunctionFailedError as failed:
            return _failure_response(failed.reference)
        try:
            return http_response_from(result)
        except Exception as error:
            return _failure_response(log_failure(entry.name, error))


def _event_list(document: Any) -> list[Any]:
    events = [document] if isinstance(document, dict) else document
    if not isinstance(events, list) or not events:
        raise ValueError("expected a non-empty JSON array")
    return events


def _aeg_event_type(header: str | None, events: list[Any]) -> str:
    """The delivery kind from the aeg-event-type header (Event Grid always sends it); guessed when a test omits it."""
    if header:
        return header.lower()
    validation = "Microsoft.EventGrid.SubscriptionValidationEvent"
    return "subscriptionvalidation" if events[0].get("eventType") == validation else "notification"


class _RequestLog:
    """One log line per request: method, route template (never the query string or route values), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        started, status = time.perf_counter(), 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            label = state.get("log_label", "(unrouted)")
            logger.info("%s %s -> %d (%.0f ms)", scope["method"], label, status, elapsed_ms)


def build_app(function_app: Any, settings_env: Mapping[str, str] | None = None) -> Starlette:
    """The host's ASGI app for a FunctionApp (or a ready FunctionsHost); the host is at `app.state.functions_host`."""
    is_host = isinstance(function_app, FunctionsHost)
    host = function_app if is_host else FunctionsHost(function_app, settings_env)
    endpoints = _Endpoints(host)
    app = Starlette(
        routes=[
            Route("/admin/functions", endpoints.list_functions, methods=["GET"]),
            Route("/admin/functions/{name}", endpoints.invoke, methods=["POST"]),
            Route("/runtime/webhooks/eventgrid", endpoints.event_grid, methods=["POST"]),
            Route("/{path:path}", endpoints.http, methods=HTTP_METHODS),
        ],
        middleware=[Middleware(_RequestLog)],
    )
    app.state.functions_host = host
    return app
