"""The provider's visit page: the appointment read just in time, its Teams meeting, patient status."""

from __future__ import annotations

import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.csrf import csrf_token, require_csrf_token, require_same_origin
from shared.email.link import email_link, emails_instead
from shared.errors import Conflict, ConnectorError, Forbidden, Gone, InvalidInput, NotSignedIn
from shared.fhir import FhirClient
from shared.join import link_for, visit_keys
from shared.launch import RELAUNCH, VISIT_TTL_SECONDS, LaunchExpired, NotConfigured
from shared.microsoft.graph import GraphClient
from shared.microsoft.meetings import ensure_meeting
from shared.notifications.optouts import OptOutStore, phone_keys
from shared.pages import render
from shared.settings import Region, get_settings
from shared.sms.acs import send_sms
from shared.sms.phone import masked, reachable_from_toll_free, to_e164
from shared.sms.texts import pick_language, render_sms
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.ledger import LedgerRepository, day_partition, message_tag
from shared.storage.messages import MessageLog
from shared.storage.usage import UsageRepository
from shared.tokens import TokenExpired, TokenInvalid, sealer

RESEND_AFTER = timedelta(minutes=1)
SENT_OR_SENDING = ("sending", "sent", "delivered")
VISIT_TTL = VISIT_TTL_SECONDS


def open_visit(visit_ref: str, session_cookie: str | None,
               purpose: str = "visit") -> tuple[dict[str, Any], dict[str, Any]]:
    """(visit, provider session) when both are genuine and belong together."""
    try:
        visit = sealer().open_json(visit_ref, purpose)
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
    if not visit.get("ehr_user"):  # sealed before visits named their provider: launch again
        raise LaunchExpired("This visit link is no longer valid.", next_step=RELAUNCH)
    if visit["ehr_user"] != session.get("ehr_user"):
        raise Forbidden("This visit was opened by another provider.",
                        next_step="Open your own visit from PowerChart: click Teams on the appointment.")
    return visit, session


def csrf_binding(visit: dict[str, Any]) -> dict[str, str]:
    """What a visit page's CSRF token is issued for: the provider and the appointment."""
    return {"ehr_user": visit["ehr_user"], "appointment": visit["appointment"], "endpoint": visit["endpoint"]}


@dataclass(frozen=True)
class Page:
    """A rendered page and the Content-Security-Policy that lets only its own script run."""

    html: str
    content_security_policy: str


def provider_page(visit_ref: str, session_cookie: str | None) -> Page:
    """Render the visit page: time, type, patient display name (never stored), join links, status area."""
    context = visit_context(visit_ref, session_cookie)
    visit, endpoint = context.visit, context.endpoint
    appointment = FhirClient(endpoint.base_url, context.session["token"]).appointment(visit["appointment"])
    if appointment.cancelled:
        raise Gone("This appointment was cancelled in Cerner.",
                   next_step="Check the schedule in PowerChart; nothing was sent to the patient.")
    usage, keys = UsageRepository(context.accounts), visit_keys(endpoint.id, appointment.id)
    scheduled_start, opened_at = appointment.start or datetime.now(UTC), datetime.now(UTC)
    # The visit's usage row is read while Graph answers: the two do not depend on each other.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-read") as pool:
        found = pool.submit(usage.find, context.region, endpoint.id, keys, scheduled_start)
        meeting = ensure_meeting(GraphClient(visit["tenant"]), endpoint, appointment, context.session["oid"])
        usage.record(
            context.region, endpoint.id, keys, scheduled_start,
            {"provider_joined_at": opened_at, "meeting_id": meeting.id, "scheduled_end": appointment.end,
             "department": appointment.location_ids[0] if appointment.location_ids else ""},
            keep_first=("provider_joined_at",), found=found.result(),
        )
    zone = ZoneInfo(endpoint.time_zone)
    nonce = secrets.token_urlsafe(16)
    html = render(
        "provider.html",
        nonce=nonce,
        appointment=appointment,
        local_start=appointment.start.astimezone(zone) if appointment.start else None,
        local_end=appointment.end.astimezone(zone) if appointment.end else None,
        join_teams_url=meeting.join_web_url,
        join_browser_url=meeting.join_web_url + ("&" if "?" in meeting.join_web_url else "?") + "webjoin=true",
        visit_ref=visit_ref,
        status_ref=status_ref_for(visit, appointment.start),
        csrf_token=csrf_token(csrf_binding(visit), VISIT_TTL, "send-link"),
        environment=endpoint.environment,
        lobby_alert_minutes=get_settings().lobby_alert_minutes,
    )
    return Page(html, provider_page_policy(nonce))


