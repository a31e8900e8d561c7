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


def test_texts_and_emails_are_counted_side_by_side_by_status():
    counted = sms.summarize([*MESSAGES, message("reminder", "delivered", 0, channel="email"),
                             message("confirmation", "failed", 1, channel="email")],
                            T0 - timedelta(days=7), T0 + timedelta(hours=1), 7)
    assert counted.by_channel["email"] == {"delivered": 1, "sent": 0, "failed": 1, "opted_out": 0}
    assert sum(counted.by_channel["sms"].values()) == len(MESSAGES)
    assert list(sms.summarize([], T0 - timedelta(days=7), T0, 7).by_channel) == ["sms", "email"], "both, even at 0"


CALLER = auth.Caller("tenant", "oid", "Alex Wilber", "Reports Reader", "csrf")


def test_the_page_shows_emails_next_to_texts_in_a_table_with_headers():
    counted = sms.summarize([*MESSAGES, message("reminder", "delivered", 0, channel="email")],
                            T0 - timedelta(days=7), T0 + timedelta(hours=1), 7)
    page = " ".join(sms.as_html(counted, CALLER).split())
    channels = page.split('id="channels-caption"', 1)[1].split("</table>", 1)[0]
    assert '<th scope="row">Text (SMS)</th><td>3</td><td>2</td><td>1</td><td>1</td><td>7</td>' in channels
    assert '<th scope="row">Email</th><td>1</td><td>0</td><td>0</td><td>0</td><td>1</td>' in channels
    assert "<td>Email</td>" in page, "the per-day rows name the channel in words"


def test_a_custom_range_shows_its_last_day_not_the_day_after():
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)  # to=2026-11-30, included
    page = sms.as_html(sms.summarize([], start, end, 30), CALLER, "production")
    assert 'name="from" value="2026-11-01"' in page and 'name="to" value="2026-11-30"' in page
    assert '<option value="production" selected>' in page and 'name="department"' not in page
