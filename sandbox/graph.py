"""Microsoft Graph stand-in (meetings, virtual-appointment join URL, attendance, licences) plus Teams pages."""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sandbox.config import ENTRA_TENANT_ID, OTHER_TENANT_ID
from sandbox.entra import (
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    ORGANIZER_OID,
    Endpoint,
    EntraState,
    EntraUser,
    FaultPlan,
    InvalidAccessToken,
    no_favicon,
)

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

# Which token permissions each operation accepts: (application roles, delegated scopes).
PERMISSIONS = {
    "write": ({"OnlineMeetings.ReadWrite.All"}, {"OnlineMeetings.ReadWrite"}),
    "read": ({"OnlineMeetings.Read.All", "OnlineMeetings.ReadWrite.All"},
             {"OnlineMeetings.Read", "OnlineMeetings.ReadWrite"}),
    "joinurl": ({"VirtualAppointment.Read.All", "VirtualAppointment.ReadWrite.All"},
                {"VirtualAppointment.Read", "VirtualAppointment.ReadWrite"}),
    "artifact": ({"OnlineMeetingArtifact.Read.All"}, {"OnlineMeetingArtifact.Read.All"}),
    "directory": ({"Organization.Read.All", "Directory.Read.All"},
                  {"Organization.Read.All", "Directory.Read.All", "LicenseAssignment.Read.All"}),
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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: object, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid value for '{name}'.") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _sku(tid: str, part_number: str, sku_id: str, status: str, units: tuple[int, int], plan: str) -> dict:
    enabled, consumed = units
    return {
        "accountName": "Sandbox account", "accountId": tid, "appliesTo": "User", "capabilityStatus": status,
        "consumedUnits": consumed, "id": f"{tid}_{sku_id}",
        "prepaidUnits": {"enabled": enabled if status == "Enabled" else 0, "lockedOut": 0,
                         "suspended": enabled if status == "Suspended" else 0, "warning": 0},
        "servicePlans": [{"servicePlanId": str(uuid.uuid5(uuid.NAMESPACE_OID, plan)), "servicePlanName": plan,
                          "provisioningStatus": "Success" if status == "Enabled" else "Disabled",
                          "appliesTo": "User"}],
        "skuId": sku_id, "skuPartNumber": part_number,
        "subscriptionIds": [str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tid}:{sku_id}"))],
    }


def default_skus() -> dict[str, list[dict]]:
    """Home tenant licensed for the connector (Microsoft Cloud for Healthcare); the other tenant is not."""
    e5, healthcare, crm = ("c7df2760-2c81-4ef7-b578-5b5392b571df", "2f3b6f1e-6d0c-4b8e-9a4e-3c5d7e9f1a2b",
                           "d17b27af-3f49-4822-99f9-56a661538792")
    return {
        ENTRA_TENANT_ID: [
            _sku(ENTRA_TENANT_ID, "ENTERPRISEPREMIUM", e5, "Enabled", (25, 14), "TEAMS1"),
            _sku(ENTRA_TENANT_ID, "Microsoft_Cloud_for_Healthcare", healthcare, "Enabled", (10, 2),
                 "MICROSOFT_CLOUD_FOR_HEALTHCARE"),
        ],
        OTHER_TENANT_ID: [
            _sku(OTHER_TENANT_ID, "ENTERPRISEPREMIUM", e5, "Enabled", (25, 14), "TEAMS1"),
            _sku(OTHER_TENANT_ID, "CRMSTANDARD", crm, "Suspended", (25, 14), "CRMSTANDARD"),
        ],
    }


def _new_meeting_id(organizer_oid: str) -> tuple[str, str]:
    """(meeting id, chat thread id), shaped like Teams': base64 of '1*<organizer>*0**<thread>'."""
    thread = f"19:meeting_{secrets.token_urlsafe(36)}@thread.v2"
    raw = f"1*{organizer_oid}*0**{thread}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), thread


class GraphState:
    """Meetings, access policies, licences and the live lobby of the Graph stand-in."""

    def __init__(self, entra: EntraState, *, clock: Callable[[], float] | None = None) -> None:
        self.entra = entra
        self.lock = threading.RLock()
        self.clock = clock or (lambda: entra.clock())
        self.meetings: dict[str, OnlineMeeting] = {}
        self.access_policy_oids: set[str] = {ORGANIZER_OID}
        self.global_policy_tenants: set[str] = set()
        self.skus: dict[str, list[dict]] = default_skus()
        self.requests: Counter[str] = Counter()
        self.faults = FaultPlan()
        self._throttle_remaining = 0
        self._throttle_retry_after = 1
        self._by_external_id: dict[tuple[str, str, str], str] = {}
        self._visit_tokens: dict[str, str] = {}

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # -- steering --------------------------------------------------------------------------------

    def grant_access_policy(self, oid: str) -> None:
        """As Grant-CsApplicationAccessPolicy -Identity <oid>: the app may act for this organizer."""
        with self.lock:
            self.access_policy_oids.add(oid)

    def revoke_access_policy(self, oid: str) -> None:
        with self.lock:
            self.access_policy_oids.discard(oid)

    def grant_global_access_policy(self, tid: str) -> None:
        """As Grant-CsApplicationAccessPolicy -Global: the app may act for every user of the tenant."""
        with self.lock:
            self.global_policy_tenants.add(tid)

    def throttle_next(self, count: int, retry_after: int = 1) -> None:
        """Answer the next `count` Graph API requests with 429 and this Retry-After."""
        with self.lock:
            self._throttle_remaining, self._throttle_retry_after = count, retry_after

    def fail_next(self, path_substring: str, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next `count` requests whose path contains the substring with `status`."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.faults.add(path_substring, status, count, headers)

    def take_throttle(self) -> int | None:
        """Retry-After seconds when this request is to be throttled."""
        with self.lock:
            if self._throttle_remaining <= 0:
                return None
            self._throttle_remaining -= 1
            return self._throttle_retry_after

    # -- inspection ------------------------------------------------------------------------------

    def meeting(self, meeting_id: str) -> OnlineMeeting:
        found = self.meetings.get(meeting_id)
        if found is None:
            raise GraphError(404, "NotFound", "The online meeting could not be found.")
        return found

    def meeting_by_external_id(self, external_id: str) -> OnlineMeeting | None:
        return next((m for m in self.meetings.values() if m.external_id == external_id), None)

    def meeting_events(self, meeting_id: str) -> list[MeetingEvent]:
        with self.lock:
            return list(self.meeting(meeting_id).events)

    def visit_path(self, meeting_id: str) -> str:
        """Path of the browser (anonymous) join page of a meeting."""
        return f"/visit/{self.meeting(meeting_id).visit_token}"

    # -- Graph API -------------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller of a Graph request, or 401 InvalidAuthenticationToken."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("Access token is empty.")
        try:
            claims = self.entra.verify_access_token(token.strip())
        except InvalidAccessToken as exc:
            raise _unauthenticated(str(exc)) from exc
        if claims.get("aud") not in (GRAPH_AUDIENCE, GRAPH_APP_ID):
            raise _unauthenticated("Access token validation failure. Invalid audience.")
        return Caller(claims)

    def authorize(self, caller: Caller, user_id: str, operation: str) -> EntraUser:
        """The user named in the path, after permission and application-access-policy checks."""
        user = self._user(caller.tid, user_id)
        app_roles, delegated = PERMISSIONS[operation]
        if not caller.granted & (app_roles if caller.is_app else delegated):
            raise GraphError(403, "Forbidden", "Insufficient privileges to complete the operation.")
        if not caller.is_app and caller.claims.get("oid") != user.oid:
            raise GraphError(403, "Forbidden", "A delegated token may only act for the signed-in user.")
        if caller.is_app and not self._policy_allows(user):
            raise GraphError(403, "Unauthorized", f"App {caller.claims.get('appid')} is not authorized to "
                             f"{POLICY_ACTIONS[operation]} on behalf of user {user.oid}")
        return user

    def _policy_allows(self, user: EntraUser) -> bool:
        return user.oid in self.access_policy_oids or user.tid in self.global_policy_tenants

    def _user(self, tid: str, user_id: str) -> EntraUser:
        user = self.entra.user_by_oid(user_id) or self.entra.user_by_upn(user_id)
        if user is None or user.tid != tid:
            raise GraphError(404, "NotFound", "The user could not be found in the tenant.")
        return user

    def create_or_get(self, organizer: EntraUser, body: dict) -> tuple[OnlineMeeting, bool]:
        """The meeting of (tenant, organizer, externalId), creating it on first call; True when created."""
        external_id = body.get("externalId")
        if not isinstance(external_id, str) or not external_id:
            raise GraphError(400, "BadRequest", "The 'externalId' property is required.")
        start, end = self._requested_times(body)
        key = (organizer.tid, organizer.oid, external_id)
        with self.lock:
            existing = self._by_external_id.get(key)
            if existing is not None:
                return self.meetings[existing], False
            meeting = self._new_meeting(organizer, external_id, start, end, body)
            self.meetings[meeting.meeting_id] = meeting
            self._by_external_id[key] = meeting.meeting_id
            self._visit_tokens[meeting.visit_token] = meeting.meeting_id
        return meeting, True

    def _requested_times(self, body: dict) -> tuple[datetime, datetime]:
        """Graph's defaults: no times → now..now+1h; only a start → start+1h; end alone or before start → 400."""
        start_raw, end_raw = body.get("startDateTime"), body.get("endDateTime")
        if end_raw is not None and start_raw is None:
            raise GraphError(400, "BadRequest", "endDateTime cannot be set without startDateTime.")
        start = _parse_time(start_raw, "startDateTime") if start_raw is not None else self.now()
        end = _parse_time(end_raw, "endDateTime") if end_raw is not None else start + timedelta(hours=1)
        if end < start:
            raise GraphError(400, "BadRequest", "endDateTime must be after startDateTime.")
        return start, end

    def _new_meeting(
        self, organizer: EntraUser, external_id: str, start: datetime, end: datetime, body: dict
    ) -> OnlineMeeting:
        meeting_id, thread = _new_meeting_id(organizer.oid)
        resource = {
            "id": meeting_id, "creationDateTime": _iso(self.now()), "startDateTime": _iso(start),
            "endDateTime": _iso(end), "subject": body.get("subject"), "isBroadcast": False,
            "autoAdmittedUsers": "EveryoneInCompany", "isEntryExitAnnounced": True,
            "allowedPresenters": "everyone", "allowMeetingChat": "enabled", "allowTeamworkReactions": True,
            "allowAttendeeToEnableCamera": True, "allowAttendeeToEnableMic": True,
            "allowedLobbyAdmitters": "organizerAndCoOrganizersAndPresenters", "recordAutomatically": False,
            "videoTeleconferenceId": str(secrets.randbelow(10**10)).zfill(10), "externalId": external_id,
            "joinMeetingIdSettings": {"isPasscodeRequired": True,
                                      "joinMeetingId": str(secrets.randbelow(10**12)).zfill(12),
                                      "passcode": secrets.token_urlsafe(4)[:6]},
            "participants": {
                "organizer": {"upn": organizer.upn, "role": "presenter",
                              "identity": {"user": {"id": organizer.oid, "displayName": None,
                                                    "tenantId": organizer.tid}}},
                "attendees": _attendees(body.get("participants")), "producers": [], "contributors": [],
            },
            "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
            "audioConferencing": None,
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
        }
        return OnlineMeeting(meeting_id, organizer.tid, organizer.oid, external_id,
                             secrets.token_urlsafe(24), resource)

    def find_meeting(self, user: EntraUser, meeting_id: str) -> OnlineMeeting:
        """A meeting visible to this organizer or co-organizer, or 404."""
        meeting = self.meetings.get(meeting_id)
        if meeting is None or meeting.tid != user.tid or meeting.role_of(user.oid) not in ("organizer",
                                                                                          "coorganizer"):
            raise GraphError(404, "NotFound", "The online meeting could not be found.")
        return meeting

    def update_meeting(self, meeting: OnlineMeeting, body: dict) -> OnlineMeeting:
        """PATCH semantics: listed properties replace (lobbyBypassSettings merges), others stay."""
        updated = json.loads(json.dumps(meeting.resource))
        for name, value in body.items():
            _apply_property(updated, name, value)
        if ("startDateTime" in body) != ("endDateTime" in body):
            raise GraphError(400, "BadRequest", "startDateTime and endDateTime must be updated together.")
        if _parse_time(updated["endDateTime"], "endDateTime") < _parse_time(updated["startDateTime"], "startDateTime"):
            raise GraphError(400, "BadRequest", "endDateTime must be after startDateTime.")
        with self.lock:
            meeting.resource = updated
        return meeting

    def skus_of(self, tid: str) -> list[dict]:
        return list(self.skus.get(tid, []))

    # -- the Teams pages -------------------------------------------------------------------------

    def join_as_user(self, meeting_id: str, oid: str | None = None) -> Participant:
        """A signed-in Teams user clicks "Join now" (the organizer when `oid` is not given)."""
        with self.lock:
            meeting = self._page_meeting(meeting_id)
            user = self.entra.user_by_oid(oid or meeting.organizer_oid)
            if user is None:
                raise PageError(403, "Unknown user.")
            session = self._live_or_new_session(meeting)
            person = session.participants.setdefault(
                user.oid, Participant(user.oid, user.name, user.oid, user.tid, user.upn))
            if person.state not in ("in_meeting", "lobby"):
                self._arrive(meeting, person, bypass=self._bypasses_lobby(meeting, user))
            return person

    def join_as_visitor(self, visit_token: str, display_name: str) -> Participant:
        """An anonymous browser guest types a name and clicks "Join now"."""
        name = display_name.strip()
        if not name or len(name) > 100:
            raise PageError(400, "Type your name (up to 100 characters) to join.")
        with self.lock:
            meeting = self._visit_meeting(visit_token)
            session = self._live_or_new_session(meeting)
            person = Participant(f"guest-{secrets.token_urlsafe(9)}", name)
            session.participants[person.participant_id] = person
            self._arrive(meeting, person, bypass=self._bypasses_lobby(meeting, None))
            return person

    def admit(self, meeting_id: str, participant_id: str, admitter_oid: str | None = None) -> Participant:
        """Someone in the meeting admits a person waiting in the lobby (as allowedLobbyAdmitters permits)."""
        with self.lock:
            meeting = self._page_meeting(meeting_id)
            admitter_id = admitter_oid or meeting.organizer_oid
            session = meeting.live_session
            admitter = session.participants.get(admitter_id) if session else None
            if admitter is None or admitter.state != "in_meeting":
                raise PageError(409, "Join the meeting before admitting people.")
            if not self.can_admit(meeting, admitter_id):
                raise PageError(403, "Only organizers and co-organizers can admit people to this meeting.")
            person = session.participants.get(participant_id)
            if person is None or person.state != "lobby":
                raise PageError(404, "Nobody with that id is waiting in the lobby.")
            person.enter(self.now())
            session.started_at = session.started_at or self.now()
            self._record(meeting, "admitted", person, by=admitter_id)
            return person

    def leave(self, meeting_id: str, participant_id: str) -> None:
        """A participant leaves; when no member of the organization is left in the meeting, it ends."""
        with self.lock:
            meeting = self._page_meeting(meeting_id)
            session = meeting.live_session
            person = session.participants.get(participant_id) if session else None
            if person is None or person.state not in ("lobby", "in_meeting"):
                raise PageError(409, "Not in this meeting.")
            person.go(self.now())
            self._record(meeting, "left", person)
            if not person.anonymous and not any(
                p.state == "in_meeting" and not p.anonymous for p in session.participants.values()
            ):
                self._end(meeting)

    def leave_as_user(self, meeting_id: str, oid: str | None = None) -> str:
        """A Teams user (the organizer when `oid` is not given) clicks "Leave"; returns their participant id."""
        with self.lock:
            who = oid or self._page_meeting(meeting_id).organizer_oid
            self.leave(meeting_id, who)
            return who

    def leave_visit(self, visit_token: str, participant_id: str) -> None:
        self.leave(self._visit_meeting(visit_token).meeting_id, participant_id)

    def has_visit(self, visit_token: str) -> bool:
        return visit_token in self._visit_tokens

    def end_meeting(self, meeting_id: str) -> bool:
        """End the live session (everyone leaves, the lobby empties); True when one was running."""
        with self.lock:
            meeting = self.meeting(meeting_id)
            if meeting.live_session is None:
                return False
            self._end(meeting)
            return True

    def visitor_status(self, visit_token: str, participant_id: str) -> str:
        """lobby, admitted, left or ended, for the guest's polling page."""
        with self.lock:
            meeting = self._visit_meeting(visit_token)
            for session in reversed(meeting.sessions):
                person = session.participants.get(participant_id)
                if person is not None:
                    return {"in_meeting": "admitted"}.get(person.state, person.state)
        raise PageError(404, "Unknown participant.")

    def meeting_view(self, meeting_id: str, as_oid: str | None) -> dict:
        """What the provider's Teams page shows: your state, the lobby, who is in."""
        with self.lock:
            meeting = self._page_meeting(meeting_id)
            you_id = as_oid or meeting.organizer_oid
            session = meeting.live_session
            people = list(session.participants.values()) if session else []
            you = session.participants.get(you_id) if session else None
            now = self.now()
            return {
                "subject": meeting.resource.get("subject"),
                "startDateTime": meeting.resource["startDateTime"],
                "endDateTime": meeting.resource["endDateTime"],
                "meetingState": "active" if session else ("ended" if meeting.sessions else "notStarted"),
                "you": {"participantId": you_id, "state": you.state if you else "notJoined",
                        "canAdmit": self.can_admit(meeting, you_id)},
                "lobby": [{"participantId": p.participant_id, "displayName": p.display_name,
                           "waitingSeconds": int((now - p.lobby_since).total_seconds()) if p.lobby_since else 0}
                          for p in people if p.state == "lobby"],
                "inMeeting": [{"participantId": p.participant_id, "displayName": p.display_name}
                              for p in people if p.state == "in_meeting"],
            }

    def can_admit(self, meeting: OnlineMeeting, oid: str) -> bool:
        """Organizers and co-organizers always; presenters too unless allowedLobbyAdmitters says otherwise."""
        role = meeting.role_of(oid)
        if role in ("organizer", "coorganizer"):
            return True
        if meeting.resource.get("allowedLobbyAdmitters") == "organizerAndCoOrganizers":
            return False
        user = self.entra.user_by_oid(oid)
        presenters = meeting.resource.get("allowedPresenters")
        return user is not None and (
            presenters == "everyone"
            or (presenters == "organization" and user.tid == meeting.tid)
            or (presenters == "roleIsPresenter" and role == "presenter")
        )

    def _bypasses_lobby(self, meeting: OnlineMeeting, user: EntraUser | None) -> bool:
        """lobbyBypassSettings.scope: anonymous guests bypass only with 'everyone'."""
        scope = meeting.resource["lobbyBypassSettings"].get("scope", "organization")
        if user is None:
            return scope == "everyone"
        role = meeting.role_of(user.oid)
        if role in ("organizer", "coorganizer"):
            return True
        same_org = user.tid == meeting.tid
        return {"invited": role is not None, "organization": same_org, "organizationExcludingGuests": same_org,
                "organizationAndFederated": True, "everyone": True}.get(scope, False)

    def _arrive(self, meeting: OnlineMeeting, person: Participant, bypass: bool) -> None:
        session = meeting.live_session
        if bypass:
            person.enter(self.now())
            session.started_at = session.started_at or self.now()
            self._record(meeting, "joined", person)
        else:
            person.wait(self.now())
            self._record(meeting, "lobby_joined", person)

    def _end(self, meeting: OnlineMeeting) -> None:
        session, now = meeting.live_session, self.now()
        for person in session.participants.values():
            if person.state in ("lobby", "in_meeting"):
                person.go(now, final_state="ended")
        session.ended_at = now
        meeting.events.append(MeetingEvent(now, "ended"))

    def _record(self, meeting: OnlineMeeting, kind: str, person: Participant, by: str | None = None) -> None:
        meeting.events.append(MeetingEvent(self.now(), kind, person.participant_id, person.anonymous,
                                           person.oid, by))

    def _live_or_new_session(self, meeting: OnlineMeeting) -> AttendanceSession:
        if meeting.live_session is None:
            meeting.sessions.append(AttendanceSession(str(uuid.uuid4())))
        return meeting.live_session

    def _page_meeting(self, meeting_id: str) -> OnlineMeeting:
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            raise PageError(404, "This meeting doesn't exist.")
        return meeting

    def _visit_meeting(self, visit_token: str) -> OnlineMeeting:
        meeting_id = self._visit_tokens.get(visit_token)
        if meeting_id is None:
            raise PageError(404, "This link isn't valid.")
        return self.meetings[meeting_id]


def _unauthenticated(message: str) -> GraphError:
    challenge = (f'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",'
                 f' client_id="{GRAPH_APP_ID}"')
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})


