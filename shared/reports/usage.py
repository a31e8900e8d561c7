"""The virtual-visits usage report: totals and one row per visit, read from the usage table, nothing about patients."""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from shared.errors import InvalidInput
from shared.pages import render
from shared.portal import auth
from shared.reports.attendance import FINAL_STATUSES
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.usage import UsageRepository

RANGES = (7, 30, 90)
DEFAULT_RANGE = 30
FORMATS = ("html", "json", "csv")
REPORT_PATH = "/api/portal/reports/usage"
STATUS_LABELS = {"completed": "Completed", "no_show": "No show", "pending": "Pending"}
Status = Literal["completed", "no_show", "pending"]
CSV_COLUMNS = ("Scheduled start (local)", "Time zone", "Environment", "FHIR endpoint", "Department ID",
               "Lobby wait (h:mm:ss)", "Duration (h:mm:ss)", "Status", "SMS sent", "Call quality",
               "Staff jitter (ms)", "Staff packet loss (%)", "Staff round trip (ms)",
               "Patient jitter (ms)", "Patient packet loss (%)", "Patient round trip (ms)")
QUALITY_LABELS = {True: "Poor", False: "Good", None: ""}
# Style is inline in base.html; the report needs no script at all.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")


class VisitRow(BaseModel):
    """One visit as the report shows it: times, place, outcome; never who."""

    scheduled_start: datetime  # in the endpoint's time zone
    time_zone: str
    environment: str
    endpoint: str
    department: str = ""
    lobby_wait_seconds: int | None = None
    duration_seconds: int | None = None
    status: Status
    sms_sent: bool = False
    poor_call: bool | None = None  # None until the call records were read
    staff_jitter_ms: int | None = None
    staff_packet_loss_percent: float | None = None
    staff_round_trip_ms: int | None = None
    patient_jitter_ms: int | None = None
    patient_packet_loss_percent: float | None = None
    patient_round_trip_ms: int | None = None


class PoorCallShare(BaseModel):
    """Of one day's calls in one department (local day of the visits), how many were poor."""

    day: date
    department: str
    calls: int
    poor: int
    poor_percent: int


class Totals(BaseModel):
    visits: int = 0
    completed: int = 0
    no_show: int = 0
    pending: int = 0
    median_lobby_wait_seconds: int | None = None
    average_lobby_wait_seconds: int | None = None
    average_duration_seconds: int | None = None
    sms_sent_percent: int | None = None
    calls_with_quality: int = 0
    poor_calls: int = 0
    poor_call_percent: int | None = None


class Report(BaseModel):
    """Visits scheduled in [start, end), newest first."""

    days: int
    start: datetime
    end: datetime
    totals: Totals
    visits: list[VisitRow]
    poor_calls_by_day: list[PoorCallShare] = []


@dataclass(frozen=True)
class Rendered:
    """A report ready to send: body, media type and extra headers (the CSV's download name)."""

    body: str
    mimetype: str
    headers: dict[str, str] = field(default_factory=dict)


def parse_days(value: str | None) -> int:
    """7, 30 or 90 (30 when not given), as the Teams admin center offers."""
    if value is None or value == "":
        return DEFAULT_RANGE
    if value not in {str(days) for days in RANGES}:
        raise InvalidInput("The report covers the last 7, 30 or 90 days.", next_step="Use days=7, 30 or 90.")
    return int(value)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def visit_row(row: dict[str, Any], endpoint: FhirEndpoint) -> VisitRow:
    """A usage row as a report row; a visit not settled yet by reconciling is pending."""
    zone = _zone(endpoint.time_zone)
    status = row.get("status") if row.get("status") in FINAL_STATUSES else "pending"
    return VisitRow(
        scheduled_start=row["scheduled_start"].astimezone(zone), time_zone=zone.key,
        environment=endpoint.environment, endpoint=endpoint.display_name or endpoint.environment,
        department=str(row.get("department") or ""), lobby_wait_seconds=row.get("lobby_wait_seconds"),
        duration_seconds=row.get("duration_seconds"), status=status, sms_sent=bool(row.get("sms_sent")),
        **{name: row.get(name) for name in QUALITY_FIELDS},
    )


QUALITY_FIELDS = ("poor_call", "staff_jitter_ms", "staff_packet_loss_percent", "staff_round_trip_ms",
                  "patient_jitter_ms", "patient_packet_loss_percent", "patient_round_trip_ms")


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)


