"""Unexpected failures: a friendly 500 with a reference id; the log names where, never the exception's text."""

from __future__ import annotations

import logging

import azure.functions as func

from functions.responses import friendly_errors
from shared.errors import Gone


def request(accept: str = "text/html") -> func.HttpRequest:
    return func.HttpRequest("GET", "http://127.0.0.1/api/x", headers={"accept": accept}, body=b"")


def test_unexpected_failure_is_a_friendly_page_and_logs_no_identifier(caplog):
    @friendly_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("GET https://fhir.example/r4/t/Patient/12724070 failed")

    with caplog.at_level(logging.INFO, logger="connector"):
        response = handler(request())
    body = response.get_body().decode()
    assert response.status_code == 500
    assert "Something went wrong" in body and "Reference:" in body
    assert "12724070" not in body and "Traceback" not in body
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError" in logged and "test_responses.py" in logged
    assert "12724070" not in logged


def test_typed_errors_become_json_for_api_clients():
    @friendly_errors
    def handler(req: func.HttpRequest) -> func.HttpResponse:
        raise Gone("This link is no longer valid.", next_step="Ask for a new one.")

    response = handler(request("application/json"))
    assert response.status_code == 410
    assert response.mimetype == "application/json"
    assert b'"next_step": "Ask for a new one."' in response.get_body()
