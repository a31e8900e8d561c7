"""The phone-number routes: search, purchase (long-running operations), list and get."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.acs.phones import acs_error, normalize_phone
from sandbox.acs.records import Operation
from sandbox.acs.signing import bad_request, json_object
from sandbox.acs.state import AcsState


def _lro_headers(request: Request, state: AcsState, operation: Operation, extra: dict[str, str]) -> dict[str, str]:
    api_version = request.query_params.get("api-version", "")
    return {
        "Operation-Location": f"/phoneNumbers/operations/{operation.id}?api-version={api_version}",
        "operation-id": operation.id, "Retry-After": f"{state.lro_retry_after_seconds:g}", **extra,
    }


def _search_request_problem(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return "The request body must be a JSON object."
    if payload.get("phoneNumberType") not in ("tollFree", "geographic"):
        return "phoneNumberType must be tollFree or geographic."
    if payload.get("assignmentType") not in ("application", "person", "user"):
        return "assignmentType must be application or person."
    capabilities = payload.get("capabilities")
    allowed = ("none", "inbound", "outbound", "inbound+outbound")
    if not isinstance(capabilities, dict) or any(capabilities.get(k) not in allowed for k in ("sms", "calling")):
        return "capabilities.sms and capabilities.calling are required."
    area_code = payload.get("areaCode")
    if area_code is not None and not (isinstance(area_code, str) and re.fullmatch(r"[2-9]\d\d", area_code)):
        return "areaCode must be three digits."
    quantity = payload.get("quantity", 1)
    if not isinstance(quantity, int) or not 1 <= quantity <= 10:
        return "quantity must be between 1 and 10."
    return None


async def search_numbers(request: Request, state: AcsState) -> Response:
    """POST /availablePhoneNumbers/countries/{cc}/:search: 202 and an operation to poll."""
    payload = await json_object(request)
    problem = _search_request_problem(payload)
    if problem or payload is None:
        return bad_request(problem or "")
    country_code = request.path_params["country_code"].upper()
    operation = state._start_search(country_code, payload, state.now())
    api_version = request.query_params["api-version"]
    headers = _lro_headers(request, state, operation, {
        "Location": f"/availablePhoneNumbers/searchResults/{operation.search_id}?api-version={api_version}",
        "search-id": operation.search_id,
    })
    return Response(status_code=202, headers=headers)


async def purchase_numbers(request: Request, state: AcsState) -> Response:
    """POST /availablePhoneNumbers/:purchase {searchId}: 202 and an operation to poll."""
    payload = await json_object(request)
    search = state.searches.get(str((payload or {}).get("searchId")))
    if search is None or not search.phone_numbers:
        return acs_error(404, "NotFound", "No search with this searchId.")
    operation = state._start_purchase(search, state.now())
    return Response(status_code=202, headers=_lro_headers(request, state, operation, {"purchase-id": search.search_id}))


async def get_operation(request: Request, state: AcsState) -> Response:
    """GET /phoneNumbers/operations/{id}: notStarted, running, then succeeded or failed."""
    operation = state.operations.get(request.path_params["operation_id"])
    if operation is None:
        return acs_error(404, "NotFound", "Operation not found.")
    body = operation.to_json(state.now())
    running = body["status"] in ("notStarted", "running")
    headers = {"Retry-After": f"{state.lro_retry_after_seconds:g}"} if running else None
    return JSONResponse(body, headers=headers)


async def get_search_result(request: Request, state: AcsState) -> Response:
    """GET /availablePhoneNumbers/searchResults/{searchId}: the reserved numbers once the search finished."""
    search = state.searches.get(request.path_params["search_id"])
    operation = state.operations.get(f"search_{request.path_params['search_id']}")
    if search is None or operation is None or operation.status_at(state.now()) != "succeeded":
        return acs_error(404, "NotFound", "Search result not found.")
    return JSONResponse(search.to_json())


async def list_numbers(request: Request, state: AcsState) -> Response:
    """GET /phoneNumbers: the numbers the resource owns."""
    with state.lock:
        numbers = [number.to_json() for number in state.numbers.values()]
    return JSONResponse({"phoneNumbers": numbers, "nextLink": None})


async def get_number(request: Request, state: AcsState) -> Response:
    """GET /phoneNumbers/{number}."""
    number = state.numbers.get(normalize_phone(request.path_params["phone_number"]))
    if number is None:
        return acs_error(404, "PhoneNumberNotFound", "The phone number is not owned by this resource.")
    return JSONResponse(number.to_json())
