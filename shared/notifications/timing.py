"""When a message may go out: reminder windows and quiet hours, in the endpoint's own time zone.

Functions on Linux run in UTC and ignore WEBSITE_TIME_ZONE, so every local time is computed here with zoneinfo.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

# A message deferred by quiet hours must still reach the patient this long before the start, else it goes now.
QUIET_LEAD = timedelta(minutes=10)
_QUIET = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class QuietHours:
    """A daily local period without texts, such as 21:00-08:00 (it may span midnight)."""

    begin: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """'21:00-08:00' → QuietHours; '' or anything malformed (the portal validates) → None."""
        match = _QUIET.match((text or "").strip())
        if match is None:
            return None
        hours = [int(part) for part in match.groups()]
        quiet = cls(time(hours[0], hours[1]), time(hours[2], hours[3]))
        return None if quiet.begin == quiet.end else quiet

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time lies in the quiet period."""
        if self.begin < self.end:
            return self.begin <= local < self.end
        return local >= self.begin or local < self.end

    def end_after(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet period that `now` falls in ends (UTC), or None when `now` is not quiet."""
        local = now.astimezone(zone)
        if not self.contains(local.time()):
            return None
        end = datetime.combine(local.date(), self.end, tzinfo=zone).astimezone(now.tzinfo)
        if end <= now:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone).astimezone(now.tzinfo)
        return end


def defer_until(now: datetime, start: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime | None:
    """Until when a message about an appointment at `start` waits, or None to send it now.

    Quiet hours hold every kind of message until they end, unless the appointment itself starts before then
    (plus QUIET_LEAD): a patient booked at 07:30 needs the 07:15 reminder even inside 21:00-08:00.
    """
    if quiet is None:
        return None
    end = quiet.end_after(now, zone)
    if end is None or end + QUIET_LEAD > start:
        return None
    return end


def normalized_offsets(offsets: Iterable[int]) -> tuple[int, ...]:
    """Reminder offsets in minutes before the start: positive, distinct, largest first."""
    return tuple(sorted({int(o) for o in offsets if int(o) > 0}, reverse=True))


def reminder_due_at(start: datetime, offset_minutes: int) -> datetime:
    return start - timedelta(minutes=offset_minutes)


def current_reminder(offsets: tuple[int, ...], start: datetime, now: datetime) -> int | None:
    """The reminder whose window holds `now`: from its due time until the next reminder's (or the start).

    A reminder missed while the job was down still goes out late, but only while it is the latest one due and
    the appointment has not started; an older reminder is never sent after a newer one became due.
    """
    for index, offset in enumerate(offsets):
        closes = reminder_due_at(start, offsets[index + 1]) if index + 1 < len(offsets) else start
        if reminder_due_at(start, offset) <= now < closes:
            return offset
    return None