def _attendees(participants: object) -> list[dict]:
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


def _apply_property(resource: dict, name: str, value: object) -> None:
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
        resource[name] = {**resource[name], "attendees": _attendees(value)}
    elif name in BOOLEAN_SETTINGS:
        if not isinstance(value, bool):
            raise GraphError(400, "BadRequest", f"'{name}' must be a boolean.")
        resource[name] = value
    elif name in ("subject", "startDateTime", "endDateTime"):
        resource[name] = value if name == "subject" else _iso(_parse_time(value, name))
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


def _report(session: AttendanceSession, meeting: OnlineMeeting, with_records: bool) -> dict:
    records = [_attendance_record(p, meeting) for p in session.participants.values() if p.intervals]
    report = {"id": session.report_id, "totalParticipantCount": len(records),
              "meetingStartDateTime": _iso(session.started_at), "meetingEndDateTime": _iso(session.ended_at)}
    return {**report, "attendanceRecords": records} if with_records else report


def _attendance_record(person: Participant, meeting: OnlineMeeting) -> dict:
    intervals = [{"joinDateTime": _iso(start), "leaveDateTime": _iso(end),
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


# -- HTTP: Graph API -----------------------------------------------------------------------------------

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


def _instrument(state: GraphState, name: str, endpoint: Endpoint, *, api: bool) -> Endpoint:
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
async def _create_or_get(state: GraphState, request: Request, caller: Caller) -> Response:
    organizer = state.authorize(caller, request.path_params["user_id"], "write")
    meeting, created = state.create_or_get(organizer, await _json_body(request))
    return _meeting_json(meeting, request, 201 if created else 200)


@_api
async def _meeting_get_or_patch(state: GraphState, request: Request, caller: Caller) -> Response:
    operation = "write" if request.method == "PATCH" else "read"
    user = state.authorize(caller, request.path_params["user_id"], operation)
    meeting = state.find_meeting(user, request.path_params["meeting_id"])
    if request.method == "PATCH":
        meeting = state.update_meeting(meeting, await _json_body(request))
    return _meeting_json(meeting, request)


@_api
async def _join_web_url(state: GraphState, request: Request, caller: Caller) -> Response:
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
async def _attendance_reports(state: GraphState, request: Request, caller: Caller) -> Response:
    meeting, context = _reports_of(state, request, caller)
    with state.lock:
        value = [_report(s, meeting, with_records=False) for s in meeting.reports]
    return _graph_json({"@odata.context": context, "value": value}, request)


@_api
async def _attendance_report(state: GraphState, request: Request, caller: Caller) -> Response:
    meeting, context = _reports_of(state, request, caller)
    expand = "attendanceRecords" in request.query_params.get("$expand", "")
    with state.lock:
        report = _report(_find_report(meeting, request.path_params["report_id"]), meeting, expand)
    return _graph_json({"@odata.context": f"{context}/$entity", **report}, request)


@_api
async def _attendance_records(state: GraphState, request: Request, caller: Caller) -> Response:
    meeting, context = _reports_of(state, request, caller)
    with state.lock:
        report = _report(_find_report(meeting, request.path_params["report_id"]), meeting, True)
    return _graph_json({"@odata.context": f"{context}('{report['id']}')/attendanceRecords",
                        "value": report["attendanceRecords"]}, request)


@_api
async def _subscribed_skus(state: GraphState, request: Request, caller: Caller) -> Response:
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


# -- HTTP: the Teams pages -----------------------------------------------------------------------------

_PAGE_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;margin:0;background:#f5f5f5;color:#242424}"
    "header{background:#464775;color:#fff;padding:10px 20px}main{max-width:640px;margin:24px auto;"
    "background:#fff;padding:24px;border-radius:6px;box-shadow:0 1px 4px #0002}"
    "button{background:#5b5fc7;color:#fff;border:0;border-radius:4px;padding:8px 16px;cursor:pointer}"
    "button:disabled{background:#bbb;cursor:not-allowed}.muted{color:#616161}"
    "li{margin:6px 0}.error{color:#c4314b}"
)


def _html(title: str, body: str, script: str = "", status: int = 200) -> HTMLResponse:
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
                f'content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
                f"<style>{_PAGE_STYLE}</style></head><body><header>Microsoft Teams (sandbox)</header>"
                f"<main>{body}</main><script>{script}</script></body></html>")
    return HTMLResponse(document, status_code=status)