def totals(visits: list[VisitRow]) -> Totals:
    """Counts, median and average lobby wait, average duration of completed visits, share with an SMS sent."""
    waits = [v.lobby_wait_seconds for v in visits if v.lobby_wait_seconds is not None]
    durations = [v.duration_seconds for v in visits if v.status == "completed" and v.duration_seconds is not None]
    rated = [v for v in visits if v.poor_call is not None]
    return Totals(
        visits=len(visits), completed=sum(v.status == "completed" for v in visits),
        no_show=sum(v.status == "no_show" for v in visits), pending=sum(v.status == "pending" for v in visits),
        median_lobby_wait_seconds=_whole(statistics.median(waits) if waits else None),
        average_lobby_wait_seconds=_whole(statistics.fmean(waits) if waits else None),
        average_duration_seconds=_whole(statistics.fmean(durations) if durations else None),
        sms_sent_percent=_whole(100 * sum(v.sms_sent for v in visits) / len(visits) if visits else None),
        calls_with_quality=len(rated), poor_calls=sum(v.poor_call for v in rated),
        poor_call_percent=_whole(100 * sum(v.poor_call for v in rated) / len(rated) if rated else None),
    )


def poor_calls_by_day(visits: list[VisitRow]) -> list[PoorCallShare]:
    """The share of poor calls per local day and department, newest day first (visits with quality read only)."""
    groups: dict[tuple[date, str], list[bool]] = defaultdict(list)
    for v in visits:
        if v.poor_call is not None:
            groups[(v.scheduled_start.date(), v.department)].append(v.poor_call)
    return [PoorCallShare(day=day, department=department, calls=len(flags), poor=sum(flags),
                          poor_percent=round(100 * sum(flags) / len(flags)))
            for (day, department), flags in sorted(groups.items(), key=lambda g: (-g[0][0].toordinal(), g[0][1]))]


def usage_report(tenant_id: str, days: int, now: datetime, accounts: TableAccounts | None = None) -> Report:
    """The organization's visits scheduled in the last `days` days (7, 30 or 90), from the usage table only."""
    if days not in RANGES:
        raise InvalidInput("The report covers the last 7, 30 or 90 days.", next_step="Use days=7, 30 or 90.")
    accounts = accounts or default_accounts()
    config, usage = ConfigRepository(accounts), UsageRepository(accounts)
    region, start = config.region(tenant_id), now - timedelta(days=days)
    visits = [visit_row(row, endpoint) for endpoint in config.endpoints(tenant_id)
              for row in usage.between(region, [endpoint.id], start, now)]
    visits.sort(key=lambda v: v.scheduled_start, reverse=True)
    return Report(days=days, start=start.astimezone(UTC), end=now.astimezone(UTC), totals=totals(visits),
                  visits=visits, poor_calls_by_day=poor_calls_by_day(visits))


# --- output ------------------------------------------------------------------------------------------------------


def clock(seconds: int | None) -> str:
    """h:mm:ss, which spreadsheets read as a duration; empty when unknown."""
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def spoken(seconds: int | None) -> str:
    """A duration for people: "4 min 5 s", "15 min", "1 h 2 min"; a dash when unknown."""
    if seconds is None:
        return "—"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if not minutes:
        return f"{secs} s"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def _cell(value: str) -> str:
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def as_csv(report: Report) -> str:
    """The visits as CSV (UTF-8 with BOM so Excel shows accents), one header row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for v in report.visits:
        writer.writerow([_cell(text) for text in (
            v.scheduled_start.strftime("%Y-%m-%d %H:%M"), v.time_zone, v.environment, v.endpoint, v.department,
            clock(v.lobby_wait_seconds), clock(v.duration_seconds), STATUS_LABELS[v.status],
            "Yes" if v.sms_sent else "No", QUALITY_LABELS[v.poor_call],
            *(_figure(getattr(v, name)) for name in QUALITY_FIELDS[1:]),
        )])
    return "\ufeff" + out.getvalue()


def csv_filename(report: Report) -> str:
    return f"virtual-visits-usage-{report.days}-days-{report.end:%Y-%m-%d}.csv"


def as_html(report: Report, caller: auth.Caller) -> str:
    return render("report_usage.html", report=report, caller=caller, ranges=RANGES, path=REPORT_PATH,
                  labels=STATUS_LABELS, quality=QUALITY_LABELS, spoken=spoken)


def usage_report_view(credentials: auth.Credentials, days: str | None, output: str,
                      now: datetime | None = None) -> Rendered:
    """The signed-in administrator's report as a page, JSON or a CSV download (every portal role may read it)."""
    caller = auth.authenticate(credentials)
    if output not in FORMATS:
        raise InvalidInput("The report comes as html, json or csv.", next_step="Use format=html, json or csv.")
    report = usage_report(caller.tenant_id, parse_days(days), now or datetime.now(UTC))
    if output == "json":
        return Rendered(report.model_dump_json(), "application/json")
    if output == "csv":
        return Rendered(as_csv(report), "text/csv",
                        {"Content-Disposition": f'attachment; filename="{csv_filename(report)}"'})
    return Rendered(as_html(report, caller), "text/html", {"Content-Security-Policy": CONTENT_SECURITY_POLICY})
