"""Which part of the look-ahead window a run searches: the near part every run, the far part every 10 minutes.

Pure logic, no I/O, no clock. Every run searches the next six hours (short-notice bookings, same-day moves and
cancellations, the short reminders) and, for each reminder offset, the band of visits whose reminder falls due
about now (so the 24-hour reminder goes out on time). The rest of the window (new bookings, moves and
cancellations days ahead) is searched by the runs of the first five minutes of every ten; with the timer every 5
minutes that is every other run, so a booking anywhere in the window is seen, and confirmed, within 10 minutes
plus one run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Searched every run. Six hours rather than two costs little more (about 8% of the calls of a 26-hour window per
# ten minutes) and keeps same-day changes, the busiest, on the 5-minute beat.
NEAR = timedelta(hours=6)
FAR_EVERY_MINUTES = 10  # the whole window is searched by the runs of the first 5 minutes of every 10
BAND_BEFORE = timedelta(minutes=FAR_EVERY_MINUTES)  # a reminder that fell due since the last whole-window run
BAND_AFTER = timedelta(hours=2)  # Cerner matches a visit only when it ends inside the range: visits up to 2 h long

Window = tuple[datetime, datetime]  # [start, end): visits that start at or after start and end before end


def searches_whole_window(now: datetime) -> bool:
    """Whether this run searches the whole look-ahead window (the first 5 minutes of every 10)."""
    return now.minute % FAR_EVERY_MINUTES < 5


def search_windows(now: datetime, lookahead: timedelta, offsets: tuple[int, ...], margin: timedelta) -> list[Window]:
    """The date ranges this run searches, in order and not overlapping, all within [now - margin, now + lookahead)."""
    whole = (now - margin, now + lookahead)
    if searches_whole_window(now):
        return [whole]
    pieces = [(now - margin, now + NEAR)]
    pieces += [(now + timedelta(minutes=offset) - BAND_BEFORE - margin, now + timedelta(minutes=offset) + BAND_AFTER)
               for offset in offsets]
    return merged([(max(start, whole[0]), min(end, whole[1])) for start, end in pieces])


def merged(windows: list[Window]) -> list[Window]:
    """Overlapping or touching ranges joined, empty ones dropped, in order."""
    joined: list[Window] = []
    for start, end in sorted(w for w in windows if w[0] < w[1]):
        if joined and start <= joined[-1][1]:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined
