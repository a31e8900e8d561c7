"""ACS events from Event Grid: SMS delivery reports update the ledger row their tag names; STOP / START replies;
email delivery reports (from our sender address only) update the row whose message id (the send operation's id)
they carry.

Only events of the deployment's own ACS resource (the event's `topic` is ACS_RESOURCE_ID) about one of our
sending numbers change anything. Event Grid delivers at least once and in any order, so every change is idempotent
on the event id and an opt-out change older than the recorded one is ignored. Keys arrive in PascalCase
(documented samples) or camelCase (SDK models): they are read case-insensitively.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shared import telemetry
from shared.notifications.optouts import OPTED_IN, OPTED_OUT, OptOutStore, email_key, email_scope
from shared.notifications.planning import KIND_ORDER
from shared.settings import get_settings
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository
from shared.storage.ledger import LedgerRepository, parse_message_tag
from shared.storage.messages import MessageLog
from shared.tokens import require_safe_keys

DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"
RECEIVED = "Microsoft.Communication.SMSReceived"
EMAIL_DELIVERY_REPORT = "Microsoft.Communication.EmailDeliveryReportReceived"
# ACS Email delivery statuses: Suppressed means the address is on the resource's suppression list (unsubscribed
# or hard-bounced before); Expanded is a distribution list, not an outcome for a recipient.
EMAIL_STATUSES = {"delivered": "delivered", "suppressed": OPTED_OUT, "bounced": "failed", "failed": "failed",
                  "quarantined": "failed", "filteredspam": "failed"}
# Exactly the keywords ACS documents for toll-free numbers (SMS FAQ, "Opt-out handling"; domain-notes E5): the
# carrier blocks the sender on STOP and lifts the block on START or UNSTOP. Other words ("cancel", "yes") are
# ordinary replies: the carrier does not act on them, so neither do we.
# Our emails' operation ids are UUIDs (their repeatability ids): anything else cannot be ours, and is never put in a
# table key (a '/', '#' or '?' would address another entity or break the request).
MESSAGE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
STOP_WORDS = frozenset({"STOP"})
START_WORDS = frozenset({"START", "UNSTOP"})


def handle_sms_event(event_id: str, event_type: str, data: dict[str, Any] | None, topic: str | None,
                     accounts: TableAccounts | None = None) -> str:
    """Apply one ACS SMS event; returns what happened, for the log (never who it concerned)."""
    require_safe_keys()
    if not is_our_acs(topic):
        return "foreign_topic"
    fields = {str(key).lower(): value for key, value in (data or {}).items()}
    accounts = accounts or default_accounts()
    if event_type == DELIVERY_REPORT:
        return delivery_report(event_id, fields, accounts)
    if event_type == RECEIVED:
        return reply(event_id, fields, accounts)
    if event_type == EMAIL_DELIVERY_REPORT:
        return email_delivery_report(event_id, fields, accounts)
    return "ignored"


def email_delivery_report(event_id: str, fields: dict[str, Any], accounts: TableAccounts) -> str:
    """Set the delivery status on the ledger row of the email's send operation; only our sender's reports."""
    sender = get_settings().email_sender_address
    if not sender or str(fields.get("sender") or "").lower() != sender.lower():
        return "not_ours"
    status = EMAIL_STATUSES.get(str(fields.get("status") or "").lower())
    message_id = str(fields.get("messageid") or "")
    if status is None or not MESSAGE_ID.fullmatch(message_id):
        return "ignored"
    ledger = LedgerRepository(accounts)
    found = ledger.by_message_id(get_settings().enabled_regions, message_id)
    if found is None:
        return "unknown_row"  # purged after the appointment, or not ours
    region, current = found
    if current.get("event_id") == event_id:
        return "duplicate"
    at = attempted_at(fields)
    ledger.merge(region, current["PartitionKey"], current["RowKey"],
                 {"status": status, "detail": f"email {str(fields.get('status')).lower()}", "delivered_at": at,
                  "event_id": event_id})
    MessageLog(accounts).delivered(region, current["PartitionKey"].rsplit("-", 1)[0], current["RowKey"], status, at,
                                   current.get("sent_at"))
    count_delivery("email", current, status)
    if status == OPTED_OUT and fields.get("recipient"):
        endpoint_id = current["PartitionKey"].rsplit("-", 1)[0]
        OptOutStore(ledger).record_key(region, email_scope(endpoint_id), email_key(str(fields["recipient"])),
                                       OPTED_OUT, at, event_id)
    return status


def delivery_report(event_id: str, fields: dict[str, Any], accounts: TableAccounts) -> str:
    """Set the delivery status on the ledger row named by the message tag."""
    parsed = parse_message_tag(str(fields.get("tag") or ""))
    if parsed is None:
        return "untagged"
    partition, row = parsed
    config = ConfigRepository(accounts)
    found = config.find_by_id(partition.rsplit("-", 1)[0])
    if found is None:
        return "unknown_endpoint"
    if not fields.get("from") or e164(fields["from"]) != found[1].sms_number:
        return "not_our_number"  # a report about another sender cannot change this endpoint's rows
    region = config.region(found[0])
    ledger = LedgerRepository(accounts)
    current = ledger.get(region, partition, row)
    if current is None:
        return "unknown_row"  # purged after the appointment, or not ours
    if current.get("event_id") == event_id:
        return "duplicate"
    status, received = delivery_status(fields), received_at(fields)
    detail = str(fields.get("deliverystatusdetails") or "")[:120]
    ledger.merge(region, partition, row, {"status": status, "detail": detail, "delivered_at": received,
                                          "event_id": event_id}, kind=current.get("Kind", "notification"))
    if current.get("Kind", "notification") == "notification":
        MessageLog(accounts).delivered(region, partition.rsplit("-", 1)[0], row, status, received,
                                       current.get("sent_at"))
    count_delivery("sms", current, status)
    if status == OPTED_OUT and fields.get("from") and fields.get("to"):
        OptOutStore(ledger).record(region, e164(fields["from"]), e164(fields["to"]), OPTED_OUT, received, event_id)
    return status


def count_delivery(channel: str, row: dict[str, Any], status: str) -> None:
    """A delivery report in the channel's metrics: delivered, or failed at the delivery stage (opt-outs too)."""
    kind = row.get("kind") if row.get("kind") in KIND_ORDER else "unknown"
    if status == "delivered":
        telemetry.count(f"connector.{channel}.delivered", kind=kind)
    else:
        telemetry.count(f"connector.{channel}.failed", kind=kind, stage="delivery")


