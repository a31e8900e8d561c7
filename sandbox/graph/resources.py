"""Meeting resources as Graph shapes and validates them: ids, times, attendees, PATCHed properties, reports."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from sandbox.entra import GRAPH_APP_ID
from sandbox.graph.records import (
    ALLOWED_PRESENTERS,
    ATTENDEE_ROLES,
    BOOLEAN_SETTINGS,
    LOBBY_ADMITTERS,
    LOBBY_SCOPES,
    MEETING_CHAT,
    READ_ONLY,
    AttendanceSession,
    GraphError,
    OnlineMeeting,
    Participant,
)


def iso(moment: datetime) -> str:
    """A Graph timestamp: UTC with fractional seconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object, name: str) -> datetime:
    """A request's date-time (UTC when it has no zone), or a 400."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value for '{name}'.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def new_meeting_id(organizer_oid: str) -> tuple[str, str]:
    """(meeting id, chat thread id), shaped like Teams': base64 of '1*<organizer>*0**<thread>'."""
    thread = f"19:meeting_{secrets.token_urlsafe(36)}@thread.v2"
    raw = f"1*{organizer_oid}*0**{thread}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), thread


def unauthenticated(message: str) -> GraphError:
    """A 401 with the WWW-Authenticate challenge Graph sends."""
    challenge = (f'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",'
                 f' client_id="{GRAPH_APP_ID}"')
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})


def parse_attendees(participants: object) -> list[dict]:
    """Normalise participants.attendees of a request: identity.user.id, upn, role (attendee by default)."""
    if participants is None:
        return []
    attendees = participants.get("attendees", []) if isinstance(participants, dict) else None
    if not isinstance(attendees, list):
        raise GraphError(400, "BadRequest", "participants.attendees must be a list.")
    return [_attendee(item) for item in attendees]


def _attendee(item: object) -> dict:
    user_id = item.get("identity", {}).get("user", {}).get("id") if isinstance(item, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise GraphError(400, "BadRequest", "Each attendee needs identity.user.id.")
    role = item.get("role") or "attendee"
    if role not in ATTENDEE_ROLES:
        raise GraphError(400, "BadRequest", f"Invalid attendee role '{role}'.")
    return {"upn": item.get("upn"), "role": role, "identity": {"user": {"id": user_id}}}


def apply_property(resource: dict, name: str, value: object) -> None:
    """Set one PATCHed property on a copy of the meeting, validating it as Graph does."""
    enums = {"allowedPresenters": ALLOWED_PRESENTERS, "allowMeetingChat": MEETING_CHAT,
             "allowedLobbyAdmitters": LOBBY_ADMITTERS}
    if name in READ_ONLY:
        return
    if name in enums:
        resource[name] = _enum(name, value, enums[name])
    elif name == "lobbyBypassSettings":
        resource[name] = _lobby_settings(resource[name], value)
    elif name == "participants":
        resource[name] = {**resource[name], "attendees": parse_attendees(value)}
    elif name in BOOLEAN_SETTINGS:
        if not isinstance(value, bool):
            raise GraphError(400, "BadRequest", f"'{name}' must be a boolean.")
        resource[name] = value
    elif name in ("subject", "startDateTime", "endDateTime"):
        resource[name] = value if name == "subject" else iso(parse_time(value, name))
    elif name == "joinMeetingIdSettings":
        raise GraphError(400, "BadRequest", "joinMeetingIdSettings cannot be modified after creation.")
    else:
        raise GraphError(400, "BadRequest", f"Property '{name}' does not exist on type "
                         "'microsoft.graph.onlineMeeting'.")


def _enum(name: str, value: object, allowed: Iterable[str]) -> str:
    if value not in allowed:
        raise GraphError(400, "BadRequest", f"Requested value '{value}' was not found for '{name}'.")
    return str(value)


def _lobby_settings(current: dict, value: object) -> dict:
    if not isinstance(value, dict):
        raise GraphError(400, "BadRequest", "lobbyBypassSettings must be an object.")
    merged = {**current, **value}
    _enum("lobbyBypassSettings.scope", merged.get("scope"), LOBBY_SCOPES)
    if not isinstance(merged.get("isDialInBypassEnabled", False), bool):
        raise GraphError(400, "BadRequest", "isDialInBypassEnabled must be a boolean.")
    return merged


def report_json(session: AttendanceSession, meeting: OnlineMeeting, with_records: bool) -> dict:
    """An attendance report as Graph returns it, with or without its records."""
    records = [_attendance_record(p, meeting) for p in session.participants.values() if p.intervals]
    report = {"id": session.report_id, "totalParticipantCount": len(records),
              "meetingStartDateTime": iso(session.started_at), "meetingEndDateTime": iso(session.ended_at)}
    return {**report, "attendanceRecords": records} if with_records else report


def _attendance_record(person: Participant, meeting: OnlineMeeting) -> dict:
    intervals = [{"joinDateTime": iso(start), "leaveDateTime": iso(end),
                  "durationInSeconds": int((end - start).total_seconds())} for start, end in person.intervals]
    role = {"organizer": "Organizer", "coorganizer": "Presenter", "presenter": "Presenter"}.get(
        meeting.role_of(person.oid) or "", "Attendee")
    return {
        "id": person.participant_id, "emailAddress": person.upn, "role": role,
        "totalAttendanceInSeconds": sum(i["durationInSeconds"] for i in intervals),
        "identity": {"id": person.oid or person.participant_id, "displayName": person.display_name,
                     "tenantId": person.tid},
        "attendanceIntervals": intervals, "registrationId": None, "externalRegistrationInformation": None,
    }
