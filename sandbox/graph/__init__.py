"""Microsoft Graph stand-in (meetings, virtual-appointment join URL, attendance, licences) plus Teams pages."""

from sandbox.graph.api import graph_error_response
from sandbox.graph.app import build_app
from sandbox.graph.records import (
    ALLOWED_PRESENTERS,
    ATTENDEE_ROLES,
    BOOLEAN_SETTINGS,
    GRAPH_JSON,
    LOBBY_ADMITTERS,
    LOBBY_SCOPES,
    MEETING_CHAT,
    PERMISSIONS,
    POLICY_ACTIONS,
    READ_ONLY,
    AttendanceSession,
    Caller,
    GraphError,
    MeetingEvent,
    OnlineMeeting,
    PageError,
    Participant,
)
from sandbox.graph.skus import default_skus
from sandbox.graph.state import GraphState

__all__ = [
    "ALLOWED_PRESENTERS", "ATTENDEE_ROLES", "BOOLEAN_SETTINGS", "GRAPH_JSON", "LOBBY_ADMITTERS", "LOBBY_SCOPES",
    "MEETING_CHAT", "PERMISSIONS", "POLICY_ACTIONS", "READ_ONLY", "AttendanceSession", "Caller", "GraphError",
    "GraphState", "MeetingEvent", "OnlineMeeting", "PageError", "Participant", "build_app", "default_skus",
    "graph_error_response",
]
