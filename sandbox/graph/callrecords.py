"""Graph call records (/communications/callRecords): list with $filter on startDateTime, get with
$expand=sessions($expand=segments), sessions paged with @odata.nextLink, as Graph pages them."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from sandbox.graph.api import _api, _graph_json, _origin
from sandbox.graph.records import PERMISSIONS, Caller, CallRecord, GraphError, Participant
from sandbox.graph.resources import iso, parse_time
from sandbox.graph.state import GraphState

NAMESPACE = "#microsoft.graph.callRecords"
# (average jitter s, max jitter s, average loss, max loss, average round trip s, max round trip s)
GOOD_NETWORK = (0.004, 0.011, 0.002, 0.015, 0.045, 0.090)
POOR_NETWORK = (0.052, 0.140, 0.140, 0.310, 0.620, 1.200)  # beyond every CQD audio limit
FILTER_TERM = re.compile(r"\s*startDateTime\s+(ge|gt|le|lt)\s+(\S+)\s*", re.IGNORECASE)


def _authorize(caller: Caller) -> None:
    app_roles, _delegated = PERMISSIONS["callrecords"]
    if not caller.is_app or not caller.granted & app_roles:
        raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _stream(direction: str, start: datetime, end: datetime, network: tuple[float, ...]) -> dict:
    jitter, max_jitter, loss, max_loss, rtt, max_rtt = network
    return {
        "streamId": "1504545584" if direction == "callerToCallee" else "1785122252",
        "streamDirection": direction, "startDateTime": iso(start), "endDateTime": iso(end),
        "averageJitter": _duration(jitter), "maxJitter": _duration(max_jitter),
        "averageAudioNetworkJitter": _duration(jitter), "maxAudioNetworkJitter": _duration(max_jitter),
        "averagePacketLossRate": loss, "maxPacketLossRate": max_loss,
        "averageRoundTripTime": _duration(rtt), "maxRoundTripTime": _duration(max_rtt),
        "averageAudioDegradation": 2.4 if network is POOR_NETWORK else 0.3,
        "averageRatioOfConcealedSamples": 0.09 if network is POOR_NETWORK else 0.01,
        "packetUtilization": 4120, "wasMediaBypassed": False, "averageBandwidthEstimate": 9_000_000,
    }


def _person(person: Participant, organization: bool) -> dict:
    """The participant's end of a leg: identity, client and what a real record says about their device."""
    identity = ({"user": {"id": person.oid, "displayName": person.display_name, "tenantId": person.tid}}
                if person.oid else {"guest": {"id": person.participant_id, "displayName": person.display_name}})
    agent = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Teams/24295.605.3225.8804" if organization
             else "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1 TeamsWeb")
    return {"@odata.type": f"{NAMESPACE}.participantEndpoint", "identity": identity, "feedback": None,
            "userAgent": {"@odata.type": f"{NAMESPACE}.clientUserAgent", "headerValue": agent,
                          "platform": "windows" if organization else "iOS",
                          "productFamily": "teams" if organization else "teamsWeb"}}


SERVER = {"@odata.type": f"{NAMESPACE}.serviceEndpoint",
          "userAgent": {"@odata.type": f"{NAMESPACE}.serviceUserAgent", "role": "conferencing",
                        "headerValue": "RTCC/7.0.0.0 UCWA/7.0.0.0 AndroidLync/6.25.0.27 (SM-G930U Android 8.0.0)"}}


def _session(record: CallRecord, person: Participant) -> dict:
    """One participant's leg to the conference server: a session with one segment carrying audio and video."""
    start, end = person.intervals[0][0], person.intervals[-1][1] or record.session.ended_at
    organization = person.oid in record.organization_oids
    kind = "staff" if organization else "patient"
    network = POOR_NETWORK if kind in record.poor_kinds else GOOD_NETWORK
    caller = _person(person, organization)
    media = [{
        "label": label,
        "callerNetwork": {"ipAddress": "10.140.18.23", "subnet": "10.140.18.0", "connectionType": "wifi",
                          "wifiSignalStrength": 61, "linkSpeed": 300_000_000},
        "calleeNetwork": {"ipAddress": "52.114.158.12", "subnet": "52.114.158.0", "connectionType": "wired"},
        "callerDevice": {"captureDeviceName": "Microphone Array (Realtek(R) Audio)",
                         "renderDeviceName": "Speakers (Realtek(R) Audio)"},
        "calleeDevice": {},
        "streams": [_stream("callerToCallee", start, end, network), _stream("calleeToCaller", start, end, network)],
    } for label in ("main-audio", "main-video")]
    segment = {"id": f"{record.record_id[:8]}-{person.participant_id}-seg", "startDateTime": iso(start),
               "endDateTime": iso(end), "caller": caller, "callee": SERVER, "failureInfo": None, "media": media}
    return {"id": f"{record.record_id[:8]}-{person.participant_id}", "modalities": ["audio", "video"],
            "startDateTime": iso(start), "endDateTime": iso(end), "isTest": False, "caller": caller,
            "callee": SERVER, "failureInfo": None, "segments": [segment]}


def _sessions(record: CallRecord) -> list[dict]:
    return [_session(record, p) for p in record.session.participants.values() if p.intervals]


