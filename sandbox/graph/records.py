"""Graph's vocabulary and records: meeting-setting values, permissions, errors, meetings, callers and attendance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
LOBBY_SCOPES = frozenset({"organizer", "organization", "organizationAndFederated", "everyone", "invited",
                          "organizationExcludingGuests", "unknownFutureValue"})
ALLOWED_PRESENTERS = frozenset({"everyone", "organization", "roleIsPresenter", "organizer", "unknownFutureValue"})
MEETING_CHAT = frozenset({"enabled", "disabled", "limited", "unknownFutureValue"})
LOBBY_ADMITTERS = frozenset({"organizerAndCoOrganizersAndPresenters", "organizerAndCoOrganizers",
                             "unknownFutureValue"})
ATTENDEE_ROLES = frozenset({"attendee", "presenter", "coorganizer", "producer", "unknownFutureValue"})
BOOLEAN_SETTINGS = frozenset({"isEntryExitAnnounced", "recordAutomatically", "allowTeamworkReactions",
                              "allowAttendeeToEnableCamera", "allowAttendeeToEnableMic", "isBroadcast"})
READ_ONLY = frozenset({"id", "creationDateTime", "joinWebUrl", "externalId", "chatInfo", "videoTeleconferenceId",
                       "audioConferencing", "joinInformation", "autoAdmittedUsers", "@odata.context"})

# Which token permissions each operation accepts, (application roles, delegated scopes), as the Graph v1.0
# reference pages list them (README, "Graph permissions"): onlinemeeting-createorget and onlinemeeting-update
# (write), virtualappointment-getvirtualappointmentjoinweburl (joinurl), meetingattendancereport-list/-get
# (artifact), subscribedsku-list (directory).
_DIRECTORY_READ = {"LicenseAssignment.Read.All", "Organization.Read.All", "Organization.ReadWrite.All",
                   "Directory.Read.All", "Directory.ReadWrite.All"}
PERMISSIONS = {
    "write": ({"OnlineMeetings.ReadWrite.All"}, {"OnlineMeetings.ReadWrite"}),
    "read": ({"OnlineMeetings.Read.All", "OnlineMeetings.ReadWrite.All"},
             {"OnlineMeetings.Read", "OnlineMeetings.ReadWrite"}),
    "joinurl": ({"VirtualAppointment.Read.All", "VirtualAppointment.ReadWrite.All"},
                {"VirtualAppointment.Read", "VirtualAppointment.ReadWrite", "OnlineMeetings.Read",
                 "OnlineMeetings.ReadWrite"}),
    "artifact": ({"OnlineMeetingArtifact.Read.All"}, {"OnlineMeetingArtifact.Read.All"}),
    # Call records have no delegated permission.
    "callrecords": ({"CallRecords.Read.All"}, set()),
    "directory": (_DIRECTORY_READ, _DIRECTORY_READ),
}
POLICY_ACTIONS = {"write": "Create meeting", "read": "Get meeting", "joinurl": "Get meeting",
                  "artifact": "Get meeting artifact"}


class GraphError(Exception):
    """An error answered in Graph's shape: {"error": {"code", "message", "innerError"}}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


class PageError(Exception):
    """An error of the Teams pages' small JSON API: {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Caller:
    """Who called Graph, from the verified access token."""

    claims: dict

    @property
    def tid(self) -> str:
        return self.claims["tid"]

    @property
    def is_app(self) -> bool:
        return self.claims.get("idtyp") == "app" or "scp" not in self.claims

    @property
    def granted(self) -> set[str]:
        return set(self.claims.get("roles", [])) if self.is_app else set(self.claims.get("scp", "").split())


@dataclass
class Participant:
    """Someone in a meeting session or its lobby: a directory user, or an anonymous browser guest (oid None)."""

    participant_id: str
    display_name: str
    oid: str | None = None
    tid: str | None = None
    upn: str | None = None
    state: str = "new"  # lobby | in_meeting | left | ended
    lobby_since: datetime | None = None
    intervals: list[list[datetime | None]] = field(default_factory=list)

    @property
    def anonymous(self) -> bool:
        return self.oid is None

    def enter(self, now: datetime) -> None:
        self.state, self.lobby_since = "in_meeting", None
        self.intervals.append([now, None])

    def wait(self, now: datetime) -> None:
        self.state, self.lobby_since = "lobby", now

    def go(self, now: datetime, final_state: str = "left") -> None:
        if self.intervals and self.intervals[-1][1] is None:
            self.intervals[-1][1] = now
        self.state, self.lobby_since = final_state, None


@dataclass(frozen=True)
class MeetingEvent:
    """A timestamped happening in a meeting: lobby_joined, joined, admitted, left, ended."""

    at: datetime
    kind: str
    participant_id: str | None = None
    anonymous: bool = False
    oid: str | None = None
    by: str | None = None


@dataclass
class AttendanceSession:
    """One run of a meeting, from the first person in to its end; an ended one is an attendance report."""

    report_id: str
    participants: dict[str, Participant] = field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class CallRecord:
    """The record Teams writes once a meeting session ends: who was in it and how their media went."""

    record_id: str
    meeting_id: str
    tid: str
    session: AttendanceSession
    poor_kinds: frozenset[str]  # "staff" and/or "patient": whose network was bad in this call
    organization_oids: frozenset[str]


@dataclass
class OnlineMeeting:
    """A meeting created through createOrGet, with its live sessions and what happened in them."""

    meeting_id: str
    tid: str
    organizer_oid: str
    external_id: str
    visit_token: str
    resource: dict
    sessions: list[AttendanceSession] = field(default_factory=list)
    events: list[MeetingEvent] = field(default_factory=list)

    @property
    def live_session(self) -> AttendanceSession | None:
        return self.sessions[-1] if self.sessions and self.sessions[-1].ended_at is None else None

    @property
    def reports(self) -> list[AttendanceSession]:
        return [s for s in self.sessions if s.ended_at is not None and s.started_at is not None]

    def role_of(self, oid: str | None) -> str | None:
        """organizer, coorganizer, presenter, attendee for invited users; None for everyone else."""
        if oid is None:
            return None
        if oid == self.organizer_oid:
            return "organizer"
        for attendee in self.resource["participants"]["attendees"]:
            if attendee.get("identity", {}).get("user", {}).get("id") == oid:
                return attendee.get("role") or "attendee"
        return None

    def to_graph(self, origin: str) -> dict:
        return {**self.resource, "joinWebUrl": f"{origin}/meet/{self.meeting_id}"}
