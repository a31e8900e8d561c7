"""Which Graph answers count as refusing the virtual-appointment join link to the app."""

from __future__ import annotations

import httpx
import pytest

from shared.microsoft.graph import _not_supported


def graph_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, "innerError": {}}})


@pytest.mark.parametrize(("response", "refused"), [
    (graph_error(400, "BadRequest", "Application permission is not supported for this API."), True),
    (graph_error(405, "NotSupported", "The operation is not allowed."), True),
    (graph_error(501, "NotImplemented", "Not Supported for app-only tokens"), True),
    (graph_error(400, "BadRequest", "Invalid value for 'startDateTime'."), False),
    (graph_error(503, "ServiceUnavailable", "Try again later."), False),
    (httpx.Response(502, text="<html>Bad gateway</html>"), False),
    (httpx.Response(400, json=["not", "an", "error", "object"]), False),
])
def test_not_supported_errors_are_recognised_by_code_or_message(response, refused):
    assert _not_supported(response) is refused
