"""State of the Graph stand-in: meetings, access policies, licences, the live lobby and planned faults."""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sandbox.entra import (
    GRAPH_APP_ID,
    GRAPH_AUDIENCE,
    ORGANIZER_OID,
    EntraState,
    EntraUser,
    FaultPlan,
    InvalidAccessToken,
)
from sandbox.graph.records import (
    PERMISSIONS,
    POLICY_ACTIONS,
    AttendanceSession,
    Caller,
    CallRecord,
    GraphError,
    MeetingEvent,
    OnlineMeeting,
    PageError,
    Participant,
)
from sandbox.graph.resources import apply_property, iso, new_meeting_id, parse_attendees, parse_time, unauthenticated
from sandbox.graph.skus import default_skus


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
        # Microsoft's docs disagree on app-only access to getVirtualAppointmentJoinWebUrl; the current Learn page
        # says "Application: Not supported". True answers app tokens as that page says Graph does (403).
        self.refuse_app_only_join_link = False
        self._throttle_remaining = 0
        self._throttle_retry_after = 1
        self._by_external_id: dict[tuple[str, str, str], str] = {}
        self._visit_tokens: dict[str, str] = {}
        # Call records, written when a meeting session ends; Graph pages sessions by 60 (tests page smaller).
        self.call_records: dict[str, CallRecord] = {}
        self.poor_networks: dict[str, set[str]] = {}
        self.call_records_page_size = 60
        self.sessions_page_size = 60
        self.next_link_origin: str | None = None  # an attack: nextLinks pointing at another host

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

    def poor_network(self, meeting_id: str, kind: str = "patient") -> None:
        """Make the calls of this meeting go badly for "staff" or "patient" (their streams cross CQD's limits)."""
        with self.lock:
            self.poor_networks.setdefault(meeting_id, set()).add(kind)

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
            raise unauthenticated("Access token is empty.")
        try:
            claims = self.entra.verify_access_token(token.strip())
        except InvalidAccessToken as exc:
            raise unauthenticated(str(exc)) from exc
        if claims.get("aud") not in (GRAPH_AUDIENCE, GRAPH_APP_ID):
            raise unauthenticated("Access token validation failure. Invalid audience.")
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
        start = parse_time(start_raw, "startDateTime") if start_raw is not None else self.now()
        end = parse_time(end_raw, "endDateTime") if end_raw is not None else start + timedelta(hours=1)
        if end < start:
            raise GraphError(400, "BadRequest", "endDateTime must be after startDateTime.")
        return start, end

    def _new_meeting(
        self, organizer: EntraUser, external_id: str, start: datetime, end: datetime, body: dict
    ) -> OnlineMeeting:
        meeting_id, thread = new_meeting_id(organizer.oid)
        resource = {
            "id": meeting_id, "creationDateTime": iso(self.now()), "startDateTime": iso(start),
            "endDateTime": iso(end), "subject": body.get("subject"), "isBroadcast": False,
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
                "attendees": parse_attendees(body.get("participants")), "producers": [], "contributors": [],
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
            apply_property(updated, name, value)
        if ("startDateTime" in body) != ("endDateTime" in body):
            raise GraphError(400, "BadRequest", "startDateTime and endDateTime must be updated together.")
        if parse_time(updated["endDateTime"], "endDateTime") < parse_time(updated["startDateTime"], "startDateTime"):
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
        """An anonymous browser guest types a name and clicks "Join now" on the virtual-appointment page."""
        with self.lock:
            return self._join_anonymously(self._visit_meeting(visit_token), display_name)

    def join_as_guest(self, meeting_id: str, display_name: str) -> Participant:
        """An anonymous guest opens the meeting's joinWebUrl, chooses to continue in the browser, types a name."""
        with self.lock:
            return self._join_anonymously(self._page_meeting(meeting_id), display_name)

    def guest_status(self, meeting_id: str, participant_id: str) -> str:
        """lobby, admitted, left or ended, for a guest of the meeting's own join page."""
        with self.lock:
            return self.visitor_status(self._page_meeting(meeting_id).visit_token, participant_id)

    def _join_anonymously(self, meeting: OnlineMeeting, display_name: str) -> Participant:
        name = display_name.strip()
        if not name or len(name) > 100:
            raise PageError(400, "Type your name (up to 100 characters) to join.")
        with self.lock:
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
        if session.started_at is not None:
            record_id = str(uuid.uuid4())
            members = frozenset(p.oid for p in session.participants.values() if p.oid and p.tid == meeting.tid)
            self.call_records[record_id] = CallRecord(
                record_id, meeting.meeting_id, meeting.tid, session,
                frozenset(self.poor_networks.get(meeting.meeting_id, ())), members)

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
