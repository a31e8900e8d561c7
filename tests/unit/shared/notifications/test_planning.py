"""What is due for one appointment, given its ledger rows: confirmations, notices, reminders, retries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.fhir import Appointment
from shared.notifications.planning import LedgerRow, Plan, Policy, Slot, plan_appointment
from shared.notifications.timing import QuietHours

NOW = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)  # 10:00 in Chicago
POLICY = Policy(confirmations_on=True, offsets=(1440, 15), quiet=None, zone=ZoneInfo("America/Chicago"))


def key(slot: Slot) -> str:
    return "|".join(slot.key_parts)


def keys(slot: Slot) -> tuple[str, ...]:
    return (key(slot),)


def appointment(start: datetime, status: str = "booked", version: str = "1") -> Appointment:
    return Appointment(id="4822401", status=status, start=start, end=start + timedelta(minutes=30),
                       patient_id="12724066", version=version)


def row(slot: Slot, status: str = "sent", claimed: datetime = NOW, **fields) -> LedgerRow:
    values = {"start_at": slot.start, "due_at": slot.due_at or claimed, "claimed_at": claimed, "first_sent": claimed,
              "attempt_at": claimed, "appointment_end": slot.start + timedelta(minutes=30), "etag": "e"}
    return LedgerRow(partition="p", row=key(slot), kind=slot.kind, status=status, **{**values, **fields})


def plan(appt: Appointment, rows: list[LedgerRow], now: datetime = NOW, policy: Policy = POLICY) -> Plan:
    return plan_appointment(appt, rows, policy, now, keys)


def kinds(result: Plan) -> list[str]:
    return [send.slot.kind for send in result.sends]


def test_a_new_booking_gets_its_confirmation_and_the_late_day_before_reminder_is_covered_by_it():
    start = NOW + timedelta(hours=3)
    first = plan(appointment(start), [])
    assert kinds(first) == ["confirmation"] and first.sends[0].existing is None

    confirmed = [row(Slot("confirmation", start))]
    assert kinds(plan(appointment(start), confirmed)) == []  # the 24 h reminder is due, but the confirmation said it
    fifteen = plan(appointment(start), confirmed, now=start - timedelta(minutes=15))
    assert kinds(fifteen) == ["reminder"] and fifteen.sends[0].slot.offset == 15


def test_a_booking_made_days_ahead_gets_each_reminder_at_its_time():
    start = NOW + timedelta(days=2)
    confirmed = [row(Slot("confirmation", start))]
    assert kinds(plan(appointment(start), confirmed, now=start - timedelta(hours=24, minutes=1))) == []
    day_before = plan(appointment(start), confirmed, now=start - timedelta(hours=24))
    assert [(s.slot.kind, s.slot.offset) for s in day_before.sends] == [("reminder", 1440)]
    reminded = [*confirmed, row(Slot("reminder", start, offset=1440), claimed=start - timedelta(hours=24))]
    assert kinds(plan(appointment(start), reminded, now=start - timedelta(hours=2))) == []


def test_nothing_is_ever_sent_once_the_appointment_started():
    start = NOW - timedelta(minutes=1)
    assert kinds(plan(appointment(start), [])) == []
    assert kinds(plan(appointment(start, status="cancelled"), [row(Slot("confirmation", start))])) == []


def test_reminders_only_when_confirmations_are_off():
    off = replace(POLICY, confirmations_on=False)
    start = NOW + timedelta(hours=3)
    result = plan(appointment(start), [], policy=off)
    assert [(s.slot.kind, s.slot.offset) for s in result.sends] == [("reminder", 1440)]  # late, still useful
    moved = [row(Slot("reminder", start, offset=1440))]
    later = start + timedelta(hours=2)
    assert [(s.slot.kind, s.slot.offset) for s in plan(appointment(later, version="2"), moved, policy=off).sends] \
        == [("reminder", 1440)], "no notice when confirmations are off, but the reminder follows the new time"
    assert kinds(plan(appointment(start, status="cancelled"), moved, policy=off)) == []


def test_a_move_after_the_confirmation_gets_one_notice_per_move():
    first, second = NOW + timedelta(hours=3), NOW + timedelta(hours=5)
    rows = [row(Slot("confirmation", first), claimed=NOW - timedelta(hours=1))]
    notice = plan(appointment(second, version="2"), rows)
    assert kinds(notice) == ["reschedule"] and notice.sends[0].slot.start == second
    rows.append(row(notice.sends[0].slot, claimed=NOW))
    assert kinds(plan(appointment(second, version="3"), rows)) == [], "a later version at the same time is no move"
    back = plan(appointment(first, version="4"), rows, now=NOW + timedelta(minutes=5))
    assert kinds(back) == ["reschedule"] and back.sends[0].slot.start == first, "moving back is news too"


def test_a_move_after_a_confirmation_that_never_went_out_brings_no_notice():
    start = NOW + timedelta(hours=4)
    skipped = [row(Slot("confirmation", NOW + timedelta(hours=2)), status="skipped")]
    assert kinds(plan(appointment(start, version="2"), skipped)) == ["reminder"], "the patient was never told"


def test_a_cancellation_notice_once_and_only_when_the_patient_was_told():
    start = NOW + timedelta(hours=3)
    cancelled = appointment(start, status="cancelled")
    assert kinds(plan(cancelled, [])) == [], "never told, so nothing to take back"
    told = [row(Slot("confirmation", start))]
    assert kinds(plan(cancelled, told)) == ["cancellation"]
    done = [*told, row(Slot("cancellation", start))]
    assert kinds(plan(cancelled, done, now=start - timedelta(minutes=15))) == [], "nothing after the notice"


def test_quiet_hours_hold_a_confirmation_until_morning():
    quiet = replace(POLICY, quiet=QuietHours.parse("21:00-08:00"))
    night = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)  # 23:00 CDT
    result = plan(appointment(datetime(2026, 6, 10, 16, 0, tzinfo=UTC)), [], now=night, policy=quiet)
    assert kinds(result) == [] and result.deferred == 1
    early_visit = plan(appointment(datetime(2026, 6, 10, 5, 0, tzinfo=UTC)), [], now=night, policy=quiet)
    assert kinds(early_visit) == ["confirmation"], "a visit inside the quiet hours is confirmed straight away"


def test_a_claim_of_another_running_job_is_left_alone():
    start = NOW + timedelta(hours=3)
    sending = [row(Slot("confirmation", start), status="sending", attempt_at=NOW - timedelta(seconds=30))]
    result = plan(appointment(start), sending)
    assert kinds(result) == [] and result.in_flight == 1


def test_a_crashed_claim_is_retried_with_the_same_id_inside_the_repeatability_window():
    start = NOW + timedelta(hours=3)
    crashed = row(Slot("confirmation", start), status="sending", claimed=NOW - timedelta(minutes=3))
    result = plan(appointment(start), [crashed])
    assert kinds(result) == ["confirmation"]
    assert result.sends[0].existing == crashed and result.sends[0].new_generation is False


def test_an_unknown_outcome_older_than_the_window_starts_a_new_generation():
    start = NOW + timedelta(hours=3)
    unsure = row(Slot("confirmation", start), status="unsure", claimed=NOW - timedelta(minutes=6))
    assert plan(appointment(start), [unsure]).sends[0].new_generation is True
    throttled = row(Slot("confirmation", start), status="retry", claimed=NOW - timedelta(seconds=10))
    assert plan(appointment(start), [throttled]).sends[0].new_generation is True, "a 429 was never accepted"


def test_a_message_that_keeps_failing_is_given_up():
    start = NOW + timedelta(hours=3)
    tired = row(Slot("confirmation", start), status="retry", generation=4)
    result = plan(appointment(start), [tired])
    assert kinds(result) == [] and [(status, why) for _, status, why in result.closes] == [("skipped", "gave_up")]


def test_an_unsent_reminder_for_a_moved_appointment_is_closed_and_replaced():
    old, new = NOW + timedelta(minutes=10), NOW + timedelta(hours=5)
    confirmed = row(Slot("confirmation", old), claimed=NOW - timedelta(hours=2))
    pending = row(Slot("reminder", old, offset=15), status="retry", claimed=NOW - timedelta(minutes=5))
    result = plan(appointment(new, version="2"), [confirmed, pending])
    assert [(status, why) for _, status, why in result.closes] == [("skipped", "no_longer_due")]
    assert kinds(result) == ["reschedule"]


def test_a_confirmation_with_unknown_outcome_counts_as_told_when_the_visit_is_cancelled():
    start = NOW + timedelta(hours=3)
    unsure = row(Slot("confirmation", start), status="unsure", claimed=NOW - timedelta(minutes=10))
    result = plan(appointment(start, status="cancelled"), [unsure])
    assert [(status, why) for _, status, why in result.closes] == [("lost", "no_longer_due")]
    assert kinds(result) == ["cancellation"], "it may have reached the patient: tell them it is off"
    never = row(Slot("confirmation", start), status="retry")
    assert kinds(plan(appointment(start, status="cancelled"), [never])) == [], "a 429'd text never arrived"


def test_rows_of_a_visit_moved_later_are_kept_until_its_new_end():
    old, new = NOW + timedelta(hours=1), NOW + timedelta(days=1)
    confirmed = row(Slot("confirmation", old))
    assert plan(appointment(new, version="2"), [confirmed]).stale_ends == [confirmed]


def test_rows_made_before_a_hash_key_rotation_still_count_so_nothing_is_sent_twice():
    def rotated(slot: Slot) -> tuple[str, ...]:
        return ("h2." + key(slot), key(slot))

    start = NOW + timedelta(days=2)
    confirmed_before = [row(Slot("confirmation", start))]  # its RowKey is the old key's
    assert kinds(plan_appointment(appointment(start), confirmed_before, POLICY, NOW, rotated)) == []
    reminder = plan_appointment(appointment(start), confirmed_before, POLICY, start - timedelta(hours=24), rotated)
    assert [s.row for s in reminder.sends] == ["h2." + key(Slot("reminder", start, offset=1440))]
    day_before = start - timedelta(hours=24)
    reminded_before = [*confirmed_before, row(Slot("reminder", start, offset=1440), claimed=day_before)]
    later = plan_appointment(appointment(start), reminded_before, POLICY, start - timedelta(hours=20), rotated)
    assert kinds(later) == []


def test_rows_of_a_visit_that_kept_its_end_or_ends_earlier_are_left_alone():
    start = NOW + timedelta(hours=1)
    confirmed = row(Slot("confirmation", start))
    unknown_end = replace(row(Slot("reminder", start, offset=15)), appointment_end=None)
    assert plan(appointment(start), [confirmed, unknown_end]).stale_ends == []
    assert plan(appointment(start - timedelta(minutes=30), version="2"), [confirmed]).stale_ends == []


# --- reading ledger rows and endpoint settings ---------------------------------------------------------------------


def test_a_ledger_entity_is_read_field_by_field_with_its_etag():
    from azure.data.tables import TableEntity

    entity = TableEntity({
        "PartitionKey": "ep-20260610", "RowKey": "r1", "kind": "reminder", "status": "retry",
        "start_at": NOW + timedelta(hours=2), "due_at": NOW + timedelta(hours=1, minutes=45),
        "claimed_at": NOW - timedelta(minutes=3), "first_sent": NOW - timedelta(minutes=2),
        "attempt_at": NOW - timedelta(minutes=1), "appointment_end": NOW + timedelta(hours=2, minutes=30),
        "generation": 2, "attempts": 3, "channel": "email",
    })
    entity._metadata = {"etag": 'W/"datetime\'2026-06-10T15%3A00%3A00Z\'"'}
    parsed = LedgerRow.from_entity(entity)
    assert parsed == LedgerRow(
        partition="ep-20260610", row="r1", kind="reminder", status="retry", start_at=NOW + timedelta(hours=2),
        due_at=NOW + timedelta(hours=1, minutes=45), claimed_at=NOW - timedelta(minutes=3),
        first_sent=NOW - timedelta(minutes=2), attempt_at=NOW - timedelta(minutes=1),
        appointment_end=NOW + timedelta(hours=2, minutes=30), generation=2, attempts=3, channel="email",
        etag='W/"datetime\'2026-06-10T15%3A00%3A00Z\'"',
    )


def test_a_sparse_ledger_entity_reads_as_empty_defaults():
    parsed = LedgerRow.from_entity({"PartitionKey": "p", "RowKey": "r"})
    assert parsed == LedgerRow(partition="p", row="r", kind="", status="")
    assert (parsed.generation, parsed.attempts, parsed.etag, parsed.channel) == (0, 0, "", "sms")


def test_the_policy_is_read_from_the_endpoints_settings():
    from shared.storage.config import FhirEndpoint

    endpoint = FhirEndpoint(base_url="https://fhir.example/r4/t", environment="test", confirmations_on=False,
                            reminder_offsets=[15, 1440, 15, 0], quiet_hours="21:00-08:00", time_zone="America/Denver")
    assert Policy.for_endpoint(endpoint) == Policy(confirmations_on=False, offsets=(1440, 15),
                                                   quiet=QuietHours.parse("21:00-08:00"),
                                                   zone=ZoneInfo("America/Denver"))


def test_ledger_times_are_written_in_utc_to_the_second():
    from shared.notifications.planning import iso

    assert iso(datetime(2026, 6, 10, 10, 5, 7, 900, tzinfo=ZoneInfo("America/Chicago"))) == "2026-06-10T15:05:07Z"


def test_a_claim_is_in_flight_for_less_than_the_lease_and_retryable_from_then_on():
    from shared.notifications.planning import LEASE

    claim = row(Slot("confirmation", NOW + timedelta(hours=3)), status="sending", attempt_at=NOW)
    assert claim.in_flight(NOW + LEASE - timedelta(seconds=1)) and not claim.retryable(NOW)
    assert not claim.in_flight(NOW + LEASE) and claim.retryable(NOW + LEASE)


# --- retries of rows left unsent, and the edges of each rule --------------------------------------------------------


def closes(result: Plan) -> list[tuple[str, str]]:
    return [(status, why) for _, status, why in result.closes]


def test_nothing_is_sent_or_retried_for_a_visit_starting_this_very_minute():
    throttled = row(Slot("confirmation", NOW), status="retry")
    result = plan(appointment(NOW), [throttled])
    assert kinds(result) == [] and closes(result) == [("skipped", "no_longer_due")]
    assert kinds(plan(appointment(NOW), [])) == [], "no confirmation of a visit that is starting"


def test_each_new_message_announces_the_visits_start():
    start = NOW + timedelta(hours=3)
    assert [s.slot.start for s in plan(appointment(start), []).sends] == [start]
    told = [row(Slot("confirmation", start))]
    assert [s.slot.start for s in plan(appointment(start, status="cancelled"), told).sends] == [start]


def test_a_crashed_confirmation_repeats_its_first_text_and_a_fresh_one_tells_the_new_time():
    first, moved = NOW + timedelta(hours=3), NOW + timedelta(hours=5)
    crashed = row(Slot("confirmation", first), status="sending", claimed=NOW - timedelta(minutes=3))
    [retry] = plan(appointment(moved, version="2"), [crashed]).sends
    assert (retry.new_generation, retry.slot.start) == (False, first), "the same id must carry the same text"
    throttled = row(Slot("confirmation", first), status="retry", claimed=NOW - timedelta(minutes=3))
    [fresh] = plan(appointment(moved, version="2"), [throttled]).sends
    assert (fresh.new_generation, fresh.slot.start) == (True, moved), "a new text tells the time as it is now"


def test_an_unknown_outcome_keeps_its_id_for_less_than_the_repeatability_window():
    from shared.notifications.planning import REPEATABILITY_WINDOW

    start = NOW + timedelta(hours=3)
    almost = NOW - REPEATABILITY_WINDOW + timedelta(seconds=1)
    inside = row(Slot("confirmation", start), status="unsure", claimed=almost)
    assert plan(appointment(start), [inside]).sends[0].new_generation is False
    expired = row(Slot("confirmation", start), status="unsure", claimed=NOW - REPEATABILITY_WINDOW)
    assert plan(appointment(start), [expired]).sends[0].new_generation is True, "ACS may have forgotten the id"


def test_a_message_gets_five_generations_before_it_is_given_up():
    start = NOW + timedelta(hours=3)
    fourth = row(Slot("confirmation", start), status="retry", generation=3)
    result = plan(appointment(start), [fourth])
    assert [s.slot for s in result.sends] == [Slot("confirmation", start)] and result.closes == []


def test_quiet_hours_hold_each_fresh_retry_but_not_one_that_finishes_an_accepted_send():
    quiet = replace(POLICY, quiet=QuietHours.parse("21:00-08:00"))
    night = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # 05:00 in Chicago, while it is day in UTC
    start = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
    confirmation = row(Slot("confirmation", start), status="retry", claimed=night - timedelta(hours=1))
    reminder = row(Slot("reminder", start, offset=1440), status="retry", claimed=night - timedelta(hours=1))
    held = plan(appointment(start), [confirmation, reminder], now=night, policy=quiet)
    assert kinds(held) == [] and held.deferred == 2 and held.closes == []
    crashed = row(Slot("confirmation", start), status="sending", claimed=night - timedelta(minutes=3))
    assert kinds(plan(appointment(start), [crashed], now=night, policy=quiet)) == ["confirmation"]
    fresh = plan(appointment(start), [], now=night, policy=quiet)
    assert kinds(fresh) == [] and fresh.deferred == 1, "the endpoint's night, not UTC's"


def test_a_throttled_reminder_is_retried_while_it_is_the_current_one_and_closed_after():
    start = NOW + timedelta(hours=5)
    day_before = row(Slot("reminder", start, offset=1440), status="retry", claimed=start - timedelta(hours=24))
    confirmed = row(Slot("confirmation", start), claimed=start - timedelta(days=3))
    retry = plan(appointment(start), [confirmed, day_before])
    assert [(s.slot, s.existing) for s in retry.sends] == [(Slot("reminder", start, offset=1440), day_before)]
    assert retry.closes == []
    fifteen = row(Slot("reminder", start, offset=15), status="retry", claimed=start - timedelta(minutes=15))
    assert [s.slot for s in plan(appointment(start), [confirmed, fifteen], now=start - timedelta(minutes=10)).sends] \
        == [Slot("reminder", start, offset=15)]
    late = plan(appointment(start), [confirmed, day_before], now=start - timedelta(minutes=10))
    assert closes(late) == [("skipped", "no_longer_due")], "the day-before text is never sent 10 minutes before"


def test_a_throttled_reminder_for_the_old_time_is_closed_even_when_its_due_time_fits_the_new_one():
    moved = NOW + timedelta(minutes=10)  # its 15-minute reminder was due five minutes ago
    old = moved - timedelta(minutes=15) + timedelta(minutes=1440)  # whose day-before reminder was due then too
    confirmed = row(Slot("confirmation", old), claimed=NOW - timedelta(days=2))
    stale = row(Slot("reminder", old, offset=1440), status="retry", claimed=NOW - timedelta(minutes=5))
    result = plan(appointment(moved, version="2"), [confirmed, stale])
    assert closes(result) == [("skipped", "no_longer_due")]
    assert kinds(result) == ["reschedule"] and result.sends[0].slot.start == moved


def test_a_throttled_reschedule_notice_is_retried_only_while_it_tells_the_current_time():
    first, second, third = NOW + timedelta(hours=3), NOW + timedelta(hours=5), NOW + timedelta(hours=7)
    confirmed = row(Slot("confirmation", first), claimed=NOW - timedelta(hours=2))
    notice = row(Slot("reschedule", second, version="2"), status="retry", claimed=NOW - timedelta(minutes=1))
    retry = plan(appointment(second, version="2"), [confirmed, notice])
    assert kinds(retry) == ["reschedule"] and retry.sends[0].existing == notice and retry.sends[0].slot.start == second
    moved_again = plan(appointment(third, version="3"), [confirmed, notice])
    assert closes(moved_again) == [("skipped", "no_longer_due")]
    assert [(s.slot.kind, s.slot.start) for s in moved_again.sends] == [("reschedule", third)]
    cancelled = plan(appointment(second, status="cancelled", version="3"), [confirmed, notice])
    assert closes(cancelled) == [("skipped", "no_longer_due")] and kinds(cancelled) == ["cancellation"]
    off = plan(appointment(second, version="2"), [confirmed, notice], policy=replace(POLICY, confirmations_on=False))
    assert closes(off) == [("skipped", "no_longer_due")]


def test_a_throttled_cancellation_is_retried_and_dropped_if_the_visit_is_booked_again():
    start = NOW + timedelta(hours=3)
    confirmed = row(Slot("confirmation", start), claimed=NOW - timedelta(hours=2))
    notice = row(Slot("cancellation", start), status="retry", claimed=NOW - timedelta(minutes=1))
    retry = plan(appointment(start, status="cancelled"), [confirmed, notice])
    assert kinds(retry) == ["cancellation"] and retry.sends[0].existing == notice
    rebooked = plan(appointment(start, version="3"), [confirmed, notice])
    assert closes(rebooked) == [("skipped", "no_longer_due")] and kinds(rebooked) == []
    off = plan(appointment(start, status="cancelled"), [confirmed, notice],
               policy=replace(POLICY, confirmations_on=False))
    assert closes(off) == [("skipped", "no_longer_due")] and kinds(off) == []


def test_moving_back_to_a_time_already_announced_by_a_notice_is_news_again():
    first, second = NOW + timedelta(hours=3), NOW + timedelta(hours=5)
    rows = [row(Slot("confirmation", first), claimed=NOW - timedelta(hours=2)),
            row(Slot("reschedule", second, version="2"), claimed=NOW - timedelta(hours=1)),
            row(Slot("reschedule", first, version="3"), claimed=NOW - timedelta(minutes=30))]
    again = plan(appointment(second, version="4"), rows)
    assert [(s.slot.kind, s.slot.start) for s in again.sends] == [("reschedule", second)]


def test_a_notice_that_was_given_up_is_not_planned_again_as_new():
    first, second = NOW + timedelta(hours=3), NOW + timedelta(hours=5)
    confirmed = row(Slot("confirmation", first), claimed=NOW - timedelta(hours=2))
    given_up = row(Slot("reschedule", second, version="2"), status="skipped", claimed=NOW - timedelta(hours=1))
    assert kinds(plan(appointment(second, version="2"), [confirmed, given_up])) == []


def test_a_notice_claimed_right_at_a_reminders_due_time_stands_in_for_it():
    start = NOW + timedelta(hours=24)
    confirmed = [row(Slot("confirmation", start), claimed=NOW)]  # the day-before reminder fell due that instant
    assert kinds(plan(appointment(start), confirmed, now=NOW + timedelta(minutes=1))) == []


def test_ledger_times_are_utc_whatever_the_machines_zone(monkeypatch):
    import time

    from shared.notifications.planning import iso

    monkeypatch.setenv("TZ", "America/Chicago")
    time.tzset()
    try:
        assert iso(datetime(2026, 6, 10, 15, 5, 7, tzinfo=UTC)) == "2026-06-10T15:05:07Z"
    finally:
        monkeypatch.undo()
        time.tzset()