def record_json(record: CallRecord, origin: str) -> dict:
    """The callRecord's own properties (what the list returns)."""
    session = record.session
    participants = [{"id": p.oid or p.participant_id, "displayName": p.display_name}
                    for p in session.participants.values() if p.intervals]
    return {"id": record.record_id, "version": 1, "type": "groupCall", "modalities": ["audio", "video"],
            "lastModifiedDateTime": iso(session.ended_at), "startDateTime": iso(session.started_at),
            "endDateTime": iso(session.ended_at), "joinWebUrl": f"{origin}/meet/{record.meeting_id}",
            "organizer_v2": None, "participants_v2": participants}


def _page(items: list[dict], request: Request, size: int, link: str) -> tuple[list[dict], str | None]:
    """A page of items from $skiptoken, and the nextLink when more remain."""
    try:
        skip = max(int(request.query_params.get("$skiptoken", "0")), 0)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", "Invalid $skiptoken.") from exc
    more = skip + size < len(items)
    return items[skip:skip + size], (f"{link}$skiptoken={skip + size}" if more else None)


def _link_origin(state: GraphState, request: Request) -> str:
    return state.next_link_origin or _origin(request)


def _start_filter(expression: str) -> list[tuple[str, datetime]]:
    """$filter on startDateTime with ge, gt, le, lt joined by "and"; anything else is refused as Graph does."""
    terms = [FILTER_TERM.fullmatch(part) for part in re.split(r"\s+and\s+", expression, flags=re.IGNORECASE)]
    if not all(terms):
        raise GraphError(400, "BadRequest", "Invalid filter clause: only startDateTime (ge, gt, le, lt) and "
                         "participants_v2/id are supported.")
    return [(t.group(1).lower(), parse_time(t.group(2).strip("'"), "startDateTime")) for t in terms]


def _matches(start: datetime, terms: list[tuple[str, datetime]]) -> bool:
    tests = {"ge": start.__ge__, "gt": start.__gt__, "le": start.__le__, "lt": start.__lt__}
    return all(tests[op](moment) for op, moment in terms)


def _find(state: GraphState, caller: Caller, record_id: str) -> CallRecord:
    record = state.call_records.get(record_id)
    if record is None or record.tid != caller.tid:
        raise GraphError(404, "NotFound", "The call record could not be found.")
    return record


@_api
async def list_call_records(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET /communications/callRecords: the tenant's records, without sessions, paged."""
    _authorize(caller)
    terms = _start_filter(request.query_params["$filter"]) if "$filter" in request.query_params else []
    origin = _origin(request)
    with state.lock:
        records = sorted((r for r in state.call_records.values() if r.tid == caller.tid
                          and _matches(r.session.started_at, terms)), key=lambda r: r.session.started_at)
        items = [record_json(r, origin) for r in records]
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"])
    page, next_link = _page(items, request, state.call_records_page_size,
                            f"{_link_origin(state, request)}/v1.0/communications/callRecords?"
                            f"{query + '&' if query else ''}")
    body = {"@odata.context": f"{origin}/v1.0/$metadata#communications/callRecords", "value": page}
    return _graph_json({**body, "@odata.nextLink": next_link} if next_link else body, request)


@_api
async def get_call_record(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET /communications/callRecords/{id}, with the first page of sessions (and their segments) when expanded."""
    _authorize(caller)
    origin = _origin(request)
    expand = request.query_params.get("$expand", "").replace(" ", "")
    with state.lock:
        record = _find(state, caller, request.path_params["record_id"])
        body = {"@odata.context": f"{origin}/v1.0/$metadata#communications/callRecords/$entity",
                **record_json(record, origin)}
        if expand.startswith("sessions"):
            sessions = _sessions(record)
            if "segments" not in expand:
                sessions = [{k: v for k, v in s.items() if k != "segments"} for s in sessions]
            page, next_link = _page(sessions, request, state.sessions_page_size,
                                    f"{_link_origin(state, request)}/v1.0/communications/callRecords/"
                                    f"{record.record_id}/sessions?$expand=segments&")
            body["sessions"] = page
            if next_link:
                body["sessions@odata.nextLink"] = next_link
    return _graph_json(body, request)


@_api
async def list_sessions(state: GraphState, request: Request, caller: Caller) -> Response:
    """GET /communications/callRecords/{id}/sessions (the nextLink of an expanded record), paged."""
    _authorize(caller)
    origin = _origin(request)
    with state.lock:
        record = _find(state, caller, request.path_params["record_id"])
        sessions = _sessions(record)
    if "segments" not in request.query_params.get("$expand", ""):
        sessions = [{k: v for k, v in s.items() if k != "segments"} for s in sessions]
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "$skiptoken"])
    page, next_link = _page(sessions, request, state.sessions_page_size,
                            f"{_link_origin(state, request)}/v1.0/communications/callRecords/{record.record_id}/"
                            f"sessions?{query + '&' if query else ''}")
    body = {"@odata.context": f"{origin}/v1.0/$metadata#communications/callRecords('{record.record_id}')/sessions",
            "value": page}
    return _graph_json({**body, "@odata.nextLink": next_link} if next_link else body, request)