_MEET_BODY = """
<h1>Virtual appointment</h1>
<p class="muted" id="times"></p>
<section id="prejoin"><p>Ready to join?</p><button id="join">Join now</button></section>
<section id="you-waiting" hidden><p>Someone in the meeting should let you in soon</p></section>
<section id="inmeeting" hidden><p>You're in the meeting.</p><button id="leave">Leave</button></section>
<p id="ended" hidden>This meeting has ended.</p>
<section><h2>Waiting in the lobby</h2><ul id="lobby-list"></ul><p class="muted" id="lobby-empty">Nobody is
waiting.</p></section>
<section><h2>In the meeting</h2><ul id="in-list"></ul></section>
<p class="error" id="message" role="status"></p>
"""

_MEET_SCRIPT = """
const base = location.pathname.replace(/\\/$/, '');
const as = new URLSearchParams(location.search).get('as') || '';
const q = as ? '?as=' + encodeURIComponent(as) : '';
const $ = (id) => document.getElementById(id);
async function post(path) {
  const r = await fetch(base + path + q, {method: 'POST', headers: {'content-type': 'application/json'},
                                          body: JSON.stringify({as: as || null})});
  const body = await r.json();
  $('message').textContent = r.ok ? '' : (body.error || 'Something went wrong.');
  return body;
}
function item(text, button) {
  const li = document.createElement('li');
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span);
  if (button) { li.append(' ', button); }
  return li;
}
function render(s) {
  $('times').textContent = s.startDateTime + ' to ' + s.endDateTime;
  $('prejoin').hidden = s.you.state === 'in_meeting' || s.you.state === 'lobby';
  $('you-waiting').hidden = s.you.state !== 'lobby';
  $('inmeeting').hidden = s.you.state !== 'in_meeting';
  $('ended').hidden = s.meetingState !== 'ended';
  $('lobby-list').replaceChildren(...s.lobby.map((p) => {
    const b = document.createElement('button');
    b.textContent = 'Admit';
    b.disabled = !s.you.canAdmit || s.you.state !== 'in_meeting';
    if (!s.you.canAdmit) { b.title = 'Only organizers and co-organizers can admit people.'; }
    b.onclick = () => post('/admit/' + encodeURIComponent(p.participantId)).then(refresh);
    return item(p.displayName + ' (waiting)', b);
  }));
  $('lobby-empty').hidden = s.lobby.length > 0;
  $('in-list').replaceChildren(...s.inMeeting.map((p) => item(p.displayName)));
}
async function refresh() {
  const r = await fetch(base + '/state' + q);
  if (r.ok) { render(await r.json()); }
}
$('join').onclick = () => post('/join').then(refresh);
$('leave').onclick = () => post('/leave').then(refresh);
refresh();
setInterval(refresh, 1000);
"""

