"""Sending under the ledger protocol (claims, stable repeatability ids, crash recovery), pacing and carry-over."""

from __future__ import annotations

import base64
import contextlib
import itertools
import threading
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import DependencyTimeout
from shared.fhir import Appointment
from shared.notifications.courier import Courier, Outbound, repeatability_id
from shared.notifications.dispatch import Dispatcher, queues_by_sender
from shared.notifications.planning import LedgerRow, Policy, Send, Slot, plan_appointment
from shared.notifications.report import RunReport
from shared.notifications.throttle import TokenBucket
from shared.runtime import reset_process_state
from shared.sms.acs import SendOutcome, SmsThrottled
from shared.sms.texts import pick_language
from shared.storage.config import FhirEndpoint

NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
ENDPOINT = FhirEndpoint(base_url="https://fhir.example/r4/t", environment="test", sms_number="+18335550101",
                        departments=["1"], default_language="es")
ENDPOINT_ZONE = Policy.for_endpoint(ENDPOINT).zone


@pytest.fixture(autouse=True)
def seal_keys(monkeypatch):
    """Links are sealed with the app's keys: give this process some (and forget them afterwards)."""
    monkeypatch.setenv("SEAL_KEYS", "k1:q6T1bQy3nX9vW2eR5tY8uI0oP4aS7dF1gH3jK6lZ9xc=")
    monkeypatch.setenv("SEAL_ACTIVE_KEY_ID", "k1")
    monkeypatch.setenv("HASH_KEY", "Zm9yLXRoZS1zYW5kYm94LW9ubHktaGFzaC1rZXktMzI=")
    reset_process_state()
    yield
    reset_process_state()


class FakeLedger:
    """The ledger's create-if-absent and etag-conditional merge, in memory."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.index: dict[str, tuple[str, str]] = {}  # message id -> (partition, row)
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self.transactions = 0

    def create(self, region, partition, row, fields):
        with self._lock:
            if (partition, row) in self.rows:
                return None
            self.rows[(partition, row)] = {**fields, "_etag": str(next(self._etags))}
            return self.rows[(partition, row)]["_etag"]

    def merge(self, region, partition, row, fields, etag=None):
        with self._lock:
            current = self.rows.get((partition, row))
            if current is None or (etag and current["_etag"] != etag):
                return None
            current.update(fields, _etag=str(next(self._etags)))
            return current["_etag"]

    def get(self, region, partition, row):
        with self._lock:
            current = self.rows.get((partition, row))
            return dict(current) if current else None

    def index_message(self, region, message_id, partition, row, appointment_end):
        with self._lock:
            self.index[message_id] = (partition, row)

    def unindex_message(self, region, message_id):
        with self._lock:
            self.index.pop(message_id, None)

    def merge_many(self, region, partition, rows):
        """All or nothing, as a Table Storage transaction."""
        with self._lock:
            self.transactions += 1
            if any(self.rows.get((partition, row), {}).get("_etag") != etag for row, _fields, etag in rows):
                return False
            for row, fields, _etag in rows:
                self.rows[(partition, row)].update(fields, _etag=str(next(self._etags)))
            return True

    def as_ledger_row(self, partition: str, row: str) -> LedgerRow:
        """The row as the next run's planning reads it."""
        entity = self.get("americas", partition, row)
        parsed = LedgerRow.from_entity({**entity, "PartitionKey": partition, "RowKey": row})
        return replace(parsed, etag=entity["_etag"])