def provider_page_policy(nonce: str) -> str:
    """Only the page's own script runs; only the hospitals in PROVIDER_FRAME_ANCESTORS may frame it."""
    ancestors = get_settings().provider_frame_ancestors or "'none'"
    return (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; connect-src 'self'; "
            f"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}")


@dataclass
class VisitContext:
    """A provider's visit with its session, the endpoint's configuration and the organization's region."""

    visit: dict[str, Any]
    session: dict[str, Any]
    accounts: TableAccounts
    config: ConfigRepository
    endpoint: FhirEndpoint
    region: Region


def endpoint_of(config: ConfigRepository, tenant_id: str, endpoint_id: str) -> FhirEndpoint:
    endpoint = config.endpoint(tenant_id, endpoint_id)
    if endpoint is None:
        raise NotConfigured("This Cerner environment was removed from the configuration.", next_step=RELAUNCH)
    return endpoint


def visit_context(visit_ref: str, session_cookie: str | None) -> VisitContext:
    visit, session = open_visit(visit_ref, session_cookie)
    accounts = default_accounts()
    config = ConfigRepository(accounts, reuse_recent_reads=True)
    endpoint = endpoint_of(config, visit["tenant"], visit["endpoint"])
    return VisitContext(visit, session, accounts, config, endpoint, config.region(visit["tenant"]))


@dataclass(frozen=True)
class StateChange:
    """What a browser says about where a state-changing request came from, and the page's CSRF token."""

    origin: str | None = None
    fetch_site: str | None = None
    csrf_token: str | None = None


def send_link(visit_ref: str, session_cookie: str | None, caller: StateChange,
              now: datetime | None = None) -> dict[str, Any]:
    """Text the patient their join link once (repeated clicks within a minute send once); email it instead when
    the endpoint emails and the patient has no textable mobile."""
    now = now or datetime.now(UTC)
    require_same_origin(caller.origin, caller.fetch_site)
    context = visit_context(visit_ref, session_cookie)
    require_csrf_token(caller.csrf_token, csrf_binding(context.visit), "send-link")
    _require_consents(context)
    fhir = FhirClient(context.endpoint.base_url, context.session["token"])
    appointment = fhir.appointment(context.visit["appointment"])
    if appointment.cancelled:
        raise Gone("This appointment was cancelled in Cerner.", next_step="Nothing was sent to the patient.")
    patient = fhir.patient(appointment.patient_id)
    if emails_instead(context.endpoint, patient):
        return email_link(context.accounts, context.region, context.endpoint, appointment, patient, now)
    _require_number(context)
    mobile = _textable_mobile(context, patient.mobile)
    ledger = LedgerRepository(context.accounts)
    start = appointment.start or now
    partition = day_partition(context.endpoint.id, start)
    row, previous = _link_row(ledger, context.region, partition, context.endpoint.id, appointment.id)
    etag = _claim_link(ledger, context.region, partition, row, previous, now, appointment.end or start)
    if etag is None:  # sent (or being sent) by a click within the last minute
        return {"status": "sent", "sent_to": masked(mobile), "repeated": True}
    language = pick_language(patient.language, context.endpoint.default_language)
    text = render_sms("link", language, start.astimezone(ZoneInfo(context.endpoint.time_zone)),
                      link_for(context.endpoint, appointment))
    _send_claimed(ledger, context, partition, row, etag, mobile, text, now)
    UsageRepository(context.accounts).record(context.region, context.endpoint.id,
                                             visit_keys(context.endpoint.id, appointment.id), start, {"sms_sent": True})
    return {"status": "sent", "sent_to": masked(mobile), "repeated": False}


def _require_consents(context: VisitContext) -> None:
    if not context.config.sms_consents(context.visit["tenant"]).complete:
        raise Conflict("Text messages are not switched on for your organization.",
                       next_step="Read the link to the patient, or ask your administrator to enable SMS.")


def _require_number(context: VisitContext) -> None:
    if not context.endpoint.sms_number:
        raise Conflict("No sending phone number is linked to this Cerner environment.",
                       next_step="Ask your administrator to link a number in the portal.")


def _textable_mobile(context: VisitContext, raw: str) -> str:
    """The patient's mobile in E.164, if this sending number may text it."""
    mobile = to_e164(raw) if raw else None
    if mobile is None:
        raise InvalidInput("There is no mobile number on file for this patient.", status=422,
                           next_step="Add a mobile number in PowerChart, or give the patient the link another way.")
    if not reachable_from_toll_free(mobile):
        raise InvalidInput("This patient's mobile number is in a country this sending number cannot text.",
                           status=422, next_step="Give the patient the link another way.")
    opted_out = OptOutStore(LedgerRepository(context.accounts)).opted_out(context.region, context.endpoint.sms_number)
    if not opted_out.isdisjoint(phone_keys(mobile)):
        raise Conflict("The patient has opted out of texts from this number (they replied STOP).",
                       next_step="Give the patient the link another way; they can reply START to receive texts again.")
    return mobile