_VISIT_BODY = """
<h1>Virtual appointment</h1>
<section id="prejoin">
  <p><label>Your name <input id="name" autocomplete="name" maxlength="100"></label></p>
  <p class="muted" id="devices">Camera: Sandbox camera (working) · Microphone: Sandbox microphone (working)</p>
  <button id="join">Join now</button>
</section>
<section id="lobby" hidden><p>Someone in the meeting should let you in soon</p></section>
<section id="in" hidden><p>You're in the visit</p><button id="leave">Leave</button></section>
<section id="left" hidden><p>You left the visit.</p></section>
<section id="ended" hidden><p>The visit has ended.</p></section>
<p class="error" id="error" role="alert"></p>
"""

_VISIT_SCRIPT = """
const base = location.pathname.replace(/\\/$/, '');
const $ = (id) => document.getElementById(id);
let participant = sessionStorage.getItem(base) || '';
function show(view) {
  for (const id of ['prejoin', 'lobby', 'in', 'left', 'ended']) { $(id).hidden = id !== view; }
}
async function poll() {
  if (!participant) { return; }
  const r = await fetch(base + '/status?participant=' + encodeURIComponent(participant));
  if (!r.ok) { return; }
  const s = await r.json();
  show({lobby: 'lobby', admitted: 'in', left: 'left', ended: 'ended'}[s.state] || 'prejoin');
}
async function send(path, body) {
  const r = await fetch(base + path, {method: 'POST', headers: {'content-type': 'application/json'},
                                      body: JSON.stringify(body)});
  const answer = await r.json();
  $('error').textContent = r.ok ? '' : (answer.error || 'Something went wrong.');
  return r.ok ? answer : null;
}
$('join').onclick = async () => {
  const answer = await send('/join', {displayName: $('name').value});
  if (answer) { participant = answer.participantId; sessionStorage.setItem(base, participant); poll(); }
};
$('leave').onclick = () => send('/leave', {participantId: participant}).then(poll);
poll();
setInterval(poll, 1000);
"""


