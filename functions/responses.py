"""Turning service results and typed errors into HTTP responses (JSON or a friendly page)."""

from __future__ import annotations

import functools
import json
import logging
import traceback
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

import azure.functions as func

from functions.lazy import lazy
from shared import telemetry
from shared.errors import ConnectorError
from shared.pages import render

# The settings model (pydantic-settings) loads on the first request that needs it, not at import.
settings = lazy("shared.settings")
tokens = lazy("shared.tokens")

log = logging.getLogger("connector")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str), status_code=status, mimetype="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def html_response(html: str, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        html, status_code=status, mimetype="text/html", charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **(headers or {})},
    )


HSTS = "max-age=31536000; includeSubDomains"
NO_FRAMING = "'none'"


def with_security_headers(response: func.HttpResponse, frame_ancestors: str = "",
                          over_https: bool | None = None) -> func.HttpResponse:
    """nosniff on everything; framed only by frame_ancestors (none if empty) unless the page says; HSTS over https."""
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    policy = headers.get("Content-Security-Policy", "")
    if "frame-ancestors" not in policy:
        directive = f"frame-ancestors {frame_ancestors or NO_FRAMING}"
        headers["Content-Security-Policy"] = f"{policy}; {directive}" if policy else directive
    if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
        headers["X-Frame-Options"] = "DENY"  # for browsers that predate frame-ancestors
    if tokens.served_over_https() if over_https is None else over_https:
        headers["Strict-Transport-Security"] = HSTS
    return response


def wants_json(request: func.HttpRequest) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(error: ConnectorError, request: func.HttpRequest, language: str = "en") -> func.HttpResponse:
    """The error as JSON for API clients, as a page for people; both carry the reference id."""
    # Log the code and reference only: messages are safe, but the reference is what support needs.
    log.warning("request failed: %s %s (reference %s)", error.status, error.code, error.reference)
    if wants_json(request):
        return json_response(error.as_dict(), status=error.status)
    page = render("error.html", language=language, error=error)
    return html_response(page, status=error.status)


def redirect_response(location: str, cookies: list[str] | None = None, status: int = 302) -> func.HttpResponse:
    response = func.HttpResponse(status_code=status, headers={"Location": location, "Cache-Control": "no-store",
                                                               "Referrer-Policy": "no-referrer"})
    for cookie in cookies or []:
        response.headers.add("Set-Cookie", cookie)
    return response


def request_cookie(request: func.HttpRequest, name: str) -> str | None:
    """One cookie of the request, or None (a malformed Cookie header counts as none)."""
    jar = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def query(request: func.HttpRequest) -> dict[str, str]:
    return {name: value for name, value in request.params.items()}


def friendly_errors(handler: Callable[[func.HttpRequest], func.HttpResponse] | None = None, *,
                    check_keys: bool = True, provider_page: bool = False):
    """Typed errors become their page or JSON; anything unexpected a 500 with a reference id, no internals."""
    # Every route refuses to serve with unsafe keys; only the health check, which reports them, turns this off.
    # Provider pages (and their error pages) may be framed by the hospitals in PROVIDER_FRAME_ANCESTORS.
    if handler is None:
        return functools.partial(friendly_errors, check_keys=check_keys, provider_page=provider_page)

    def secured(response: func.HttpResponse) -> func.HttpResponse:
        ancestors = settings.get_settings().provider_frame_ancestors if provider_page else ""
        return with_security_headers(response, ancestors)

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        # Named by the function, never by the URL: paths carry sealed tokens and queries carry launch codes.
        with telemetry.span(handler.__name__) as attributes:
            response = _answer(req)
            attributes["http.response.status_code"] = response.status_code
            return response

    def _answer(req: func.HttpRequest) -> func.HttpResponse:
        try:
            if check_keys:
                tokens.require_safe_keys()
            return secured(handler(req))
        except ConnectorError as error:
            return secured(error_response(error, req))
        except Exception as failure:
            error = ConnectorError("Something went wrong on our side.", status=500, code="internal_error",
                                   next_step="Try again in a minute. If it keeps happening, tell IT.")
            error.title = "Something went wrong"
            # Where it failed, not the exception's text: messages of client libraries can carry URLs with ids.
            frames = " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                                for f in reversed(traceback.extract_tb(failure.__traceback__)[-4:]))
            log.error("unexpected %s at %s (reference %s)", type(failure).__name__, frames, error.reference)
            return secured(error_response(error, req))

    return wrapper
