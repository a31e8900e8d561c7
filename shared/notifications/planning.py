"""What is due for one appointment at `now`, given its ledger rows: pure logic, no I/O, no clock.

Rules (ARCHITECTURE.md §3, domain-notes A4):
- confirmation once per booked appointment (when confirmations are on);
- a reschedule notice once per move, when the start differs from the last start the patient was told;
- a cancellation notice once, only when the patient was told about the appointment; nothing after it;
- each reminder once at its offset, late only while it is still the latest reminder due and before the start;
- a notice claimed at or after a reminder's due time stands in for that reminder (no two texts at once);
- one thing at a time per appointment: while a message is in flight or awaiting retry, nothing new is planned;
- quiet hours (endpoint time zone) hold every kind until they end, unless the visit starts before then.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.fhir import Appointment
from shared.notifications.timing import (
    QuietHours,
    current_reminder,
    defer_until,
    normalized_offsets,
    reminder_due_at,
)
from shared.storage.config import FhirEndpoint

Kind = Literal["confirmation", "reschedule", "cancellation", "reminder"]
NOTICES = frozenset({"confirmation", "reschedule"})
ANNOUNCING = frozenset({"confirmation", "reschedule", "reminder"})
# Statuses after which the patient may have the text: the message was accepted, or its outcome is unknown.
TOLD = frozenset({"sending", "sent", "delivered", "unsure", "lost"})
RETRYABLE = frozenset({"retry", "unsure"})
# Planning order within one sending number: earliest appointment first, then the most urgent kind.
KIND_ORDER = {"cancellation": 0, "reschedule": 1, "confirmation": 2, "reminder": 3}

# A claim younger than this belongs to a run that is still sending it (overlapping runs leave it alone).
LEASE = timedelta(minutes=2)
# ACS keeps repeatability ids for a few minutes (domain-notes E3): within it, a retry reuses id and first-sent.
REPEATABILITY_WINDOW = timedelta(minutes=5)
MAX_GENERATIONS = 5


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Slot:
    """One message an appointment can receive; its key parts make the ledger key."""

    kind: Kind
    start: datetime
    offset: int = 0
    version: str = ""

    @property
    def key_parts(self) -> tuple[str, ...]:
        if self.kind == "reminder":
            return (self.kind, str(self.offset), iso(self.start))
        if self.kind == "reschedule":
            return (self.kind, self.version, iso(self.start))
        return (self.kind,)

    @property
    def due_at(self) -> datetime | None:
        return reminder_due_at(self.start, self.offset) if self.kind == "reminder" else None


@dataclass(frozen=True)
class LedgerRow:
    """A notification row as the job reads it (everything in it is opaque or a time)."""

    partition: str
    row: str
    kind: str
    status: str
    start_at: datetime | None = None
    due_at: datetime | None = None
    claimed_at: datetime | None = None
    first_sent: datetime | None = None
    attempt_at: datetime | None = None
    appointment_end: datetime | None = None
    generation: int = 0
    attempts: int = 0
    etag: str = ""
    channel: str = "sms"

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> LedgerRow:
        metadata = getattr(entity, "metadata", None) or {}
        return cls(
            partition=entity["PartitionKey"], row=entity["RowKey"], kind=entity.get("kind", ""),
            status=entity.get("status", ""), start_at=entity.get("start_at"), due_at=entity.get("due_at"),
            claimed_at=entity.get("claimed_at"), first_sent=entity.get("first_sent"),
            attempt_at=entity.get("attempt_at"), appointment_end=entity.get("appointment_end"),
            generation=int(entity.get("generation") or 0), attempts=int(entity.get("attempts") or 0),
            etag=metadata.get("etag", ""), channel=entity.get("channel") or "sms",
        )

    def in_flight(self, now: datetime) -> bool:
        return self.status == "sending" and self.attempt_at is not None and now - self.attempt_at < LEASE

    def retryable(self, now: datetime) -> bool:
        return self.status in RETRYABLE or (self.status == "sending" and not self.in_flight(now))


@dataclass(frozen=True)
class Policy:
    """An endpoint's SMS settings, as planning needs them."""

    confirmations_on: bool
    offsets: tuple[int, ...]
    quiet: QuietHours | None
    zone: ZoneInfo

    @classmethod
    def for_endpoint(cls, endpoint: FhirEndpoint) -> Policy:
        return cls(endpoint.confirmations_on, normalized_offsets(endpoint.reminder_offsets),
                   QuietHours.parse(endpoint.quiet_hours), ZoneInfo(endpoint.time_zone))


@dataclass(frozen=True)
class Send:
    """A message to send now: a new claim, or a take-over of an existing row."""

    slot: Slot
    row: str
    existing: LedgerRow | None = None
    new_generation: bool = True


@dataclass
class Plan:
    """What one run does for one appointment."""

    sends: list[Send] = field(default_factory=list)
    closes: list[tuple[LedgerRow, str, str]] = field(default_factory=list)  # (row, new status, reason)
    stale_ends: list[LedgerRow] = field(default_factory=list)
    deferred: int = 0
    in_flight: int = 0


RowKey = Callable[[Slot], str]