async def _page_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise PageError(400, "The request body must be JSON.") from exc
    return body if isinstance(body, dict) else {}


def _page_api(action: Callable) -> Callable[[GraphState], Endpoint]:
    """Make a JSON endpoint of the pages: run the action, map PageError to {"error": ...}."""

    def factory(state: GraphState) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await action(state, request))
            except PageError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)

        return endpoint

    return factory


async def _acting_oid(request: Request) -> str | None:
    return request.query_params.get("as") or (await _page_body(request)).get("as") or None


def _participant_json(person: Participant) -> dict:
    state = {"in_meeting": "admitted"}.get(person.state, person.state) if person.anonymous else person.state
    return {"participantId": person.participant_id, "state": state}


@_page_api
async def _meet_state(state: GraphState, request: Request) -> dict:
    return state.meeting_view(request.path_params["meeting_id"], request.query_params.get("as"))


@_page_api
async def _meet_join(state: GraphState, request: Request) -> dict:
    person = state.join_as_user(request.path_params["meeting_id"], await _acting_oid(request))
    return _participant_json(person)


@_page_api
async def _meet_admit(state: GraphState, request: Request) -> dict:
    params = request.path_params
    person = state.admit(params["meeting_id"], params["participant_id"], await _acting_oid(request))
    return _participant_json(person)


