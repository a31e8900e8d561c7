"""Reminder windows and quiet hours in the endpoint's time zone, across midnight and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.notifications.timing import QuietHours, current_reminder, defer_until, normalized_offsets

CHICAGO = ZoneInfo("America/Chicago")
START = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def at(minutes_before_start: float) -> datetime:
    return START - timedelta(minutes=minutes_before_start)


@pytest.mark.parametrize(("minutes_before", "expected"), [
    (24 * 60 + 1, None),  # not yet due
    (24 * 60, 1440),  # due on the dot
    (600, 1440),  # late, but still the latest reminder due
    (15.01, 1440),
    (15, 15),  # the 15-minute reminder takes over; the day-before one is never sent after this
    (1, 15),
    (0, None),  # the appointment started: nothing, ever
    (-30, None),
])
def test_each_reminder_is_current_from_its_due_time_until_the_next_one(minutes_before, expected):
    assert current_reminder((1440, 15), START, at(minutes_before)) == expected


def test_offsets_are_positive_distinct_and_largest_first():
    assert normalized_offsets([15, 1440, 15, 0, -5, 60]) == (1440, 60, 15)


def test_quiet_hours_parse_and_span_midnight():
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet == QuietHours(time(21), time(8))
    assert quiet.contains(time(23, 30)) and quiet.contains(time(0)) and quiet.contains(time(7, 59))
    assert not quiet.contains(time(8)) and not quiet.contains(time(20, 59))
    assert QuietHours.parse("") is None and QuietHours.parse("9pm-8am") is None
    assert QuietHours.parse("08:00-08:00") is None


def test_daytime_quiet_hours_do_not_wrap():
    quiet = QuietHours.parse("12:00-13:30")
    assert quiet.contains(time(12, 45)) and not quiet.contains(time(23))


def test_quiet_period_ends_at_local_eight_in_summer_and_winter():
    quiet = QuietHours.parse("21:00-08:00")
    summer = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 23:00 CDT (UTC-5)
    winter = datetime(2026, 1, 15, 5, 0, tzinfo=UTC)  # 23:00 CST (UTC-6)
    assert quiet.end_after(summer, CHICAGO) == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    assert quiet.end_after(winter, CHICAGO) == datetime(2026, 1, 15, 14, 0, tzinfo=UTC)
    assert quiet.end_after(datetime(2026, 7, 1, 18, 0, tzinfo=UTC), CHICAGO) is None  # 13:00 local


def test_quiet_night_across_the_spring_forward_change_ends_at_eight_daylight_time():
    quiet = QuietHours.parse("21:00-08:00")
    evening = datetime(2026, 3, 8, 4, 0, tzinfo=UTC)  # Sat 22:00 CST; clocks jump 02:00 → 03:00 that night
    end = quiet.end_after(evening, CHICAGO)
    assert end == datetime(2026, 3, 8, 13, 0, tzinfo=UTC)  # 08:00 CDT, a night one hour shorter
    assert end.astimezone(CHICAGO).hour == 8


def test_quiet_night_across_the_fall_back_change_ends_at_eight_standard_time():
    quiet = QuietHours.parse("21:00-08:00")
    repeated_hour = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 CDT, the first of two 01:30s
    assert quiet.end_after(repeated_hour, CHICAGO) == datetime(2026, 11, 1, 14, 0, tzinfo=UTC)  # 08:00 CST


def test_quiet_hours_ending_inside_the_skipped_spring_hour_still_end():
    quiet = QuietHours.parse("23:00-02:30")  # 02:30 does not exist on 2026-03-08 in Chicago
    end = quiet.end_after(datetime(2026, 3, 8, 6, 0, tzinfo=UTC), CHICAGO)  # 00:00 CST
    assert end is not None and datetime(2026, 3, 8, 6, 0, tzinfo=UTC) < end <= datetime(2026, 3, 8, 8, 30, tzinfo=UTC)


def test_a_message_in_quiet_hours_waits_until_they_end_when_the_visit_is_later():
    quiet = QuietHours.parse("21:00-08:00")
    night = datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # 23:00 CDT
    morning_visit = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)  # 10:00 CDT
    assert defer_until(night, morning_visit, quiet, CHICAGO) == datetime(2026, 7, 1, 13, 0, tzinfo=UTC)


def test_a_message_about_a_visit_inside_quiet_hours_goes_now():
    quiet = QuietHours.parse("21:00-08:00")
    early = datetime(2026, 7, 1, 12, 15, tzinfo=UTC)  # 07:15 CDT
    visit = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)  # 07:30 CDT: before the quiet hours end
    assert defer_until(early, visit, quiet, CHICAGO) is None
    just_after = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)  # 08:05: too close to the end for a deferral to help
    assert defer_until(early, just_after, quiet, CHICAGO) is None


def test_no_quiet_hours_or_daytime_never_defers():
    assert defer_until(datetime(2026, 7, 1, 4, 0, tzinfo=UTC), START, None, CHICAGO) is None
    quiet = QuietHours.parse("21:00-08:00")
    assert defer_until(datetime(2026, 7, 1, 18, 0, tzinfo=UTC), START, quiet, CHICAGO) is None
