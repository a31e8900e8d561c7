"""One Teams meeting per appointment: createOrGet under the neutral organizer, provider as co-organizer."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from shared.cache import TtlCache
from shared.errors import Conflict
from shared.fhir import Appointment
from shared.microsoft.graph import GraphClient, VirtualAppointmentLinkRefused
from shared.storage.config import ConfigRepository, FhirEndpoint, JoinLinkChoice
from shared.tokens import sealer

log = logging.getLogger("connector")

SUBJECT = "Virtual appointment"  # neutral: never a name, a reason or an id
SETTINGS: dict[str, Any] = {
    "lobbyBypassSettings": {"scope": "organization", "isDialInBypassEnabled": False},
    "allowedLobbyAdmitters": "organizerAndCoOrganizers",
    "allowMeetingChat": "limited",
    "allowedPresenters": "organizer",
    "isEntryExitAnnounced": False,
}


class Meeting(BaseModel):
    id: str
    join_web_url: str
    organizer: str


def external_id(endpoint: FhirEndpoint, appointment_id: str) -> str:
    """Keyed, so the meeting's id reveals nothing about the appointment."""
    return sealer().keyed_hash("meeting", endpoint.id, appointment_id)


def _co_organizers(meeting: dict[str, Any]) -> set[str]:
    attendees = (meeting.get("participants") or {}).get("attendees") or []
    return {
        a.get("identity", {}).get("user", {}).get("id", "") for a in attendees if a.get("role") == "coorganizer"
    }


def _needs_settings(meeting: dict[str, Any]) -> bool:
    return any(meeting.get(name) != value for name, value in SETTINGS.items() if name != "isEntryExitAnnounced")


def ensure_meeting(graph: GraphClient, endpoint: FhirEndpoint, appointment: Appointment,
                   co_organizer_oid: str | None = None) -> Meeting:
    """The appointment's meeting, created on first use, with lobby and chat settings and the co-organizer."""
    if not endpoint.organizer:
        raise Conflict("No Teams organizer account is configured for this Cerner environment.",
                       next_step="Ask your administrator to set the organizer account in the portal.")
    start = appointment.start or datetime.now(UTC)
    end = appointment.end if appointment.end and appointment.end > start else start + timedelta(hours=1)
    created, meeting = graph.create_or_get_meeting(endpoint.organizer, {
        "externalId": external_id(endpoint, appointment.id),
        "subject": SUBJECT,
        "startDateTime": start.isoformat(),
        "endDateTime": end.isoformat(),
    })
    co_organizers = _co_organizers(meeting)
    missing = bool(co_organizer_oid) and co_organizer_oid not in co_organizers
    # Skip the PATCH on the warm path: settings stick, and the provider is already co-organizer.
    if created or missing or _needs_settings(meeting):
        attendees = [{"identity": {"user": {"id": oid}}, "role": "coorganizer"}
                     for oid in sorted(co_organizers | ({co_organizer_oid} if co_organizer_oid else set()))]
        meeting = graph.update_meeting(endpoint.organizer, meeting["id"], {
            **SETTINGS, "participants": {"attendees": attendees},
        }) or meeting
    return Meeting(id=meeting["id"], join_web_url=meeting["joinWebUrl"], organizer=endpoint.organizer)


_join_urls: TtlCache[str] = TtlCache(6 * 3600)

# How long an endpoint's patients keep the meeting link after Graph refused the virtual-appointment one: no
# failed call on every tap, and a tenant whose permission is fixed gets the virtual-appointment link back.
MEETING_LINK_MEMORY = timedelta(hours=6)


class JoinLinkMemory:
    """Per endpoint: whether Graph recently refused the virtual-appointment link (kept in the config table)."""

    def __init__(self, config: ConfigRepository, tenant_id: str):
        self.config, self.tenant_id = config, tenant_id

    def remembered(self, endpoint_id: str) -> JoinLinkChoice | None:
        return self.config.join_link_choice(self.tenant_id, endpoint_id)

    @staticmethod
    def still_kept(choice: JoinLinkChoice | None, now: datetime) -> bool:
        """True while a remembered refusal is recent enough not to ask Graph again."""
        return choice is not None and now - choice.decided_at < MEETING_LINK_MEMORY

    def choose_meeting_link(self, endpoint_id: str, refusal: VirtualAppointmentLinkRefused,
                            now: datetime) -> JoinLinkChoice:
        """Remember the refusal and log it once, with a reference and no identifier."""
        choice = JoinLinkChoice(reason=refusal.message, reference=uuid.uuid4().hex[:12], decided_at=now)
        self.config.save_join_link_choice(self.tenant_id, endpoint_id, choice)
        log.warning("Graph refused the virtual-appointment join link (%s); patients get the meeting's own join "
                    "link for the next %d hours. Reference %s.", refusal.message,
                    MEETING_LINK_MEMORY.total_seconds() // 3600, choice.reference)
        return choice

    def forget(self, endpoint_id: str) -> None:
        self.config.forget_join_link_choice(self.tenant_id, endpoint_id)


def patient_join_url(graph: GraphClient, endpoint: FhirEndpoint, appointment: Appointment,
                     memory: JoinLinkMemory, now: datetime | None = None) -> str:
    """The browser join URL where the patient waits in the lobby (same meeting as the provider's).

    The virtual-appointment link when Graph gives it; else the meeting's own joinWebUrl, which also lets an
    anonymous guest join from a browser and wait in the lobby. Cached in process by the meeting's external id:
    a patient who taps the link again costs no Graph call.
    """

    def fetch() -> str:
        moment = now or datetime.now(UTC)
        meeting = ensure_meeting(graph, endpoint, appointment)
        remembered = memory.remembered(endpoint.id)
        if memory.still_kept(remembered, moment):
            return meeting.join_web_url
        try:
            url = graph.virtual_appointment_join_url(endpoint.organizer, meeting.id)
        except VirtualAppointmentLinkRefused as refusal:
            memory.choose_meeting_link(endpoint.id, refusal, moment)
            return meeting.join_web_url
        if remembered is not None:
            memory.forget(endpoint.id)  # Graph gives the link again: the portal stops showing the fallback
        return url

    return _join_urls.get(external_id(endpoint, appointment.id), fetch)
