"""ACS's HMAC-SHA256 request signature and the signed-API wrapper every data-plane route goes through."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.acs.phones import CLOCK_SKEW, SIGNED_HEADERS_REQUIRED, acs_error, status_code_name
from sandbox.acs.shapes import parse_http_date, same
from sandbox.acs.state import AcsState


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def hmac_problem(request: Request, body: bytes, access_key: str, now: datetime) -> str | None:
    """Why the request's ACS HMAC-SHA256 signature is not acceptable, or None when it is."""
    headers = request.headers
    date, content_hash = headers.get("x-ms-date"), headers.get("x-ms-content-sha256")
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if not (date and content_hash and scheme == "HMAC-SHA256"):
        return "missing x-ms-date, x-ms-content-sha256 or HMAC-SHA256 authorization"
    signed_at = parse_http_date(date)
    if signed_at is None:
        return "x-ms-date is not an RFC 1123 date"
    if abs(now - signed_at) > CLOCK_SKEW:
        return "x-ms-date is more than 15 minutes away from the server time"
    if not same(content_hash, _b64_sha256(body)):
        return "x-ms-content-sha256 does not match the body"
    parts = dict(part.split("=", 1) for part in credentials.split("&") if "=" in part)
    signed_headers = parts.get("SignedHeaders", "").lower().split(";")
    if not SIGNED_HEADERS_REQUIRED.issubset(signed_headers):
        return "SignedHeaders must include x-ms-date, host and x-ms-content-sha256"
    path_and_query = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if request.scope.get("query_string"):
        path_and_query += "?" + request.scope["query_string"].decode("latin-1")
    signed_values = ";".join(headers.get(name, "") for name in signed_headers)
    to_sign = f"{request.method}\n{path_and_query}\n{signed_values}".encode()
    expected = base64.b64encode(hmac.new(base64.b64decode(access_key), to_sign, hashlib.sha256).digest()).decode()
    if not same(parts.get("Signature", ""), expected):
        return "signature does not match"
    return None


ApiHandler = Callable[[Request, AcsState], Awaitable[Response]]


def signed(state: AcsState, name: str, handler: ApiHandler, needs_api_version: bool = True):
    """Wrap an API handler with what ACS does first: latency, HMAC check, injected faults, api-version."""

    async def endpoint(request: Request) -> Response:
        if state.latency_seconds:
            await asyncio.sleep(state.latency_seconds)
        body = await request.body()
        problem = hmac_problem(request, body, state.access_key, state.now())
        with state.lock:
            state.request_counts["denied" if problem else name] += 1
            if problem:
                state.auth_failures.append(problem)
        if problem:
            return acs_error(401, "Denied", "Denied by the resource provider.")
        fault = state._take_fault(request.url.path)
        if fault:
            retry = {"Retry-After": "1"} if fault in (429, 503) else None
            return acs_error(fault, status_code_name(fault), "Injected fault from the sandbox.", retry)
        if needs_api_version and not request.query_params.get("api-version"):
            return acs_error(400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required for all requests.")
        state._settle(state.now())
        return await handler(request, state)

    return endpoint


async def json_object(request: Request) -> dict[str, Any] | None:
    """The request's JSON body when it is an object, else None."""
    try:
        payload = await request.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def bad_request(message: str) -> JSONResponse:
    """A 400 in ACS's error shape."""
    return acs_error(400, "BadRequest", message)
