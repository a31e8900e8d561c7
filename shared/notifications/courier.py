"""Send one planned message exactly once: claim its ledger row, send with a stable repeatability id, record it.

The exactly-once argument:
1. Every message has one ledger key (a keyed hash of endpoint, appointment, kind and, for reminders and
   reschedule notices, the offset or version and the start), so any run computes the same key for it.
2. Only the run that creates the row (create-if-absent) or takes it over with an etag-conditional update may
   send; every other run loses that write and leaves the message alone.
3. A send carries repeatability id = uuid5(tag # generation) and first-sent = the generation's first attempt,
   so retrying the same generation (in this run, or after a crash within ACS's window) is a no-op at ACS.
4. A new generation (new id, new first-sent) starts only when the previous one was certainly not accepted
   (429, a whole-request 4xx), or its outcome is unknown, it is older than ACS's repeatability window and no
   delivery report (matched by tag) arrived in between. That last case is the one residual duplicate risk.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from shared import telemetry
from shared.email.acs import EmailContent, send_email
from shared.email.texts import render_email
from shared.errors import DependencyFailed, DependencyTimeout
from shared.fhir import Appointment
from shared.join import link_for
from shared.notifications.optouts import OPTED_OUT, OptOutStore, email_key, email_scope
from shared.notifications.planning import KIND_ORDER, Send, Slot
from shared.notifications.report import RunReport
from shared.notifications.throttle import TokenBucket
from shared.notifications.unsubscribe import unsubscribe_url
from shared.settings import Region
from shared.sms.acs import SendOutcome, SmsThrottled, send_sms
from shared.sms.texts import render_sms
from shared.storage.config import FhirEndpoint
from shared.storage.ledger import message_tag

REPEATABILITY_NAMESPACE = uuid.UUID("8d7f3c1e-5b2a-4e6f-9a0b-2c4d6e8f1a3b")
SEND_BACKOFF = (0.2, 1.0)  # in-run retries of a transient failure, same id and body
REPORTED = frozenset({"delivered", "failed", "opted_out"})  # statuses a delivery report may have written
TRANSACTION_LIMIT = 100  # entities per Table Storage transaction

logger = logging.getLogger("connector.notifications")


@dataclass(frozen=True)
class Outbound:
    """A message ready to go: its ledger row, its recipient and language, and the number it goes from."""

    region: Region
    endpoint: FhirEndpoint
    appointment: Appointment
    send: Send
    partition: str
    visit: str
    to: str
    language: str
    first_text: bool = True  # no earlier text of this visit went out: the usage report learns of it now
    channel: str = "sms"  # or "email": then `to` is an address and `from_address` the sender
    from_address: str = ""

    @property
    def sender(self) -> str:
        return self.from_address if self.channel == "email" else self.endpoint.sms_number

    @property
    def tag(self) -> str:
        return message_tag(self.partition, self.send.row)

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.appointment.start, KIND_ORDER[self.send.slot.kind])


@dataclass(frozen=True)
class Outcome:
    """How one send ended, in the ledger's terms."""

    status: str  # sent | unsure | retry | failed | opted_out | skipped
    detail: str = ""
    message_id: str = ""
    retry_after: float = 0.0
    transient: bool = False


def new_row(slot: Slot, appointment: Appointment, visit: str, at: datetime, channel: str = "sms") -> dict[str, Any]:
    """The fields of a freshly claimed ledger row (only opaque keys and times)."""
    return ({"channel": channel} if channel != "sms" else {}) | {
        "kind": slot.kind, "status": "sending", "visit": visit, "start_at": slot.start, "due_at": slot.due_at or at,
        "claimed_at": at, "first_sent": at, "attempt_at": at, "generation": 0, "attempts": 1,
        "appointment_end": appointment.end or slot.start + timedelta(hours=1),
    }


def repeatability_id(tag: str, generation: int) -> str:
    """The same UUID for every attempt of one generation of one message."""
    return str(uuid.uuid5(REPEATABILITY_NAMESPACE, f"{tag}#{generation}"))


