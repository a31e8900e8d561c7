"""The provider's visit page: the appointment read just in time, its Teams meeting, patient status."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import Gone, NotSignedIn
from shared.fhir import FhirClient
from shared.launch import RELAUNCH, LaunchExpired, NotConfigured
from shared.microsoft.graph import GraphClient
from shared.microsoft.meetings import ensure_meeting
from shared.pages import render
from shared.settings import get_settings
from shared.storage.accounts import default_accounts
from shared.storage.config import ConfigRepository
from shared.tokens import TokenExpired, TokenInvalid, sealer


def open_visit(visit_ref: str, session_cookie: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(visit, provider session) when both are genuine and belong together."""
    try:
        visit = sealer().open_json(visit_ref, "visit")
    except (TokenExpired, TokenInvalid) as exc:
        raise LaunchExpired("This visit link is no longer valid.", next_step=RELAUNCH) from exc
    if not session_cookie:
        raise NotSignedIn("Your Cerner session has ended.", next_step=RELAUNCH)
    try:
        session = sealer().open_json(session_cookie, "ehr-session")
    except (TokenExpired, TokenInvalid) as exc:
        raise NotSignedIn("Your Cerner session has ended.", next_step=RELAUNCH) from exc
    if (session["tenant"], session["endpoint"]) != (visit["tenant"], visit["endpoint"]):
        raise NotSignedIn("This visit belongs to another Cerner session.", next_step=RELAUNCH)
    return visit, session


def provider_page(visit_ref: str, session_cookie: str | None) -> str:
    """Render the visit page: time, type, patient display name (never stored), join links, status area."""
    visit, session = open_visit(visit_ref, session_cookie)
    endpoint = ConfigRepository(default_accounts()).endpoint(visit["tenant"], visit["endpoint"])
    if endpoint is None:
        raise NotConfigured("This Cerner environment was removed from the configuration.", next_step=RELAUNCH)
    appointment = FhirClient(endpoint.base_url, session["token"]).appointment(visit["appointment"])
    if appointment.cancelled:
        raise Gone("This appointment was cancelled in Cerner.",
                   next_step="Check the schedule in PowerChart; nothing was sent to the patient.")
    meeting = ensure_meeting(GraphClient(visit["tenant"]), endpoint, appointment, session["oid"])
    zone = ZoneInfo(endpoint.time_zone)
    return render(
        "provider.html",
        appointment=appointment,
        local_start=appointment.start.astimezone(zone) if appointment.start else None,
        local_end=appointment.end.astimezone(zone) if appointment.end else None,
        join_teams_url=meeting.join_web_url,
        join_browser_url=meeting.join_web_url + ("&" if "?" in meeting.join_web_url else "?") + "webjoin=true",
        visit_ref=visit_ref,
        environment=endpoint.environment,
        lobby_alert_minutes=get_settings().lobby_alert_minutes,
    )
