"""The provider's "Send link" by email, for a patient without a textable mobile: once per click, opt-outs honoured."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.email.acs import send_email
from shared.email.address import masked, normalized
from shared.email.texts import render_email
from shared.errors import Conflict, ConnectorError, InvalidInput
from shared.fhir import Appointment, Patient
from shared.join import link_for
from shared.notifications.optouts import OptOutStore, email_key, email_scope
from shared.notifications.unsubscribe import unsubscribe_url
from shared.settings import Region, get_settings
from shared.sms.phone import reachable_from_toll_free, to_e164
from shared.sms.texts import pick_language
from shared.storage.accounts import TableAccounts
from shared.storage.config import FhirEndpoint
from shared.storage.ledger import LedgerRepository, day_partition
from shared.tokens import sealer

RESEND_AFTER = timedelta(minutes=1)
EMAIL_CHANNELS = frozenset({"email", "both", "email_if_no_mobile"})


def emails_instead(endpoint: FhirEndpoint, patient: Patient) -> bool:
    """Whether the link goes by email: the endpoint emails, and emails only or the patient has no textable mobile."""
    if endpoint.channel not in EMAIL_CHANNELS or not get_settings().email_sender_address:
        return False
    if normalized(patient.email) is None:
        return False
    mobile = to_e164(patient.mobile) if patient.mobile else None
    textable = bool(endpoint.sms_number) and mobile is not None and reachable_from_toll_free(mobile)
    return endpoint.channel == "email" or not textable


def email_link(accounts: TableAccounts, region: Region, endpoint: FhirEndpoint, appointment: Appointment,
               patient: Patient, now: datetime) -> dict[str, Any]:
    """Email the patient their join link once (repeated clicks within a minute send once)."""
    address = normalized(patient.email) or ""
    ledger = LedgerRepository(accounts)
    if email_key(address) in OptOutStore(ledger).opted_out(region, email_scope(endpoint.id)):
        raise Conflict("The patient unsubscribed from appointment emails.",
                       next_step="Give the patient the link another way.")
    start = appointment.start or now
    partition = day_partition(endpoint.id, start)
    row = _claim_row(endpoint, appointment)
    etag = _claim(ledger, region, partition, row, now, appointment.end or start)
    if etag is None:
        return {"status": "sent", "sent_to": masked(address), "channel": "email", "repeated": True}
    language = pick_language(patient.language, endpoint.default_language)
    content = render_email("link", language, start.astimezone(ZoneInfo(endpoint.time_zone)),
                           link_for(endpoint, appointment), unsubscribe_url(endpoint.id, address, language))
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{row}|{now.isoformat()}"))
    try:
        outcome = send_email(get_settings().email_sender_address, address, content, repeatability_id=request_id,
                             first_sent=now)
    except ConnectorError as failure:  # throttled or ACS down: a later click may try again at once
        ledger.merge(region, partition, row, {"status": "failed", "detail": failure.code}, etag=etag)
        raise
    ledger.merge(region, partition, row, {"status": "sent" if outcome.successful else "failed",
                                          "message_id": outcome.message_id,
                                          "detail": "" if outcome.successful else f"HTTP {outcome.http_status}"},
                 etag=etag)
    if not outcome.successful:
        raise InvalidInput("The email could not be sent to the address on file.", status=422,
                           next_step="Check the patient's email address in PowerChart, or give the link another way.")
    return {"status": "sent", "sent_to": masked(address), "channel": "email", "repeated": False}


def _claim_row(endpoint: FhirEndpoint, appointment: Appointment) -> str:
    return sealer().keyed_hash("link-email", endpoint.id, appointment.id)


def _claim(ledger: LedgerRepository, region: Region, partition: str, row: str, now: datetime,
           appointment_end: datetime) -> str | None:
    """The etag of our claim on sending the link, or None when a recent click holds it."""
    previous = ledger.get(region, partition, row)
    recent = previous and previous.get("sent_at") and now - previous["sent_at"] < RESEND_AFTER
    if recent and previous.get("status") in ("sending", "sent", "delivered"):
        return None
    fields = {"kind": "link", "channel": "email", "status": "sending", "sent_at": now,
              "appointment_end": appointment_end}
    if previous:
        return ledger.merge(region, partition, row, fields, etag=previous.metadata["etag"])
    return ledger.create(region, partition, row, fields)
