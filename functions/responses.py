"""Turning service results and typed errors into HTTP responses (JSON or a friendly page)."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

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
