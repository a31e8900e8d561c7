"""Usage report computations: who counts as staff, visit start/end, lobby wait, no-shows, totals, CSV and page."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import DependencyFailed, InvalidInput, NotFound, NotSignedIn
from shared.microsoft.graph import AccessPolicyMissing
from shared.portal import auth
from shared.reports import attendance as att
from shared.reports import usage
from shared.storage.config import FhirEndpoint

TENANT = "9b5f1a1e-0000-4000-8000-000000000001"
T0 = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
FIXTURES = Path("/work/shared/fixtures")


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")  # Graph's 7 fractional digits


def staff(*spans: tuple[float, float | None], role: str = "Presenter") -> dict:
    return {"role": role, "emailAddress": "dr.grey@contoso-health.example",
            "identity": {"id": "oid", "displayName": "Dr. Grey", "tenantId": TENANT},
            "attendanceIntervals": [interval(a, b) for a, b in spans]}


def patient(*spans: tuple[float, float | None]) -> dict:
    return {"role": "Attendee", "emailAddress": None,
            "identity": {"id": "guest-1", "displayName": "Typed name", "tenantId": None},
            "attendanceIntervals": [interval(a, b) for a, b in spans]}


def interval(join: float, leave: float | None) -> dict:
    return {"joinDateTime": at(join), "leaveDateTime": at(leave) if leave is not None else None}


def report(*records: dict, end: float = 60) -> dict:
    return {"id": "r", "meetingStartDateTime": at(0), "meetingEndDateTime": at(end), "attendanceRecords": list(records)}


def visit(**fields) -> dict:
    return {"RowKey": "k", "scheduled_start": T0, "scheduled_end": T0 + timedelta(minutes=30), **fields}


# --- who is staff --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record,expected", [
    (staff((0, 1)), True),
    (staff((0, 1), role="Attendee"), True),  # a colleague without a presenter role is still staff
    (patient((0, 1)), False),
    ({"role": "Presenter", "emailAddress": "x@contoso.com", "identity": {"tenantId": None}}, True),
    ({"role": "Attendee", "emailAddress": "guest@fabrikam.example", "identity": {"tenantId": "other-tenant"}}, False),
    ({"role": "Attendee", "emailAddress": "", "identity": {}}, False),
])
def test_staff_are_members_of_the_organization_and_the_patient_is_an_anonymous_guest(record, expected):
    assert att.is_staff(record, TENANT) is expected


def test_the_published_sample_report_with_only_a_presenter_is_no_completed_visit():
    sample = json.loads((FIXTURES / "graph-meetingattendancereport-get-response.json").read_text())
    seen = att.attendance([sample], TENANT)
    assert not seen.completed and seen.patient_joined is None


# --- start, end, lobby wait ----------------------------------------------------------------------------------------


def test_visit_starts_when_staff_and_patient_are_first_together_and_ends_at_the_last_leave():
    seen = att.attendance([report(staff((0, 20)), patient((4, 18)))], TENANT)
    assert seen.completed
    assert seen.meeting_start == T0 + timedelta(minutes=4)
    assert seen.meeting_end == T0 + timedelta(minutes=20)
    assert seen.patient_joined == T0 + timedelta(minutes=4)


def test_staff_alone_before_the_patient_and_the_patient_alone_after_do_not_count():
    # The provider is in 0-5, steps out, is back 10-30; the patient is in from 6 to 35.
    seen = att.attendance([report(staff((0, 5), (10, 30)), patient((6, 35)))], TENANT)
    assert seen.meeting_start == T0 + timedelta(minutes=10)
    assert seen.meeting_end == T0 + timedelta(minutes=35)


def test_sessions_of_the_same_meeting_are_read_together():
    first = report(staff((0, 5)), end=5)  # the provider waited alone; the meeting ended
    second = report(staff((20, 40)), patient((22, 39)), end=40)
    seen = att.attendance([first, second], TENANT)
    assert seen.meeting_start == T0 + timedelta(minutes=22)
    assert seen.meeting_end == T0 + timedelta(minutes=40)


def test_an_interval_without_a_leave_time_ends_with_its_report():
    seen = att.attendance([report(staff((0, None)), patient((3, None)), end=25)], TENANT)
    assert seen.meeting_end == T0 + timedelta(minutes=25)


def test_touching_intervals_are_not_together():
    assert not att.attendance([report(staff((0, 5)), patient((5, 9)))], TENANT).completed


def test_completed_visit_records_times_duration_and_lobby_wait_from_link_opened_to_admitted():
    row = visit(patient_opened_at=T0 + timedelta(minutes=1))
    fields = att.outcome(row, [report(staff((0, 20)), patient((4, 18)))], TENANT, T0 + timedelta(hours=1))
    assert fields == {"status": "completed", "meeting_start": T0 + timedelta(minutes=4),
                      "meeting_end": T0 + timedelta(minutes=20), "duration_seconds": 16 * 60,
                      "lobby_wait_seconds": 3 * 60}


def test_no_lobby_wait_without_the_link_opened_or_when_it_was_opened_after_joining():
    reports = [report(staff((0, 20)), patient((4, 18)))]
    assert "lobby_wait_seconds" not in att.outcome(visit(), reports, TENANT, T0 + timedelta(hours=1))
    late = visit(patient_opened_at=T0 + timedelta(minutes=10))  # e.g. a second device; not a wait
    assert "lobby_wait_seconds" not in att.outcome(late, reports, TENANT, T0 + timedelta(hours=1))


@pytest.mark.parametrize("reports", [[], [report(staff((0, 20)))], [report(patient((0, 20)))]])
def test_without_both_sides_a_visit_waits_then_becomes_a_no_show_three_hours_after_its_end(reports):
    end = T0 + timedelta(minutes=30)
    assert att.outcome(visit(), reports, TENANT, end + timedelta(hours=2, minutes=59)) == {}
    assert att.outcome(visit(), reports, TENANT, end + timedelta(hours=3)) == {"status": "no_show"}


@pytest.mark.parametrize("row,minutes_after_start,due", [
    (visit(), 44, False),  # a 30-minute visit
    (visit(), 45, True),
    (visit(status="completed"), 90, False),
    (visit(status="no_show"), 90, False),
    ({"RowKey": "k", "scheduled_start": T0}, 74, False),  # no end known: an hour is assumed
    ({"RowKey": "k", "scheduled_start": T0}, 75, True),
])
def test_a_visit_is_due_15_minutes_after_its_scheduled_end_until_it_is_final(row, minutes_after_start, due):
    assert att.is_due(row, T0 + timedelta(minutes=minutes_after_start)) is due


spans = st.tuples(st.integers(0, 120), st.integers(1, 60)).map(lambda s: (T0 + timedelta(minutes=s[0]),
                                                                           T0 + timedelta(minutes=s[0] + s[1])))


@given(st.lists(spans, max_size=4), st.lists(spans, max_size=4))
def test_first_together_is_the_earliest_moment_inside_a_staff_and_a_patient_interval(staff_spans, guest_spans):
    def inside(moment, intervals):
        return any(start <= moment < end for start, end in intervals)

    found = att.first_together(staff_spans, guest_spans)
    candidates = [s for s, _e in staff_spans + guest_spans if inside(s, staff_spans) and inside(s, guest_spans)]
    assert found == min(candidates, default=None)


# --- reconcile one endpoint ----------------------------------------------------------------------------------------


class FakeUsage:
    def __init__(self, rows: list[dict]):
        self.rows, self.recorded = rows, []

    def between(self, region, endpoint_ids, start, end):
        return [r for r in self.rows if start <= r["scheduled_start"] < end]

    def record(self, region, endpoint_id, visit_key, scheduled_start, fields, keep_first=()):
        self.recorded.append((visit_key, fields))


class FakeGraph:
    answers: dict = {}

    def __init__(self, tenant_id):
        self.tenant_id = tenant_id

    def online_meeting(self, organizer, meeting_id):
        raise NotFound("Teams has not written call records for these meetings")

    def attendance_reports(self, organizer, meeting_id):
        answer = self.answers[meeting_id]
        if isinstance(answer, Exception):
            raise answer
        return answer


ENDPOINT = FhirEndpoint(base_url="https://fhir.example/r4/t", environment="test", organizer="va@contoso.example")


def test_reconcile_settles_due_visits_and_leaves_the_rest(monkeypatch):
    monkeypatch.setattr(att, "GraphClient", FakeGraph)
    FakeGraph.answers = {"m-done": [report(staff((0, 20)), patient((4, 18)))], "m-gone": NotFound("gone"),
                         "m-later": []}
    now = T0 + timedelta(hours=1)
    rows = [visit(RowKey="done", meeting_id="m-done"), visit(RowKey="gone", meeting_id="m-gone"),
            visit(RowKey="later", meeting_id="m-later"), visit(RowKey="final", status="completed"),
            visit(RowKey="old", scheduled_start=now - timedelta(days=4))]
    fake = FakeUsage(rows)
    summary = att.ReconcileSummary()
    att.reconcile_endpoint(fake, TENANT, ENDPOINT, "americas", now, summary)
    assert [key for key, _fields in fake.recorded] == ["done"]
    assert (summary.checked, summary.completed, summary.pending) == (3, 1, 2)


class GraphWithoutCallRecords(FakeGraph):
    """A tenant set up before CallRecords.Read.All was granted: Graph answers 403 to the call-records listing."""

    listings = 0

    def online_meeting(self, organizer, meeting_id):
        return {"joinWebUrl": f"https://teams.example/meet/{meeting_id}"}

    def call_records_started_between(self, start, end):
        GraphWithoutCallRecords.listings += 1
        raise DependencyFailed("Microsoft Graph answered HTTP 403.")


def test_without_call_records_attendance_still_settles_and_the_listing_is_tried_once_per_run(monkeypatch):
    monkeypatch.setattr(att, "GraphClient", GraphWithoutCallRecords)
    GraphWithoutCallRecords.answers = {"m1": [report(staff((0, 20)), patient((4, 18)))],
                                       "m2": [report(staff((0, 20)), patient((4, 18)))]}
    fake = FakeUsage([visit(RowKey="one", meeting_id="m1"), visit(RowKey="two", meeting_id="m2")])
    summary = att.ReconcileSummary()
    att.reconcile_endpoint(fake, TENANT, ENDPOINT, "americas", T0 + timedelta(hours=1), summary)
    assert [(key, fields["status"]) for key, fields in fake.recorded] == [("one", "completed"), ("two", "completed")]
    assert (summary.completed, summary.call_quality, GraphWithoutCallRecords.listings) == (2, 0, 1)


def test_a_missing_access_policy_stops_the_endpoint_for_this_run(monkeypatch):
    monkeypatch.setattr(att, "GraphClient", FakeGraph)
    FakeGraph.answers = {"m": AccessPolicyMissing("no policy")}
    with pytest.raises(AccessPolicyMissing):
        att.reconcile_endpoint(FakeUsage([visit(meeting_id="m")]), TENANT, ENDPOINT, "americas",
                               T0 + timedelta(hours=1), att.ReconcileSummary())


# --- the report ----------------------------------------------------------------------------------------------------


def row(status: str | None = None, wait: int | None = None, duration: int | None = None, sms: bool = False,
        minutes: int = 0, department: str = "32216049", **quality) -> usage.VisitRow:
    return usage.visit_row({"scheduled_start": T0 + timedelta(minutes=minutes), "status": status,
                            "lobby_wait_seconds": wait, "duration_seconds": duration, "sms_sent": sms,
                            "department": department, **quality},
                           ENDPOINT.model_copy(update={"display_name": "=Contoso"}))


POOR = {"poor_call": True, "patient_jitter_ms": 52, "patient_packet_loss_percent": 14.0,
        "patient_round_trip_ms": 620, "staff_jitter_ms": 4, "staff_packet_loss_percent": 0.2,
        "staff_round_trip_ms": 45}


@pytest.mark.parametrize("value,days", [(None, 30), ("", 30), ("7", 7), ("30", 30), ("90", 90)])
def test_the_report_covers_7_30_or_90_days(value, days):
    assert usage.parse_days(value) == days


@pytest.mark.parametrize("value", ["14", "0", "-7", "7.0", "abc", "365", " 7"])
def test_other_ranges_are_a_clear_400(value):
    with pytest.raises(InvalidInput) as raised:
        usage.parse_days(value)
    assert raised.value.status == 400 and "7, 30 or 90" in raised.value.message


def test_rows_show_local_time_and_unsettled_visits_as_pending():
    shown = row(status=None)
    assert shown.status == "pending" and shown.time_zone == "America/Chicago"
    assert shown.scheduled_start.strftime("%H:%M") == "09:00"  # 15:00 UTC is 09:00 in Chicago in March (CST)


def test_totals_median_and_average_lobby_wait_average_duration_and_sms_share():
    visits = [row("completed", 60, 600, True), row("completed", 120, 1200), row("completed", 600, None, True),
              row("no_show", sms=True), row(None)]
    totals = usage.totals(visits)
    assert (totals.visits, totals.completed, totals.no_show, totals.pending) == (5, 3, 1, 1)
    assert totals.median_lobby_wait_seconds == 120 and totals.average_lobby_wait_seconds == 260
    assert totals.average_duration_seconds == 900
    assert totals.sms_sent_percent == 60


def test_poor_calls_are_counted_over_visits_whose_quality_was_read_by_day_and_department():
    visits = [row("completed", minutes=0, **POOR), row("completed", minutes=10, poor_call=False),
              row("completed", minutes=20, department="4048128", poor_call=False),
              row("completed", minutes=24 * 60, **POOR), row("completed", minutes=30), row("no_show")]
    totals = usage.totals(visits)
    assert (totals.calls_with_quality, totals.poor_calls, totals.poor_call_percent) == (4, 2, 50)
    shares = [(s.day.isoformat(), s.department, s.calls, s.poor, s.poor_percent)
              for s in usage.poor_calls_by_day(visits)]
    assert shares == [("2025-03-05", "32216049", 1, 1, 100), ("2025-03-04", "32216049", 2, 1, 50),
                      ("2025-03-04", "4048128", 1, 0, 0)]


def test_totals_of_no_visits_are_unknown_not_zero():
    totals = usage.totals([])
    assert totals.visits == 0 and totals.median_lobby_wait_seconds is None and totals.sms_sent_percent is None
    assert totals.poor_call_percent is None


@pytest.mark.parametrize("seconds,clock,spoken", [
    (None, "", "—"), (0, "0:00:00", "0 s"), (245, "0:04:05", "4 min 5 s"), (900, "0:15:00", "15 min"),
    (3725, "1:02:05", "1 h 2 min"),
])
def test_durations_for_spreadsheets_and_for_people(seconds, clock, spoken):
    assert usage.clock(seconds) == clock and usage.spoken(seconds) == spoken


def sample_report() -> usage.Report:
    visits = [row("completed", 245, 900, True, minutes=60, **POOR), row("no_show", minutes=0)]
    return usage.Report(days=7, start=T0 - timedelta(days=7), end=T0 + timedelta(hours=2),
                        totals=usage.totals(visits), visits=visits, poor_calls_by_day=usage.poor_calls_by_day(visits))


def test_csv_has_one_header_and_a_row_per_visit_safe_for_spreadsheets():
    text = usage.as_csv(sample_report())
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == list(usage.CSV_COLUMNS)
    assert rows[1] == ["2025-03-04 10:00", "America/Chicago", "test", "'=Contoso", "32216049", "0:04:05", "0:15:00",
                       "Completed", "Yes", "Poor", "4", "0.2", "45", "52", "14", "620"]
    assert rows[2][5:] == ["", "", "No show", "No", "", "", "", "", "", "", ""]
    assert usage.csv_filename(sample_report()) == "virtual-visits-usage-7-days-2025-03-04.csv"


def test_page_is_an_accessible_table_with_the_ranges_and_the_portal():
    caller = auth.Caller(TENANT, "oid", "Alex Wilber", "Reports Reader", "csrf")
    page = usage.as_html(sample_report(), caller)
    visits_table = page.split('id="visits-caption"', 1)[1].split("</table>", 1)[0]
    assert "<caption" in page and visits_table.count('scope="col"') == 8 and visits_table.count('scope="row"') == 2
    words = " ".join(page.split())
    assert "Poor <br>" in words and "Patient: jitter 52 ms, loss 14 %, round trip 620 ms" in words
    assert '<th scope="row">2025-03-04</th> <td>32216049</td> <td class="number">1</td> <td class="number">100% (1)' \
        in words
    assert 'href="/api/portal/reports/usage?days=7" aria-current="page"' in page
    assert 'href="/api/portal/reports/usage?days=90"' in page and 'href="/api/portal"' in page
    assert "format=csv" in page and "4 min 5 s" in page and "No show" in page
    assert "&#39;=Contoso" not in page and "=Contoso" in page  # the CSV guard is for CSV only


def test_the_view_needs_a_portal_session():
    with pytest.raises(NotSignedIn):
        usage.usage_report_view(auth.Credentials(None), "7", "json")


@pytest.mark.parametrize("values,p50,p90", [
    ([], None, None), ([60], 60, 60), ([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 50, 90), ([5, 1, 3], 3, 5),
])
def test_p50_and_p90_are_nearest_rank_percentiles(values, p50, p90):
    assert usage.percentile(values, 0.5) == p50 and usage.percentile(values, 0.9) == p90


def test_totals_have_p50_and_p90_of_lobby_wait_and_of_completed_durations():
    visits = [row("completed", 60, 600), row("completed", 120, 1200), row("completed", 600, 3000),
              row("no_show")]
    totals = usage.totals(visits)
    assert (totals.p50_lobby_wait_seconds, totals.p90_lobby_wait_seconds) == (120, 600)
    assert (totals.p50_duration_seconds, totals.p90_duration_seconds) == (1200, 3000)


def test_distributions_put_each_visit_in_one_bar_the_last_open_ended():
    bars = usage.buckets([0, 59, 60, 299, 300, 5000], usage.LOBBY_EDGES)
    assert [b.count for b in bars] == [2, 1, 1, 1, 0, 0, 1]
    assert bars[0].label == "0-1 min" and bars[-1].label == "30+ min" and bars[-1].high is None
    assert sum(b.count for b in bars) == 6


def test_visits_per_day_have_every_day_of_the_range_stacked_by_outcome():
    visits = [row("completed", 60, 600, minutes=0), row("no_show", minutes=30), row(None, minutes=60 * 24)]
    charts = usage.charts(visits, T0 - timedelta(days=2), T0 + timedelta(days=2))
    days = {d.day: d for d in charts.per_day}
    assert len(days) == 5 and sum(d.total for d in days.values()) == 3
    assert (days["2025-03-04"].completed, days["2025-03-04"].no_show, days["2025-03-04"].pending) == (1, 1, 0)
    assert days["2025-03-05"].pending == 1 and days["2025-03-02"].total == 0


@pytest.mark.parametrize("start,end,fragment", [
    ("2026-11-30", "2026-11-01", "ends before it starts"), ("2026-11-01", None, "both from and to"),
    ("yesterday", "2026-11-01", "YYYY-MM-DD"), ("2020-01-01", "2026-01-01", "at most 366 days"),
])
def test_bad_custom_ranges_are_a_clear_400(start, end, fragment):
    with pytest.raises(InvalidInput) as raised:
        usage.parse_range(start, end)
    assert raised.value.status == 400 and fragment in raised.value.message


def test_a_custom_range_includes_both_dates():
    start, end = usage.parse_range("2026-11-01", "2026-11-30")
    assert start == datetime(2026, 11, 1, tzinfo=UTC) and end == datetime(2026, 12, 1, tzinfo=UTC)
    assert usage.parse_range(None, "") is None


def test_the_page_draws_titled_svg_charts_with_table_alternatives_and_no_script():
    caller = auth.Caller(TENANT, "oid", "Alex Wilber", "Reports Reader", "csrf")
    page = usage.as_html(sample_report(), caller)
    assert page.count("<svg") == 3 and page.count("<desc") == 3
    for title in ("Visits per day by outcome", "Lobby wait distribution", "Duration distribution"):
        assert f">{title}</title>" in page and f"<caption>{title}</caption>" in page
    assert 'data-day="2025-03-04" data-completed="1" data-no-show="1" data-pending="0"' in page
    assert "<script" not in page and "http" not in page.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org", "")


def test_the_usage_and_sms_reports_share_one_range_and_filter_form_the_usage_one_with_departments():
    import re

    from shared.reports import sms

    caller = auth.Caller(TENANT, "oid", "Alex Wilber", "Reports Reader", "csrf")
    usage_page = usage.as_html(sample_report(), caller)
    sms_report = sms.summarize([], sample_report().start, sample_report().end, sample_report().days)
    sms_page = sms.as_html(sms_report, caller)

    def form(page: str) -> list[tuple[str, str, str]]:
        """The form's controls in order: element, type and name."""
        found = page.split('aria-label="Custom range and filters"', 1)[1].split("</form>", 1)[0]
        return [(tag, "".join(re.findall(r'type="(\w+)"', attributes)),
                 "".join(re.findall(r'name="(\w+)"', attributes)))
                for tag, attributes in re.findall(r"<(input|select|button)\b([^>]*)>", found)]

    usage_controls = form(usage_page)
    assert [c for c in usage_controls if c[2] != "department"] == form(sms_page)
    assert usage_controls == [("input", "date", "from"), ("input", "date", "to"), ("input", "", "department"),
                              ("select", "", "environment"), ("button", "submit", "")]