class FakeAcs:
    """Records every send; answers from a script of outcomes (default: accepted)."""

    def __init__(self, *script: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.script = deque(script)

    def __call__(self, sender, to, text, *, tag, repeatability_id, first_sent):
        self.calls.append({"to": to, "text": text, "tag": tag, "id": repeatability_id, "first_sent": first_sent})
        answer = self.script.popleft() if self.script else "ok"
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer()
        if answer == "ok":
            return SendOutcome(True, f"Outgoing_{len(self.calls)}", 202, "")
        return answer


def appointment(minutes_ahead: int, appointment_id: str = "4822401") -> Appointment:
    start = NOW + timedelta(minutes=minutes_ahead)
    return Appointment(id=appointment_id, status="booked", start=start, end=start + timedelta(minutes=30),
                       patient_id="1", version="1")


def outbound(appt: Appointment, send: Send | None = None, sender: str = ENDPOINT.sms_number,
             to: str = "+13125550100") -> Outbound:
    send = send or Send(Slot("confirmation", appt.start), f"row-{appt.id}")
    endpoint = ENDPOINT.model_copy(update={"sms_number": sender})
    partition = send.existing.partition if send.existing else "ep-20260610"
    return Outbound("americas", endpoint, appt, send, partition, f"visit-{appt.id}", to, "es")


def courier(ledger: FakeLedger, acs: FakeAcs, report: RunReport | None = None, at: datetime = NOW,
            **kwargs: Any) -> Courier:
    return Courier(ledger, report or RunReport(), lambda: at, send=acs, sleep=lambda _s: None, **kwargs)


def test_a_message_is_claimed_sent_once_with_a_stable_id_and_recorded():
    ledger, acs, report = FakeLedger(), FakeAcs(), RunReport()
    message = outbound(appointment(180))
    assert courier(ledger, acs, report).deliver(message) == "sent"
    assert courier(ledger, acs, report).deliver(message) == "in_flight", "a second run cannot claim it again"
    assert len(acs.calls) == 1
    call = acs.calls[0]
    assert call["id"] == repeatability_id(message.tag, 0) and call["first_sent"] == NOW
    assert call["tag"] == "ep-20260610|row-4822401"
    assert "/api/join/" in call["text"] and "4822401" not in call["text"] and call["text"].startswith("Su cita")
    stored = ledger.get("americas", "ep-20260610", "row-4822401")
    assert stored["status"] == "sent" and stored["message_id"] == "Outgoing_1" and stored["generation"] == 0
    assert report.sent_by_kind == {"confirmation": 1}


def test_sends_accepted_and_refused_by_acs_are_counted_by_kind(telemetry):
    ledger = FakeLedger()
    acs = FakeAcs("ok", SendOutcome(False, "", 400, "Invalid recipient"))
    courier(ledger, acs).deliver(outbound(appointment(180)))
    courier(ledger, acs).deliver(outbound(appointment(200, "4822402")))
    assert telemetry.value("connector.sms.sent", kind="confirmation") == 1
    assert telemetry.value("connector.sms.failed", kind="confirmation", stage="send") == 1


class Crash(BaseException):
    """The worker process dying mid-send (after ACS accepted, before the ledger heard)."""


def test_a_run_that_died_after_acs_accepted_is_retried_with_the_same_id_and_first_sent():
    ledger = FakeLedger()
    appt = appointment(180)

    def accepted_then_crash():
        raise Crash

    with pytest.raises(Crash):
        courier(ledger, FakeAcs(accepted_then_crash)).deliver(outbound(appt))
    stale = ledger.as_ledger_row("ep-20260610", "row-4822401")
    assert stale.status == "sending"

    later = NOW + timedelta(minutes=3)  # past the 2-minute lease, inside ACS's 5-minute window
    policy = Policy(True, (1440, 15), None, ENDPOINT_ZONE)
    plan = plan_appointment(appt, [stale], policy, later, lambda slot: "row-4822401")
    [retry] = plan.sends
    assert retry.existing == stale and retry.new_generation is False
    acs = FakeAcs()
    assert courier(ledger, acs, at=later).deliver(outbound(appt, retry)) == "sent"
    assert acs.calls[0]["id"] == repeatability_id("ep-20260610|row-4822401", 0)
    assert acs.calls[0]["first_sent"] == NOW, "ACS sees the original first-sent, so it drops the duplicate"


def test_after_the_window_a_new_generation_gets_a_new_id():
    ledger, appt = FakeLedger(), appointment(180)
    courier(ledger, FakeAcs(DependencyTimeout("slow"), DependencyTimeout("slow"), DependencyTimeout("slow"))) \
        .deliver(outbound(appt))
    unsure = ledger.as_ledger_row("ep-20260610", "row-4822401")
    assert unsure.status == "unsure"
    later = NOW + timedelta(minutes=6)
    [again] = plan_appointment(appt, [unsure], Policy(True, (1440, 15), None, ENDPOINT_ZONE), later,
                               lambda slot: "row-4822401").sends
    acs = FakeAcs()
    courier(ledger, acs, at=later).deliver(outbound(appt, again))
    assert acs.calls[0]["id"] == repeatability_id("ep-20260610|row-4822401", 1) and acs.calls[0]["first_sent"] == later


def test_a_transient_failure_is_retried_in_the_run_with_the_same_id_and_text():
    ledger = FakeLedger()
    acs = FakeAcs(SendOutcome(False, "", 503, "ServiceUnavailable"), "ok")
    assert courier(ledger, acs).deliver(outbound(appointment(180))) == "sent"
    first, second = acs.calls
    assert (first["id"], first["text"], first["first_sent"]) == (second["id"], second["text"], second["first_sent"])


def test_throttling_pauses_the_number_and_leaves_the_message_for_the_next_run():
    ledger, report = FakeLedger(), RunReport()
    bucket = TokenBucket(200)
    assert courier(ledger, FakeAcs(SmsThrottled(30)), report).deliver(outbound(appointment(180)), bucket) == "retry"
    assert ledger.get("americas", "ep-20260610", "row-4822401")["status"] == "retry"
    assert bucket.try_acquire() > 25 and report.carried_over == 1


def test_an_opted_out_recipient_is_recorded_and_not_retried():
    recorded = []

    class OptOuts:
        def record(self, *args):
            recorded.append(args)

    ledger = FakeLedger()
    acs = FakeAcs(SendOutcome(False, "", 400, "Sender blocked for given recipient (opted out)"))
    assert courier(ledger, acs, optouts=OptOuts()).deliver(outbound(appointment(180))) == "opted_out"
    row = ledger.as_ledger_row("ep-20260610", "row-4822401")
    assert row.status == "opted_out" and not row.retryable(NOW + timedelta(hours=1))
    assert recorded == [("americas", ENDPOINT.sms_number, "+13125550100", "opted_out", NOW)]


def test_a_delivery_report_that_beats_the_send_record_keeps_its_status():
    ledger = FakeLedger()

    def accepted_and_reported():
        ledger.merge("americas", "ep-20260610", "row-4822401", {"status": "delivered"})
        return SendOutcome(True, "Outgoing_9", 202, "")

    courier(ledger, FakeAcs(accepted_and_reported)).deliver(outbound(appointment(180)))
    stored = ledger.get("americas", "ep-20260610", "row-4822401")
    assert stored["status"] == "delivered" and stored["message_id"] == "Outgoing_9"


def test_batched_outcomes_are_one_transaction_per_partition_written_when_the_batch_ends():
    ledger, acs = FakeLedger(), FakeAcs()
    sender = courier(ledger, acs)
    messages = [outbound(appointment(180 + n, str(4822400 + n))) for n in range(3)]
    with sender.batched_outcomes():
        for message in messages:
            assert sender.deliver(message) == "sent"
        assert ledger.get("americas", "ep-20260610", "row-4822400")["status"] == "sending", "claimed until written"
    assert ledger.transactions == 1
    assert [ledger.get("americas", "ep-20260610", m.send.row)["status"] for m in messages] == ["sent"] * 3
    assert sender.deliver(messages[0]) == "in_flight" and len(acs.calls) == 3, "each went once"


def test_a_delivery_report_that_beats_a_batched_outcome_keeps_its_status():
    ledger = FakeLedger()

    def accepted_and_reported():
        ledger.merge("americas", "ep-20260610", "row-4822401", {"status": "delivered"})
        return SendOutcome(True, "Outgoing_9", 202, "")

    sender = courier(ledger, FakeAcs("ok", accepted_and_reported))
    with sender.batched_outcomes():
        sender.deliver(outbound(appointment(120, "4822400")))
        sender.deliver(outbound(appointment(180)))
    stored = ledger.get("americas", "ep-20260610", "row-4822401")
    assert stored["status"] == "delivered" and stored["message_id"] == "Outgoing_9"
    assert ledger.get("americas", "ep-20260610", "row-4822400")["status"] == "sent", "the others still recorded"


def test_the_patients_language_wins_over_the_endpoint_default():
    assert pick_language("pt-BR", "es") == "pt-BR"
    assert pick_language("pt", "es") == "pt-BR"
    assert pick_language("", "es") == "es"
    assert pick_language("de", "es") == "es", "an unsupported preference falls back to the endpoint's language"
    assert pick_language("", "") == "en"


# pacing -----------------------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("per_minute", [1, 7, 30, 200, 1000])
def test_a_greedy_sender_never_exceeds_the_limit_in_any_minute(per_minute):
    clock = FakeClock()
    bucket = TokenBucket(per_minute, monotonic=clock.monotonic, sleep=clock.sleep)
    sent: list[float] = []
    while clock.now < 300:
        assert bucket.acquire(deadline=10_000)
        sent.append(clock.now)
    for index, moment in enumerate(sent):
        in_window = sum(1 for other in sent[index:] if other < moment + 60)
        assert in_window <= per_minute
    assert len(sent) >= per_minute * 4, "and it uses most of what the limit allows"


@pytest.mark.parametrize("per_minute", [30, 200, 1000])
def test_a_greedy_sender_uses_at_least_95_percent_of_the_allowed_rate_over_five_minutes(per_minute):
    clock = FakeClock()
    bucket = TokenBucket(per_minute, monotonic=clock.monotonic, sleep=clock.sleep)
    sent = 0
    while clock.now < 300:
        assert bucket.acquire(deadline=10_000)
        sent += 1
    assert sent >= 0.95 * per_minute * 5


def test_the_bucket_gives_up_at_the_deadline_and_honours_a_pause():
    clock = FakeClock()
    bucket = TokenBucket(200, monotonic=clock.monotonic, sleep=clock.sleep)
    assert all(bucket.acquire(deadline=0) for _ in range(bucket.capacity))
    assert bucket.acquire(deadline=0) is False
    bucket.pause(10)
    assert bucket.try_acquire() >= 10


def test_what_does_not_fit_carries_over_earliest_appointment_first():
    delivered: list[tuple[str, datetime]] = []

    class Recorder:
        batched_outcomes = staticmethod(contextlib.nullcontext)

        def deliver(self, message, bucket):
            delivered.append((message.sender, message.appointment.start))

    messages = [outbound(appointment(m, str(m)), sender=s) for m in (300, 60, 240, 120, 30, 180, 90)
                for s in ("+18335550101", "+18335550102")]
    report = RunReport()
    buckets = {}
    clock = FakeClock()  # the run's 0.3 s go by on this clock, not on however fast this machine is today
    dispatcher = Dispatcher(Recorder(), report, per_minute=150, deadline=0.3, workers=4, monotonic=clock.monotonic,
                            buckets=lambda sender, rate: buckets.setdefault(
                                sender, TokenBucket(rate, monotonic=clock.monotonic, sleep=clock.sleep)))
    dispatcher.run(messages)
    for sender in ("+18335550101", "+18335550102"):
        starts = [start for who, start in delivered if who == sender]
        assert starts == sorted(starts)[:3] == [NOW + timedelta(minutes=m) for m in (30, 60, 90)]
    assert report.carried_over == 2 * 4


def test_queues_are_per_sending_number_in_start_order():
    messages = [outbound(appointment(m, str(m)), sender=s) for m, s in ((90, "a"), (30, "b"), (60, "a"))]
    queues = queues_by_sender(messages)
    assert {s: [o.appointment.id for o in q] for s, q in queues.items()} == {"a": ["60", "90"], "b": ["30"]}



class FakeEmail:
    """Records every email send; answers from a script (default: accepted, operation id = repeatability id)."""

    def __init__(self, *script: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.script = deque(script)

    def __call__(self, sender, to, content, *, repeatability_id, first_sent):
        self.calls.append({"sender": sender, "to": to, "content": content, "id": repeatability_id,
                           "first_sent": first_sent})
        answer = self.script.popleft() if self.script else "ok"
        if isinstance(answer, Exception):
            raise answer
        return SendOutcome(True, repeatability_id, 202, "") if answer == "ok" else answer


def email_outbound(appt: Appointment) -> Outbound:
    send = Send(Slot("confirmation", appt.start), f"row-email-{appt.id}")
    return Outbound("americas", ENDPOINT, appt, send, "ep-20260610", f"visit-{appt.id}", "pat@example.org", "es",
                    False, "email", "DoNotReply@x.azurecomm.net")


def test_an_email_goes_once_with_its_id_claimed_before_sending_and_retries_reuse_it(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://connector.example")
    # A public URL refuses the published sandbox keys: this deployment has keys of its own.
    monkeypatch.setenv("SEAL_KEYS", "k1:" + base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("HASH_KEY", base64.b64encode(bytes(range(32, 64))).decode())
    reset_process_state()
    ledger, sms, email = FakeLedger(), FakeAcs(), FakeEmail(DependencyTimeout("slow"), "ok")
    claimed_ids = []
    original_create = ledger.create

    def create(region, partition, row, fields):
        claimed_ids.append(fields.get("message_id"))
        return original_create(region, partition, row, fields)

    ledger.create = create
    message = email_outbound(appointment(120))
    status = courier(ledger, sms, send_mail=email).deliver(message)
    assert status == "sent" and sms.calls == [], "an email outbound never goes out as a text"
    first, retry = email.calls
    assert first["id"] == retry["id"] == repeatability_id(message.tag, 0) == claimed_ids[0]
    assert first["first_sent"] == retry["first_sent"] and first["content"] == retry["content"]
    assert first["sender"] == "DoNotReply@x.azurecomm.net" and first["to"] == "pat@example.org"
    assert first["content"].subject == "Su cita virtual está programada"
    assert "https://connector.example/api/unsubscribe/" in first["content"].headers["List-Unsubscribe"]
    row = ledger.get("americas", "ep-20260610", "row-email-" + message.appointment.id)
    assert row["status"] == "sent" and row["channel"] == "email" and row["message_id"] == first["id"]
    assert courier(ledger, sms, send_mail=email).deliver(message) == "in_flight", "a second run gets no claim"
    assert len(email.calls) == 2


def email_keys(monkeypatch) -> None:
    """A public URL refuses the published sandbox keys: this deployment has keys of its own."""
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://connector.example")
    monkeypatch.setenv("SEAL_KEYS", "k1:" + base64.b64encode(bytes(range(32))).decode())
    monkeypatch.setenv("HASH_KEY", base64.b64encode(bytes(range(32, 64))).decode())
    reset_process_state()


def test_an_email_is_indexed_by_its_message_id_before_it_goes_and_a_new_generation_replaces_the_index(monkeypatch):
    email_keys(monkeypatch)
    ledger, indexed_when_sent = FakeLedger(), []

    class Watching(FakeEmail):
        """Notes what the index holds at the moment each email goes to ACS."""

        def __call__(self, sender, to, content, *, repeatability_id, first_sent):
            indexed_when_sent.append(dict(ledger.index))
            return super().__call__(sender, to, content, repeatability_id=repeatability_id, first_sent=first_sent)

    watching = Watching()
    message = email_outbound(appointment(120))
    row_key = ("ep-20260610", "row-email-" + message.appointment.id)
    assert courier(ledger, FakeAcs(), send_mail=watching).deliver(message) == "sent"
    first_id = repeatability_id(message.tag, 0)
    assert indexed_when_sent == [{first_id: row_key}], "a report arriving before the send is recorded finds its row"

    stale = replace(ledger.as_ledger_row(*row_key), status="retry")
    again = replace(message, send=Send(message.send.slot, row_key[1], existing=stale, new_generation=True))
    assert courier(ledger, FakeAcs(), send_mail=watching).deliver(again) == "sent"
    second_id = repeatability_id(message.tag, 1)
    assert ledger.index == {second_id: row_key}, "the first generation's id no longer finds the row"
    assert ledger.get("americas", *row_key)["message_id"] == second_id


def test_a_text_is_not_indexed(monkeypatch):
    ledger = FakeLedger()
    assert courier(ledger, FakeAcs()).deliver(outbound(appointment(180))) == "sent"
    assert ledger.index == {}, "texts carry their tag back; only emails need the index"


def test_emails_are_counted_sent_failed_and_throttled_under_their_own_metrics(monkeypatch, telemetry):
    email_keys(monkeypatch)
    ledger = FakeLedger()
    email = FakeEmail("ok", SendOutcome(False, "", 400, "Invalid recipient"), SmsThrottled(30.0))
    for minutes, appointment_id in ((120, "1"), (130, "2"), (140, "3")):
        courier(ledger, FakeAcs(), send_mail=email).deliver(email_outbound(appointment(minutes, appointment_id)))
    assert telemetry.value("connector.email.sent", kind="confirmation") == 1
    assert telemetry.value("connector.email.failed", kind="confirmation", stage="send") == 1
    assert telemetry.value("connector.email.throttled", kind="confirmation") == 1
    assert telemetry.value("connector.sms.sent", kind="confirmation") == 0, "an email is not counted as a text"
    assert telemetry.value("connector.sms.failed", kind="confirmation", stage="send") == 0


def test_a_throttled_text_is_counted_throttled(telemetry):
    courier(FakeLedger(), FakeAcs(SmsThrottled(12.0))).deliver(outbound(appointment(180)))
    assert telemetry.value("connector.sms.throttled", kind="confirmation") == 1
    assert telemetry.value("connector.sms.sent", kind="confirmation") == 0