def _link_row(ledger: LedgerRepository, region: Region, partition: str, endpoint_id: str,
              appointment_id: str) -> tuple[str, dict[str, Any] | None]:
    """(row key, row) of the visit's link SMS: under an older hash key if it was sent before a rotation."""
    keys = sealer().keyed_hashes("link", endpoint_id, appointment_id)
    for key in keys:
        row = ledger.get(region, partition, key)
        if row is not None:
            return key, row
    return keys[0], None


def _claim_link(ledger: LedgerRepository, region: Region, partition: str, row: str, previous: dict[str, Any] | None,
                now: datetime, appointment_end: datetime) -> str | None:
    """The etag of our claim on sending the link, or None when a recent click holds it."""
    recent = previous and previous.get("sent_at") and now - previous["sent_at"] < RESEND_AFTER
    if recent and previous.get("status") in SENT_OR_SENDING:
        return None
    fields = {"kind": "link", "status": "sending", "sent_at": now, "appointment_end": appointment_end}
    if previous:
        return ledger.merge(region, partition, row, fields, etag=previous.metadata["etag"])
    return ledger.create(region, partition, row, fields)


def _send_claimed(ledger: LedgerRepository, context: VisitContext, partition: str, row: str, etag: str,
                  mobile: str, text: str, now: datetime) -> None:
    """Send the claimed link SMS and record the outcome on the claim."""
    region = context.region
    try:
        outcome = send_sms(context.endpoint.sms_number, mobile, text, tag=message_tag(partition, row),
                           repeatability_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{row}|{now.isoformat()}")),
                           first_sent=now)
    except ConnectorError as failure:  # throttled or ACS down: a later click may try again at once
        ledger.merge(region, partition, row, {"status": "failed", "detail": failure.code}, etag=etag)
        MessageLog(context.accounts).sent(region, context.endpoint.id, row, "link", "failed", now)
        raise
    # Conditional: a delivery report that arrived meanwhile already knows better than "sent".
    ledger.merge(region, partition, row, {"status": "sent" if outcome.successful else "failed",
                                          "message_id": outcome.message_id,
                                          "detail": "" if outcome.successful else f"HTTP {outcome.http_status}"},
                 etag=etag)
    MessageLog(context.accounts).sent(region, context.endpoint.id, row, "link",
                                      "sent" if outcome.successful else "failed", now)
    if not outcome.successful:
        raise InvalidInput("The text message could not be sent to the mobile number on file.", status=422,
                           next_step="Check the patient's mobile number in PowerChart, or give the link another way.")


DELIVERY_TEXT = {
    "sending": "Sending…", "sent": "Sent", "delivered": "Delivered", "failed": "Not delivered",
    "opted_out": "Not delivered: the patient has opted out of texts (replied STOP)",
}


def status_ref_for(visit: dict[str, Any], start: datetime | None) -> str:
    """What the provider page polls with: the visit plus its scheduled start (to find the usage row)."""
    return sealer().seal_json({**visit, "start": (start or datetime.now(UTC)).isoformat()}, VISIT_TTL, "visit-status")


def patient_status(status_ref: str, session_cookie: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Whether the patient opened the link, how long they have waited, and how the link SMS fared."""
    now = now or datetime.now(UTC)
    visit, _session = open_visit(status_ref, session_cookie, purpose="visit-status")
    accounts = default_accounts()
    config = ConfigRepository(accounts, reuse_recent_reads=True)
    endpoint = endpoint_of(config, visit["tenant"], visit["endpoint"])
    region = config.region(visit["tenant"])
    start = datetime.fromisoformat(visit["start"])
    keys = visit_keys(visit["endpoint"], visit["appointment"])
    usage = UsageRepository(accounts).get(region, visit["endpoint"], keys, start)
    _row, link = _link_row(LedgerRepository(accounts), region, day_partition(visit["endpoint"], start),
                           visit["endpoint"], visit["appointment"])
    body: dict[str, Any] = {"state": "waiting_for_patient", "text": "Waiting for patient", "alert": False}
    if usage.get("patient_opened_at"):
        opened = usage["patient_opened_at"]
        waited = max(0, int((now - opened).total_seconds() // 60))
        local = opened.astimezone(ZoneInfo(endpoint.time_zone)).strftime("%H:%M")
        body = {"state": "patient_waiting", "opened_at": local, "waited_minutes": waited,
                "text": f"Patient opened the link at {local}, waiting {waited} min",
                "alert": waited >= get_settings().lobby_alert_minutes}
    if link:
        body["sms"] = {"status": link.get("status", ""), "text": DELIVERY_TEXT.get(link.get("status", ""), "")}
    return body