def plan_appointment(appointment: Appointment, rows: list[LedgerRow], policy: Policy, now: datetime,
                     row_key: RowKey) -> Plan:
    """The plan for one appointment at `now`."""
    plan = Plan()
    start = appointment.start
    if start is None:
        return plan
    if appointment.end is not None:
        plan.stale_ends = [r for r in rows if r.appointment_end is not None and r.appointment_end < appointment.end]
    if any(r.in_flight(now) for r in rows):
        plan.in_flight = 1
        return plan
    rows = _plan_retries(plan, appointment, rows, policy, now)
    if plan.sends or plan.deferred:
        return plan
    slot = next_message(appointment, rows, policy, now, row_key)
    if slot is None:
        return plan
    if defer_until(now, start, policy.quiet, policy.zone) is not None:
        plan.deferred = 1
        return plan
    plan.sends.append(Send(slot, row_key(slot)))
    return plan


def _plan_retries(plan: Plan, appointment: Appointment, rows: list[LedgerRow], policy: Policy,
                  now: datetime) -> list[LedgerRow]:
    """Plan retries of rows left unsent; close those no longer worth sending; return rows as they will be."""
    updated = []
    for row in rows:
        if not row.retryable(now):
            updated.append(row)
            continue
        close = _retry_or_close(plan, appointment, row, policy, now)
        updated.append(replace(row, status=close) if close else row)
    return updated


def _retry_or_close(plan: Plan, appointment: Appointment, row: LedgerRow, policy: Policy,
                    now: datetime) -> str | None:
    """Add a retry of the row to the plan, or close it; returns the status it is closed with (or None)."""
    closed = "skipped" if row.status == "retry" else "lost"  # an unknown outcome may have reached the patient
    if not still_due(row, appointment, policy, now):
        plan.closes.append((row, closed, "no_longer_due"))
        return closed
    same_generation = (row.status != "retry" and row.first_sent is not None
                       and now - row.first_sent < REPEATABILITY_WINDOW)
    if not same_generation and row.generation + 1 >= MAX_GENERATIONS:
        plan.closes.append((row, closed, "gave_up"))
        return closed
    if not same_generation and defer_until(now, appointment.start, policy.quiet, policy.zone) is not None:
        plan.deferred += 1
        return None
    plan.sends.append(Send(_slot_of(row, appointment, same_generation), row.row, row, not same_generation))
    return None


def _slot_of(row: LedgerRow, appointment: Appointment, same_generation: bool) -> Slot:
    """The slot a row stands for; a confirmation sent afresh announces the current start."""
    start = row.start_at or appointment.start
    if row.kind == "confirmation" and not same_generation:
        start = appointment.start
    offset = int((row.start_at - row.due_at).total_seconds() // 60) if row.kind == "reminder" else 0
    return Slot(row.kind, start, offset=offset)  # type: ignore[arg-type]


def still_due(row: LedgerRow, appointment: Appointment, policy: Policy, now: datetime) -> bool:
    """Whether an unsent row is still worth sending for the appointment as it is now."""
    start = appointment.start
    if start is None or start <= now:
        return False
    booked = appointment.status == "booked"
    if row.kind == "confirmation":
        return booked and policy.confirmations_on
    if row.kind == "reschedule":
        return booked and policy.confirmations_on and row.start_at == start
    if row.kind == "cancellation":
        return appointment.cancelled and policy.confirmations_on
    if row.kind == "reminder" and row.start_at == start and row.due_at is not None and booked:
        offset = int((start - row.due_at).total_seconds() // 60)
        return current_reminder(policy.offsets, start, now) == offset
    return False


def next_message(appointment: Appointment, rows: list[LedgerRow], policy: Policy, now: datetime,
                 row_key: RowKey) -> Slot | None:
    """The one new message due for the appointment at `now`, if any."""
    start = appointment.start
    if start is None or start <= now:
        return None
    existing = {r.row for r in rows}
    if appointment.cancelled:
        slot = Slot("cancellation", start)
        wanted = policy.confirmations_on and told(rows) and row_key(slot) not in existing
        return slot if wanted else None
    if appointment.status != "booked":
        return None
    notice = _notice(appointment, rows, policy, row_key, existing)
    if notice is not None:
        return notice
    offset = current_reminder(policy.offsets, start, now)
    if offset is None:
        return None
    slot = Slot("reminder", start, offset=offset)
    return None if row_key(slot) in existing or superseded(slot, rows) else slot


def _notice(appointment: Appointment, rows: list[LedgerRow], policy: Policy, row_key: RowKey,
            existing: set[str]) -> Slot | None:
    if not policy.confirmations_on or appointment.start is None:
        return None
    confirmation = Slot("confirmation", appointment.start)
    if row_key(confirmation) not in existing:
        return confirmation
    last = told_start(rows)
    if last is None or last == appointment.start:
        return None
    slot = Slot("reschedule", appointment.start, version=appointment.version)
    return None if row_key(slot) in existing else slot


def told(rows: list[LedgerRow]) -> bool:
    """Whether the patient may have received any text announcing the appointment."""
    return any(r.kind in ANNOUNCING and r.status in TOLD for r in rows)


def told_start(rows: list[LedgerRow]) -> datetime | None:
    """The start the patient was told last (confirmation, reschedule notice or reminder)."""
    announced = [r for r in rows if r.kind in ANNOUNCING and r.status in TOLD and r.start_at and r.claimed_at]
    return max(announced, key=lambda r: r.claimed_at).start_at if announced else None


def superseded(slot: Slot, rows: list[LedgerRow]) -> bool:
    """A reminder is covered by a notice for the same start claimed at or after the reminder's due time."""
    due = slot.due_at
    return due is not None and any(
        r.kind in NOTICES and r.start_at == slot.start and r.claimed_at is not None and r.claimed_at >= due
        for r in rows
    )