@_page_api
async def _meet_leave(state: GraphState, request: Request) -> dict:
    who = state.leave_as_user(request.path_params["meeting_id"], await _acting_oid(request))
    return {"participantId": who, "state": "left"}


@_page_api
async def _visit_join(state: GraphState, request: Request) -> dict:
    name = (await _page_body(request)).get("displayName")
    person = state.join_as_visitor(request.path_params["visit_token"], name if isinstance(name, str) else "")
    return _participant_json(person)


@_page_api
async def _visit_status(state: GraphState, request: Request) -> dict:
    participant_id = request.query_params.get("participant", "")
    return {"state": state.visitor_status(request.path_params["visit_token"], participant_id)}


@_page_api
async def _visit_leave(state: GraphState, request: Request) -> dict:
    participant_id = str((await _page_body(request)).get("participantId", ""))
    state.leave_visit(request.path_params["visit_token"], participant_id)
    return {"participantId": participant_id, "state": "left"}


def _meet_page(state: GraphState) -> Endpoint:
    async def page(request: Request) -> Response:
        if request.path_params["meeting_id"] not in state.meetings:
            return _html("Microsoft Teams", "<h1>This meeting doesn't exist</h1>", status=404)
        return _html("Virtual appointment | Microsoft Teams", _MEET_BODY, _MEET_SCRIPT)

    return page


