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

from shared import telemetry
from shared.errors import ConnectorError
from shared.pages import render

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


def friendly_errors(handler: Callable[[func.HttpRequest], func.HttpResponse]):
    """Typed errors become their page or JSON; anything unexpected a 500 with a reference id, no internals."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        # Named by the function, never by the URL: paths carry sealed tokens and queries carry launch codes.
        with telemetry.span(handler.__name__) as attributes:
            response = _answer(req)
            attributes["http.response.status_code"] = response.status_code
            return response

    def _answer(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except ConnectorError as error:
            return error_response(error, req)
        except Exception as failure:
            error = ConnectorError("Something went wrong on our side.", status=500, code="internal_error",
                                   next_step="Try again in a minute. If it keeps happening, tell IT.")
            error.title = "Something went wrong"
            # Where it failed, not the exception's text: messages of client libraries can carry URLs with ids.
            frames = " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}"
                                for f in reversed(traceback.extract_tb(failure.__traceback__)[-4:]))
            log.error("unexpected %s at %s (reference %s)", type(failure).__name__, frames, error.reference)
            return error_response(error, req)

    return wrapper