def classify(result: SendOutcome) -> Outcome:
    """ACS's per-recipient answer as a ledger outcome."""
    error = result.error.lower()
    if result.successful:
        return Outcome("sent", message_id=result.message_id)
    if result.http_status == 400 and "already used" in error:
        return Outcome("sent", detail="accepted_earlier")  # an earlier attempt with this id went through
    if result.http_status == 412:
        return Outcome("unsure", detail="repeatability_expired")
    if "opt" in error or "blocked" in error:
        return Outcome("opted_out", detail="opted_out")
    if result.http_status >= 500 or result.http_status == 429:
        return Outcome("unsure", detail=f"HTTP {result.http_status}", transient=True)
    return Outcome("failed", detail=f"HTTP {result.http_status}")


def render(outbound: Outbound) -> str | EmailContent:
    """The SMS text or the email, in the patient's language, with the local start time and (except
    cancellations) the link; an email also carries the recipient's unsubscribe link."""
    slot = outbound.send.slot
    link = "" if slot.kind == "cancellation" else link_for(outbound.endpoint, outbound.appointment)
    local = slot.start.astimezone(ZoneInfo(outbound.endpoint.time_zone))
    if outbound.channel == "email":
        unsubscribe = unsubscribe_url(outbound.endpoint.id, outbound.to, outbound.language)
        return render_email(slot.kind, outbound.language, local, link, unsubscribe)
    return render_sms(slot.kind, outbound.language, local, link)


class Ledger(Protocol):
    def create(self, region: Region, partition: str, row: str, fields: dict[str, Any]) -> str | None: ...
    def merge(self, region: Region, partition: str, row: str, fields: dict[str, Any],
              etag: str | None = None) -> str | None: ...
    def get(self, region: Region, partition: str, row: str) -> dict[str, Any] | None: ...
    def index_message(self, region: Region, message_id: str, partition: str, row: str,
                      appointment_end: datetime) -> None: ...
    def unindex_message(self, region: Region, message_id: str) -> None: ...
    def merge_many(self, region: Region, partition: str, rows: list[tuple[str, dict[str, Any], str]]) -> bool: ...


Pending = tuple["Outbound", str, dict[str, Any]]  # an outcome not yet written: the message, its etag, the fields


