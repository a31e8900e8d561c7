"""Request and response helpers shared by the Oracle Health stand-in's routes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from sandbox.oracle.state import OracleState

FHIR_JSON = "application/fhir+json"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def origin(state: OracleState, request: Request) -> str:
    """This server's origin as the client sees it (or the configured public URL)."""
    return state.public_url or str(request.base_url).rstrip("/")


def fhir_base(state: OracleState, request: Request, tenant: str) -> str:
    """The tenant's FHIR R4 base URL."""
    return f"{origin(state, request)}/r4/{tenant}"


def auth_base(state: OracleState, request: Request, tenant: str) -> str:
    """The tenant's SMART v1 OAuth profile root."""
    return f"{origin(state, request)}/tenants/{tenant}/protocols/oauth2/profiles/smart-v1"


def issuer(state: OracleState, request: Request, tenant: str) -> str:
    """The tenant's OpenID Connect issuer (with Cerner's trailing slash)."""
    return f"{origin(state, request)}/tenants/{tenant}/oidc/idsps/{tenant}/"


async def form_and_query(request: Request) -> dict[str, str]:
    """Query parameters, overlaid with an urlencoded form body when there is one."""
    params = dict(request.query_params)
    if request.method == "POST":
        body = (await request.body()).decode("utf-8", errors="replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


def json_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None,
                  media_type: str = "application/json") -> Response:
    """A compact JSON response."""
    return Response(json.dumps(body, separators=(",", ":")), status, headers=headers, media_type=media_type)


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON response."""
    return json_response(body, status, headers, FHIR_JSON)


def operation_outcome(status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> Response:
    """An OperationOutcome error, as Cerner returns for FHIR failures."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return fhir_response(body, status, headers)


def oauth_error(error: str, description: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    """An RFC 6749 §5.2 error body, never cached."""
    return json_response({"error": error, "error_description": description}, status, {**NO_STORE, **(headers or {})})
