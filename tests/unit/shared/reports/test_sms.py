"""The SMS report's counting: types (notices group reschedules and cancellations), statuses, days, CSV and page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import NotSignedIn
from shared.portal import auth
from shared.reports import sms

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def message(kind: str, status: str | None, days_ago: int = 0, channel: str = "sms") -> dict:
    return {"kind": kind, "status": status, "channel": channel, "sent_at": T0 - timedelta(days=days_ago)}


MESSAGES = [message("confirmation", "delivered"), message("confirmation", "failed"), message("reminder", "sent"),
            message("reminder", "delivered", 1), message("cancellation", "opted_out", 1),
            message("reschedule", "delivered", 1), message("link", None)]


def report() -> sms.SmsReport:
    return sms.summarize(MESSAGES, T0 - timedelta(days=7), T0 + timedelta(hours=1), 7)


def test_messages_are_counted_by_type_and_status_with_reschedules_and_cancellations_as_notices():
    counted = report()
    assert counted.by_type["confirmation"] == {"delivered": 1, "sent": 0, "failed": 1, "opted_out": 0}
    assert counted.by_type["notice"] == {"delivered": 1, "sent": 0, "failed": 0, "opted_out": 1}
    assert counted.by_type["link"]["sent"] == 1  # no status yet counts as sent without a report
    assert sum(sum(s.values()) for s in counted.by_type.values()) == len(MESSAGES)


def test_every_day_of_the_range_has_a_bar_and_the_bars_add_up():
    counted = report()
    days = {d.day: d for d in counted.per_day}
    assert len(days) == 8 and sum(d.total for d in days.values()) == len(MESSAGES)
    assert (days["2026-11-20"].delivered, days["2026-11-20"].failed, days["2026-11-20"].sent) == (1, 1, 2)
    assert days["2026-11-19"].opted_out == 1 and days["2026-11-14"].total == 0


def test_rows_are_per_day_channel_and_type_so_another_channel_adds_rows_not_columns():
    counted = sms.summarize([*MESSAGES, message("reminder", "delivered", 0, channel="email")],
                            T0 - timedelta(days=7), T0 + timedelta(hours=1), 7)
    assert counted.channels == ["email", "sms"]
    keys = [(r.day, r.channel, r.type) for r in counted.rows]
    assert ("2026-11-20", "email", "reminder") in keys and ("2026-11-20", "sms", "reminder") in keys
    assert len(keys) == len(set(keys))


def test_csv_has_one_header_and_the_same_counts():
    rows = list(csv.reader(io.StringIO(sms.as_csv(report()).lstrip("\ufeff"))))
    assert rows[0] == list(sms.CSV_COLUMNS)
    assert sum(int(r[-1]) for r in rows[1:]) == len(MESSAGES)
    assert ["2026-11-20", "sms", "Confirmation", "1", "0", "1", "0", "2"] in rows


def test_the_view_needs_a_portal_session():
    with pytest.raises(NotSignedIn):
        sms.sms_report_view(auth.Credentials(None), {}, "json")