class Courier:
    """Sends outbound messages through ACS under the ledger's exactly-once protocol."""

    def __init__(self, ledger: Ledger, report: RunReport, clock: Callable[[], datetime], *,
                 send: Callable[..., SendOutcome] = send_sms, send_mail: Callable[..., SendOutcome] = send_email,
                 optouts: OptOutStore | None = None,
                 usage: Callable[[Outbound], None] | None = None,
                 messages: Callable[[Outbound, str, datetime], None] | None = None,
                 backoff: Sequence[float] = SEND_BACKOFF, sleep: Callable[[float], None] = time.sleep):
        self.ledger, self.report, self.clock = ledger, report, clock
        self._send, self._send_mail, self._optouts, self._usage = send, send_mail, optouts, usage
        self._messages = messages
        self._backoff, self._sleep = tuple(backoff), sleep
        self._pending: dict[tuple[Region, str], list[Pending]] | None = None  # None: each outcome written at once
        self._pending_lock = threading.Lock()

    @contextmanager
    def batched_outcomes(self) -> Iterator[None]:
        """Within: outcomes are written one transaction per ledger partition (up to 100 rows), not one merge each.

        Safe for exactly-once: until its outcome is written a row reads as claimed ("sending"), and a later run
        retries it with the same repeatability id, which ACS answers without sending again (see the docstring)."""
        with self._pending_lock:
            self._pending = defaultdict(list)
        try:
            yield
        finally:
            with self._pending_lock:
                pending, self._pending = self._pending, None
            for (region, partition), batch in pending.items():
                self._write_batch(region, partition, batch)

    def deliver(self, outbound: Outbound, bucket: TokenBucket | None = None) -> str:
        """Claim, send and record one message; returns the status it ended in ('in_flight' if not ours)."""
        claim = self._claim(outbound)
        if claim is None:
            self.report.add("in_flight")
            return "in_flight"
        etag, generation, first_sent = claim
        try:
            text = render(outbound)
        except ValueError:  # an appointment id that cannot be sealed into a link
            outcome = Outcome("skipped", detail="no_link")
        else:
            outcome = self._attempt(outbound, text, repeatability_id(outbound.tag, generation), first_sent)
        if outcome.retry_after and bucket is not None:
            bucket.pause(outcome.retry_after)
        self._record(outbound, etag, outcome)
        return outcome.status

    # claiming ------------------------------------------------------------------------------------------------

    def _claim(self, outbound: Outbound) -> tuple[str, int, datetime] | None:
        """(etag, generation, first-sent) of a row this run now owns, or None when another run has it."""
        send, at = outbound.send, self.clock()
        existing = send.existing
        if existing is None:
            fields = new_row(send.slot, outbound.appointment, outbound.visit, at, outbound.channel)
            fields |= self._message_id(outbound, 0)
            etag = self.ledger.create(outbound.region, outbound.partition, send.row, fields)
            if etag is None:
                return None
            self._index(outbound, 0, fields["appointment_end"])
            return etag, 0, at
        fields: dict[str, Any] = {"status": "sending", "attempt_at": at, "attempts": existing.attempts + 1}
        generation, first_sent = existing.generation, existing.first_sent or at
        if send.new_generation:
            generation, first_sent = existing.generation + 1, at
            fields |= {"generation": generation, "first_sent": at, "claimed_at": at, "start_at": send.slot.start}
            fields |= self._message_id(outbound, generation)
        etag = self.ledger.merge(outbound.region, outbound.partition, send.row, fields, etag=existing.etag)
        if etag is None:
            return None
        if send.new_generation:
            self._index(outbound, generation, existing.appointment_end or send.slot.start + timedelta(hours=1))
            if outbound.channel == "email":  # the old id's reports would find nothing (the row has the new id)
                self.ledger.unindex_message(outbound.region, repeatability_id(outbound.tag, existing.generation))
        return etag, generation, first_sent

    def _index(self, outbound: Outbound, generation: int, appointment_end: datetime) -> None:
        """Before an email goes out, index its message id, so its delivery report finds the row by point read."""
        if outbound.channel == "email":
            self.ledger.index_message(outbound.region, repeatability_id(outbound.tag, generation),
                                      outbound.partition, outbound.send.row, appointment_end)

    @staticmethod
    def _message_id(outbound: Outbound, generation: int) -> dict[str, str]:
        """An email's ACS operation id is its repeatability id, known before sending: an email delivery report
        (which carries no tag) can find its row even when it arrives before the send is recorded."""
        if outbound.channel != "email":
            return {}
        return {"message_id": repeatability_id(outbound.tag, generation)}

    # sending -------------------------------------------------------------------------------------------------

    def _attempt(self, outbound: Outbound, text: str | EmailContent, request_id: str, first_sent: datetime) -> Outcome:
        """Send, retrying transient failures a little with the same id, first-sent and text."""
        outcome = Outcome("unsure")
        for delay in (0.0, *self._backoff):
            if delay:
                self._sleep(delay)
            outcome = self._send_once(outbound, text, request_id, first_sent)
            if not outcome.transient:
                return outcome
        return outcome

    def _send_once(self, outbound: Outbound, text: str | EmailContent, request_id: str,
                   first_sent: datetime) -> Outcome:
        try:
            if isinstance(text, EmailContent):
                result = self._send_mail(outbound.sender, outbound.to, text, repeatability_id=request_id,
                                         first_sent=first_sent)
            else:
                result = self._send(outbound.sender, outbound.to, text, tag=outbound.tag,
                                    repeatability_id=request_id, first_sent=first_sent)
        except SmsThrottled as throttled:
            return Outcome("retry", detail="throttled", retry_after=throttled.retry_after)
        except DependencyTimeout:
            return Outcome("unsure", detail="timeout", transient=True)
        except DependencyFailed as failed:
            status = getattr(failed.__cause__, "status_code", None)
            if status is not None and 400 <= status < 500:
                return Outcome("retry", detail=f"HTTP {status}")  # refused whole: certainly not accepted
            return Outcome("unsure", detail=f"HTTP {status}" if status else "unreachable", transient=True)
        return classify(result)

    # recording -----------------------------------------------------------------------------------------------

    def _record(self, outbound: Outbound, etag: str, outcome: Outcome) -> None:
        at = self.clock()
        fields: dict[str, Any] = {"status": outcome.status, "detail": outcome.detail}
        if outcome.status == "sent":
            fields |= {"sent_at": at, "message_id": outcome.message_id}
        self._write(outbound, etag, fields)
        self._count(outbound, outcome)
        if outcome.status == "sent" and outbound.first_text and self._usage is not None:
            self._usage(outbound)
        if outcome.status == "opted_out" and self._optouts is not None:
            if outbound.channel == "email":
                self._optouts.record_key(outbound.region, email_scope(outbound.endpoint.id), email_key(outbound.to),
                                         OPTED_OUT, at)
            else:
                self._optouts.record(outbound.region, outbound.sender, outbound.to, OPTED_OUT, at)

    def _write(self, outbound: Outbound, etag: str, fields: dict[str, Any]) -> None:
        """Record the outcome now, or queue it for its partition's transaction when outcomes are batched."""
        with self._pending_lock:
            if self._pending is None:
                full = None
            else:
                queue = self._pending[(outbound.region, outbound.partition)]
                queue.append((outbound, etag, fields))
                full = queue[:] if len(queue) >= TRANSACTION_LIMIT else None
                if full:
                    queue.clear()
                else:
                    return
        if full is None:
            self._write_one(outbound, etag, fields)
        else:
            self._write_batch(outbound.region, outbound.partition, full)

    def _write_batch(self, region: Region, partition: str, batch: list[Pending]) -> None:
        """One transaction for a partition's outcomes; if any row changed meanwhile (a delivery report came first),
        each is written on its own so the report keeps its status. A storage failure leaves the rows claimed."""
        if not batch:  # its partition's last full batch was written already
            return
        try:
            if self.ledger.merge_many(region, partition, [(o.send.row, fields, etag) for o, etag, fields in batch]):
                return
            for outbound, etag, fields in batch:
                self._write_one(outbound, etag, fields)
        except Exception as error:  # the rows stay "sending": the next run resolves them with the same id
            self.report.record_error(batch[0][0].endpoint.id, type(error).__name__)
            logger.warning("SMS outcomes could not be recorded: %s", type(error).__name__)

    def _write_one(self, outbound: Outbound, etag: str, fields: dict[str, Any]) -> None:
        """Record the outcome; a delivery report that got there first keeps its status."""
        region, partition, row = outbound.region, outbound.partition, outbound.send.row
        if self.ledger.merge(region, partition, row, fields, etag=etag) is not None:
            return
        current = self.ledger.get(region, partition, row)
        if current is None:
            return  # purged meanwhile: the appointment is over
        if current.get("status") in REPORTED:
            fields = {k: v for k, v in fields.items() if k not in ("status", "detail")}
        self.ledger.merge(region, partition, row, fields)

    def _count(self, outbound: Outbound, outcome: Outcome) -> None:
        endpoint = outbound.endpoint.id
        kind = outbound.send.slot.kind
        metric = f"connector.{outbound.channel}"  # connector.sms.* or connector.email.*: one alert per channel
        if outcome.status == "sent":
            self.report.record_sent(kind, endpoint)
            telemetry.count(f"{metric}.sent", kind=kind)
        elif outcome.status == "unsure":
            self.report.add("retrying", endpoint=endpoint)
        elif outcome.status == "retry":
            self.report.add("carried_over", endpoint=endpoint)
            if outcome.detail == "throttled":
                telemetry.count(f"{metric}.throttled", kind=kind)
        elif outcome.status == "failed":
            self.report.add("failed", endpoint=endpoint)
            self.report.record_error(endpoint, outcome.detail)
            telemetry.count(f"{metric}.failed", kind=kind, stage="send")
        else:
            self.report.add("skipped", endpoint=endpoint)
        if self._messages is not None and outcome.status in ("sent", "failed"):
            self._messages(outbound, outcome.status, self.clock())