def _visit_page(state: GraphState) -> Endpoint:
    async def page(request: Request) -> Response:
        if not state.has_visit(request.path_params["visit_token"]):
            return _html("Virtual appointment", "<h1>This link isn't valid</h1>", status=404)
        return _html("Virtual appointment", _VISIT_BODY, _VISIT_SCRIPT)

    return page


def build_app(state: GraphState) -> Starlette:
    """The Graph stand-in (under /v1.0) and the Teams meeting and lobby pages, as an ASGI app."""
    meeting = "/v1.0/users/{user_id}/onlineMeetings/{meeting_id}"
    report = meeting + "/attendanceReports/{report_id}"
    api = [
        ("/v1.0/users/{user_id}/onlineMeetings/createOrGet", "createOrGet", _create_or_get, ["POST"]),
        (meeting, "onlineMeeting", _meeting_get_or_patch, ["GET", "PATCH"]),
        (meeting + "/getVirtualAppointmentJoinWebUrl", "getVirtualAppointmentJoinWebUrl", _join_web_url,
         ["GET"]),
        (meeting + "/attendanceReports", "attendanceReports", _attendance_reports, ["GET"]),
        (report, "attendanceReport", _attendance_report, ["GET"]),
        (report + "/attendanceRecords", "attendanceRecords", _attendance_records, ["GET"]),
        ("/v1.0/subscribedSkus", "subscribedSkus", _subscribed_skus, ["GET"]),
    ]
    pages = [
        ("/meet/{meeting_id}", "page:meet", _meet_page, ["GET"]),
        ("/meet/{meeting_id}/state", "meet:state", _meet_state, ["GET"]),
        ("/meet/{meeting_id}/join", "meet:join", _meet_join, ["POST"]),
        ("/meet/{meeting_id}/admit/{participant_id}", "meet:admit", _meet_admit, ["POST"]),
        ("/meet/{meeting_id}/leave", "meet:leave", _meet_leave, ["POST"]),
        ("/visit/{visit_token}", "page:visit", _visit_page, ["GET"]),
        ("/visit/{visit_token}/join", "visit:join", _visit_join, ["POST"]),
        ("/visit/{visit_token}/status", "visit:status", _visit_status, ["GET"]),
        ("/visit/{visit_token}/leave", "visit:leave", _visit_leave, ["POST"]),
    ]
    routes = [Route(p, _instrument(state, n, f(state), api=True), methods=m, name=n) for p, n, f, m in api]
    routes += [Route(p, _instrument(state, n, f(state), api=False), methods=m, name=n) for p, n, f, m in pages]
    return Starlette(routes=[*routes, Route("/favicon.ico", no_favicon)])