def reply(event_id: str, fields: dict[str, Any], accounts: TableAccounts) -> str:
    """A patient's STOP or START to one of our numbers: record it wherever that number is linked."""
    word = str(fields.get("message") or "").strip().upper()
    status = OPTED_OUT if word in STOP_WORDS else OPTED_IN if word in START_WORDS else None
    if status is None or not fields.get("from") or not fields.get("to"):
        return "ignored"
    sender, patient = e164(fields["to"]), e164(fields["from"])
    config = ConfigRepository(accounts)
    regions = {config.region(tenant) for tenant, endpoint in config.all_endpoints()
               if endpoint.sms_number == sender}
    store = OptOutStore(LedgerRepository(accounts))
    for region in regions:
        store.record(region, sender, patient, status, received_at(fields), event_id)
    return status if regions else "not_linked"


def delivery_status(fields: dict[str, Any]) -> str:
    """delivered, opted_out (the carrier blocks the sender for this recipient) or failed."""
    if str(fields.get("deliverystatus") or "").lower() == "delivered":
        return "delivered"
    details = str(fields.get("deliverystatusdetails") or "").lower()
    return OPTED_OUT if "blocked" in details or "opt" in details else "failed"


def received_at(fields: dict[str, Any]) -> datetime:
    """ReceivedTimestamp (ISO 8601, up to 7 fractional digits), or now when absent or unreadable."""
    try:
        moment = datetime.fromisoformat(str(fields.get("receivedtimestamp") or ""))
    except ValueError:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def attempted_at(fields: dict[str, Any]) -> datetime:
    """deliveryAttemptTimeStamp of an email report, or now."""
    return received_at({"receivedtimestamp": fields.get("deliveryattempttimestamp")})


def e164(number: Any) -> str:
    """Event Grid numbers come with or without the '+'."""
    text = str(number).strip()
    return text if text.startswith("+") else f"+{text}"


def is_our_acs(topic: str | None) -> bool:
    """Whether the event comes from the deployment's ACS resource (resource ids compare case-insensitively)."""
    ours = get_settings().acs_resource_id.strip().rstrip("/").lower()
    return bool(ours) and (topic or "").strip().rstrip("/").lower() == ours
