"""The Graph API routes: online meetings, joinWebUrl, attendance reports and subscribedSkus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.entra import Endpoint
from sandbox.graph.records import GRAPH_JSON, PERMISSIONS, AttendanceSession, Caller, GraphError, OnlineMeeting
from sandbox.graph.resources import report_json
from sandbox.graph.state import GraphState


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def graph_error_response(error: GraphError, request: Request) -> JSONResponse:
    """An error in Graph's shape, with request-id headers."""
    request_id = str(uuid.uuid4())
    client_request_id = request.headers.get("client-request-id", request_id)
    body = {"error": {"code": error.code, "message": error.message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id,
        "client-request-id": client_request_id}}}
    headers = {"request-id": request_id, "client-request-id": client_request_id, **error.headers}
    return JSONResponse(body, status_code=error.status, headers=headers, media_type=GRAPH_JSON)


def _graph_json(body: dict, request: Request, status: int = 200) -> JSONResponse:
    request_id = str(uuid.uuid4())
    headers = {"request-id": request_id, "client-request-id": request.headers.get("client-request-id", request_id)}
    return JSONResponse(body, status_code=status, headers=headers, media_type=GRAPH_JSON)


async def _json_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from exc
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "The request payload must be a JSON object.")
    return body


def instrument(state: GraphState, name: str, endpoint: Endpoint, *, api: bool) -> Endpoint:
    """Count the request, then answer a planned fault or throttle (API routes) before the real handler."""

    async def wrapped(request: Request) -> Response:
        with state.lock:
            state.requests[name] += 1
        fault = state.faults.take(request.url.path)
        if fault is not None:
            code = {400: "BadRequest", 404: "NotFound", 503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(
                fault.status, "generalException")
            return graph_error_response(GraphError(fault.status, code, "Injected fault.", fault.headers), request)
        retry_after = state.take_throttle() if api else None
        if retry_after is not None:
            with state.lock:
                state.requests["throttled"] += 1
            error = GraphError(429, "TooManyRequests", "Too many requests, please retry after some time.",
                               {"Retry-After": str(retry_after)})
            return graph_error_response(error, request)
        return await endpoint(request)

    return wrapped


def _api(operation: Callable) -> Callable[[GraphState], Endpoint]:
    """Make a Graph endpoint: authenticate the bearer token, run the operation, map GraphError."""

    def factory(state: GraphState) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                caller = state.authenticate(request.headers.get("authorization"))
                return await operation(state, request, caller)
            except GraphError as error:
                return graph_error_response(error, request)

        return endpoint

    return factory


def _meeting_json(meeting: OnlineMeeting, request: Request, status: int = 200) -> JSONResponse:
    user_id = request.path_params["user_id"]
    context = f"{_origin(request)}/v1.0/$metadata#users('{user_id}')/onlineMeetings/$entity"
    return _graph_json({"@odata.context": context, **meeting.to_graph(_origin(request))}, request, status)


@_api
async def create_or_get_meeting(state: GraphState, request: Request, caller: Caller) -> Response:
    """POST .../onlineMeetings/createOrGet: 201 with a new meeting, 200 with the existing one."""
    organizer = state.authorize(caller, request.path_params["user_id"], "write")
    meeting, created = state.create_or_get(organizer, await _json_body(request))
    return _meeting_json(meeting, request, 201 if created else 200)


@_api
async def meeting_get_or_patch(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET or PATCH /users/{id}/onlineMeetings/{meeting id}."""
    operation = "write" if request.method == "PATCH" else "read"
    user = state.authorize(caller, request.path_params["user_id"], operation)
    meeting = state.find_meeting(user, request.path_params["meeting_id"])
    if request.method == "PATCH":
        meeting = state.update_meeting(meeting, await _json_body(request))
    return _meeting_json(meeting, request)


@_api
async def join_web_url(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET .../onlineMeetings/{meeting id}/getVirtualAppointmentJoinWebUrl: the patient's link."""
    if caller.is_app and state.refuse_app_only_join_link:
        raise GraphError(403, "Forbidden", "Application permissions are not supported for this API.")
    user = state.authorize(caller, request.path_params["user_id"], "joinurl")
    meeting = state.find_meeting(user, request.path_params["meeting_id"])
    origin = _origin(request)
    return _graph_json({"@odata.context": f"{origin}/v1.0/$metadata#Edm.String",
                        "value": f"{origin}/visit/{meeting.visit_token}"}, request)


def _reports_of(state: GraphState, request: Request, caller: Caller) -> tuple[OnlineMeeting, str]:
    user = state.authorize(caller, request.path_params["user_id"], "artifact")
    meeting = state.find_meeting(user, request.path_params["meeting_id"])
    context = (f"{_origin(request)}/v1.0/$metadata#users('{request.path_params['user_id']}')/onlineMeetings("
               f"'{meeting.meeting_id}')/attendanceReports")
    return meeting, context


def _find_report(meeting: OnlineMeeting, report_id: str) -> AttendanceSession:
    report = next((s for s in meeting.reports if s.report_id == report_id), None)
    if report is None:
        raise GraphError(404, "NotFound", "The attendance report could not be found.")
    return report


@_api
async def attendance_reports(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET a meeting's attendance reports (without records)."""
    meeting, context = _reports_of(state, request, caller)
    with state.lock:
        value = [report_json(s, meeting, with_records=False) for s in meeting.reports]
    return _graph_json({"@odata.context": context, "value": value}, request)


@_api
async def attendance_report(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET one attendance report, with records when $expand asks for them."""
    meeting, context = _reports_of(state, request, caller)
    expand = "attendanceRecords" in request.query_params.get("$expand", "")
    with state.lock:
        report = report_json(_find_report(meeting, request.path_params["report_id"]), meeting, expand)
    return _graph_json({"@odata.context": f"{context}/$entity", **report}, request)


@_api
async def attendance_records(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET the attendance records of one report."""
    meeting, context = _reports_of(state, request, caller)
    with state.lock:
        report = report_json(_find_report(meeting, request.path_params["report_id"]), meeting, True)
    return _graph_json({"@odata.context": f"{context}('{report['id']}')/attendanceRecords",
                        "value": report["attendanceRecords"]}, request)


@_api
async def subscribed_skus(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET /subscribedSkus of the caller's tenant, with $select ($filter is refused, as Graph does)."""
    app_roles, delegated = PERMISSIONS["directory"]
    if not caller.granted & (app_roles if caller.is_app else delegated):
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    if "$filter" in request.query_params:
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported query.")
    skus = state.skus_of(caller.tid)
    selected = [s.strip() for s in request.query_params.get("$select", "").split(",") if s.strip()]
    value = [{k: v for k, v in sku.items() if k in selected} for sku in skus] if selected else skus
    return _graph_json({"@odata.context": f"{_origin(request)}/v1.0/$metadata#subscribedSkus", "value": value},
                       request)
