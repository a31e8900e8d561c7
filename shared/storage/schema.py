"""The one place that says which entity kinds and fields may exist in which table (ARCHITECTURE.md §5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import SchemaViolation

# Row and partition keys are not listed; every entity also carries its "Kind".
# `config` lives in the app's own account; the others in the organization's region account.
SCHEMA: dict[str, dict[str, frozenset[str]]] = {
    "config": {
        "organization": frozenset({"region", "region_chosen_at", "region_chosen_by"}),
        "fhir_endpoint": frozenset({
            "base_url", "environment", "display_name", "departments", "organizer",
            "sms_number", "channel", "confirmations_on", "reminder_offsets", "quiet_hours", "default_language",
            "time_zone", "updated_at", "updated_by",
        }),
        "fhir_index": frozenset({"tenant_id", "endpoint_id", "environment"}),
        "sms": frozenset({
            "consent_send", "consent_send_at", "consent_send_by",
            "consent_attendees", "consent_attendees_at", "consent_attendees_by",
        }),
        "phone_number": frozenset({"number", "country", "status", "verification", "operation", "error", "updated_at"}),
        "licence": frozenset({"state", "skus", "checked_at"}),
        # A portal session, keyed by a keyed hash of its id: the role last read from Entra and a sealed refresh token.
        "portal_session": frozenset({"role", "expires_at", "checked_at", "refresh"}),
        # The last reminder run per FHIR endpoint, in counts and error codes only (the status page reads it).
        "reminder_run": frozenset({"run_at", "outcome", "searched", "sent", "failed", "carried_over",
                                   "error_codes"}),
        # Per FHIR endpoint: Graph refused the virtual-appointment join link, so patients get the meeting link.
        "join_link": frozenset({"mode", "reason", "reference", "decided_at"}),
    },
    "ehrusers": {
        "ehr_user": frozenset({"entra_oid", "linked_at"}),
    },
    "ledger": {
        "notification": frozenset({
            "kind", "status", "sent_at", "due_at", "appointment_end", "message_id", "attempts", "detail",
            "event_id", "visit", "start_at", "claimed_at", "first_sent", "attempt_at", "generation", "delivered_at",
            "channel",
        }),
        # An SMS opt-out (STOP) per sending number and recipient, both as keyed hashes.
        "optout": frozenset({"status", "updated_at", "event_id"}),
        # ACS message id (an email's send operation id, a UUID) → its notification row, so an email delivery report
        # (which carries no tag) finds the row with a point read. Opaque keys and a time only.
        "message_index": frozenset({"ledger_partition", "ledger_row", "appointment_end"}),
    },
    "usage": {
        "visit": frozenset({
            "scheduled_start", "scheduled_end", "department", "patient_opened_at", "provider_joined_at",
            "meeting_start", "meeting_end", "sms_sent", "status",
            # The Teams meeting's opaque Graph id (to read its attendance) and what reconciling computed.
            "meeting_id", "lobby_wait_seconds", "duration_seconds",
            # Call quality from Graph call records: per participant kind, the worst audio stream's numbers only.
            "poor_call", "staff_jitter_ms", "staff_packet_loss_percent", "staff_round_trip_ms",
            "patient_jitter_ms", "patient_packet_loss_percent", "patient_round_trip_ms",
        }),
        # One message sent (keyed by its opaque ledger key), kept after the ledger row is purged: the SMS report
        # and the status page's delivery rates count these. No recipient, no text, no appointment.
        "message": frozenset({"channel", "kind", "status", "delivery", "sent_at", "delivered_at"}),
    },
}

REGION_TABLES = frozenset({"ehrusers", "ledger", "usage"})


def check_entity(table: str, entity: Mapping[str, Any]) -> None:
    """Raise SchemaViolation unless the entity's kind and every field are allowed in the table."""
    kinds = SCHEMA.get(table)
    if kinds is None:
        raise SchemaViolation(f"table {table!r} is not in the schema")
    kind = entity.get("Kind")
    allowed = kinds.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise SchemaViolation(f"entity kind {kind!r} is not allowed in table {table!r}")
    extra = set(entity) - allowed - {"PartitionKey", "RowKey", "Kind"}
    if extra:
        raise SchemaViolation(f"fields {sorted(extra)} are not allowed for {kind!r} in {table!r}")
