"""Near and far parts of the look-ahead window: every booking is seen within 15 minutes, every reminder on time."""

from datetime import UTC, datetime, timedelta

from shared.notifications.windows import merged, search_windows, searches_whole_window

LOOKAHEAD = timedelta(hours=26)
MARGIN = timedelta(minutes=5)
OFFSETS = (1440, 120, 15)
BEGIN = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # a fixed clock: the timer runs at :00, :05, :10, ...
RUNS = [BEGIN + timedelta(minutes=5 * n) for n in range(12 * 28)]


def searched(run: datetime, start: datetime, end: datetime) -> bool:
    """Whether the run's searches return the visit (Cerner: it starts at or after a range's start, ends before
    its end)."""
    return any(low <= start and end < high for low, high in search_windows(run, LOOKAHEAD, OFFSETS, MARGIN))


def first_run_seeing(after: datetime, start: datetime, minutes: int = 30) -> datetime | None:
    end = start + timedelta(minutes=minutes)
    return next((run for run in RUNS if run >= after and searched(run, start, end)), None)


def test_a_booking_anywhere_in_the_window_is_seen_within_15_minutes():
    for booked_minute in range(60):
        booked = BEGIN + timedelta(minutes=booked_minute, seconds=30)
        start = booked + timedelta(minutes=20)
        while start + timedelta(minutes=30) < booked + LOOKAHEAD:
            seen = first_run_seeing(booked, start)
            assert seen is not None and seen - booked <= timedelta(minutes=15), (booked, start, seen)
            start += timedelta(minutes=7)


def test_each_reminder_is_seen_by_the_first_run_after_it_falls_due():
    for offset in OFFSETS:
        for minute in range(0, 24 * 60, 3):
            start = BEGIN + timedelta(hours=2, minutes=minute)
            for length in (15, 60, 115):
                due = start - timedelta(minutes=offset)
                if due < BEGIN:
                    continue
                first_after_due = next(run for run in RUNS if run >= due)
                assert searched(first_after_due, start, start + timedelta(minutes=length)), (offset, start, length)


def test_the_runs_between_whole_window_runs_search_a_third_of_it():
    whole = [run for run in RUNS if searches_whole_window(run)]
    assert len(whole) == len(RUNS) // 2  # with the timer every 5 minutes: every other run
    partial = RUNS[1]
    assert not searches_whole_window(partial)
    covered = sum((high - low for low, high in search_windows(partial, LOOKAHEAD, OFFSETS, MARGIN)), timedelta())
    assert covered < (LOOKAHEAD + MARGIN) / 2.5
    assert search_windows(RUNS[0], LOOKAHEAD, OFFSETS, MARGIN) == [(RUNS[0] - MARGIN, RUNS[0] + LOOKAHEAD)]


def test_ranges_are_joined_in_order_and_clipped_to_the_window():
    now = RUNS[1]
    windows = search_windows(now, timedelta(hours=3), (1440, 15), MARGIN)
    assert windows == [(now - MARGIN, now + timedelta(hours=3))]  # the 24-hour band lies beyond a 3-hour window
    assert merged([(now, now + timedelta(hours=1)), (now - MARGIN, now), (now, now)]) == [
        (now - MARGIN, now + timedelta(hours=1))]
