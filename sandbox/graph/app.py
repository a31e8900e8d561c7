"""The Graph stand-in (Microsoft Graph plus the Teams meeting pages) as a Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from sandbox.entra import no_favicon
from sandbox.graph.api import (
    attendance_records,
    attendance_report,
    attendance_reports,
    create_or_get_meeting,
    instrument,
    join_web_url,
    meeting_get_or_patch,
    subscribed_skus,
)
from sandbox.graph.callrecords import get_call_record, list_call_records, list_sessions
from sandbox.graph.pages import (
    meet_admit,
    meet_guest,
    meet_guest_status,
    meet_join,
    meet_leave,
    meet_page,
    meet_state,
    visit_join,
    visit_leave,
    visit_page,
    visit_status,
)
from sandbox.graph.state import GraphState


def build_app(state: GraphState) -> Starlette:
    """The Graph stand-in (under /v1.0) and the Teams meeting and lobby pages, as an ASGI app."""
    meeting = "/v1.0/users/{user_id}/onlineMeetings/{meeting_id}"
    report = meeting + "/attendanceReports/{report_id}"
    api = [
        ("/v1.0/users/{user_id}/onlineMeetings/createOrGet", "createOrGet", create_or_get_meeting, ["POST"]),
        (meeting, "onlineMeeting", meeting_get_or_patch, ["GET", "PATCH"]),
        (meeting + "/getVirtualAppointmentJoinWebUrl", "getVirtualAppointmentJoinWebUrl", join_web_url,
         ["GET"]),
        (meeting + "/attendanceReports", "attendanceReports", attendance_reports, ["GET"]),
        (report, "attendanceReport", attendance_report, ["GET"]),
        (report + "/attendanceRecords", "attendanceRecords", attendance_records, ["GET"]),
        ("/v1.0/subscribedSkus", "subscribedSkus", subscribed_skus, ["GET"]),
        ("/v1.0/communications/callRecords", "callRecords", list_call_records, ["GET"]),
        ("/v1.0/communications/callRecords/{record_id}", "callRecord", get_call_record, ["GET"]),
        ("/v1.0/communications/callRecords/{record_id}/sessions", "callRecordSessions", list_sessions, ["GET"]),
    ]
    pages = [
        ("/meet/{meeting_id}", "page:meet", meet_page, ["GET"]),
        ("/meet/{meeting_id}/state", "meet:state", meet_state, ["GET"]),
        ("/meet/{meeting_id}/join", "meet:join", meet_join, ["POST"]),
        ("/meet/{meeting_id}/admit/{participant_id}", "meet:admit", meet_admit, ["POST"]),
        ("/meet/{meeting_id}/leave", "meet:leave", meet_leave, ["POST"]),
        ("/meet/{meeting_id}/guest", "meet:guest", meet_guest, ["POST"]),
        ("/meet/{meeting_id}/guest/status", "meet:guest-status", meet_guest_status, ["GET"]),
        ("/visit/{visit_token}", "page:visit", visit_page, ["GET"]),
        ("/visit/{visit_token}/join", "visit:join", visit_join, ["POST"]),
        ("/visit/{visit_token}/status", "visit:status", visit_status, ["GET"]),
        ("/visit/{visit_token}/leave", "visit:leave", visit_leave, ["POST"]),
    ]
    routes = [Route(p, instrument(state, n, f(state), api=True), methods=m, name=n) for p, n, f, m in api]
    routes += [Route(p, instrument(state, n, f(state), api=False), methods=m, name=n) for p, n, f, m in pages]
    return Starlette(routes=[*routes, Route("/favicon.ico", no_favicon)])
