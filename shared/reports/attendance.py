"""Reconcile visits with Teams attendance reports: when the visit started and ended, lobby wait, no-shows.

Definitions follow Microsoft's Virtual Visits report: a visit starts when a member of the organization and a
patient are first in the meeting together and ends when the last person leaves; a visit where staff or patient
never joined is a no-show. Attendance reports count time in the meeting, not in the lobby, so the lobby wait is
our proxy: from the patient opening the SMS link (our usage event) to the patient's first attendance interval
(being admitted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.errors import ConnectorError, NotFound
from shared.microsoft.graph import AccessPolicyMissing, GraphClient
from shared.reports.call_quality import CallRecordFinder, needs_quality, read_call_quality
from shared.settings import Region
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.usage import UsageRepository

log = logging.getLogger("connector")

LOOKBACK = timedelta(days=3)
SETTLE_AFTER = timedelta(minutes=15)  # attendance reports appear some minutes after a meeting ends
NO_SHOW_AFTER = timedelta(hours=3)
DEFAULT_LENGTH = timedelta(hours=1)
FINAL_STATUSES = frozenset({"completed", "no_show"})
STAFF_ROLES = frozenset({"Organizer", "Coorganizer", "Presenter"})

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class Attendance:
    """What a visit's attendance reports say, reduced to times (no names, no identities)."""

    meeting_start: datetime | None = None
    meeting_end: datetime | None = None
    patient_joined: datetime | None = None

    @property
    def completed(self) -> bool:
        return self.meeting_start is not None


@dataclass
class ReconcileSummary:
    """Counts of one reconcile run, for the log."""

    checked: int = 0
    completed: int = 0
    no_show: int = 0
    pending: int = 0
    failed: int = 0
    failed_endpoints: int = 0
    call_quality: int = 0
    poor_calls: int = 0


def parse_time(value: Any) -> datetime | None:
    """A Graph date-time ("…Z", up to 7 fractional digits) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def is_staff(record: dict[str, Any], tenant_id: str) -> bool:
    """A member of the organization; anonymous browser guests (the patient) have no tenant, role or email."""
    identity = record.get("identity") or {}
    if identity.get("tenantId"):
        return identity["tenantId"] == tenant_id
    # Graph often leaves tenantId empty even for members; organizer roles and a sign-in email mark staff.
    return record.get("role") in STAFF_ROLES or bool(record.get("emailAddress"))


def intervals_of(record: dict[str, Any], report_end: datetime | None) -> list[Interval]:
    """A record's attendance intervals; an open interval ends with its report."""
    found: list[Interval] = []
    for interval in record.get("attendanceIntervals") or []:
        joined = parse_time(interval.get("joinDateTime"))
        left = parse_time(interval.get("leaveDateTime")) or report_end
        if joined and left and left >= joined:
            found.append((joined, left))
    return found


def first_together(staff: Iterable[Interval], guests: Iterable[Interval]) -> datetime | None:
    """The first moment a staff interval and a guest interval overlap."""
    guests = list(guests)
    overlaps = [max(s_start, g_start) for s_start, s_end in staff for g_start, g_end in guests
                if max(s_start, g_start) < min(s_end, g_end)]
    return min(overlaps, default=None)


def attendance(reports: list[dict[str, Any]], tenant_id: str) -> Attendance:
    """Start, end and the patient's first join across every session (report) of the visit's meeting."""
    staff: list[Interval] = []
    guests: list[Interval] = []
    for report in reports:
        report_end = parse_time(report.get("meetingEndDateTime"))
        for record in report.get("attendanceRecords") or []:
            (staff if is_staff(record, tenant_id) else guests).extend(intervals_of(record, report_end))
    start = first_together(staff, guests)
    if start is None:
        return Attendance(patient_joined=min((g[0] for g in guests), default=None))
    return Attendance(meeting_start=start, meeting_end=max(end for _start, end in staff + guests),
                      patient_joined=min(g[0] for g in guests))


def scheduled_end(row: dict[str, Any]) -> datetime:
    return row.get("scheduled_end") or row["scheduled_start"] + DEFAULT_LENGTH


def is_due(row: dict[str, Any], now: datetime) -> bool:
    """Not yet final, and its scheduled end is far enough past for Teams to have its reports."""
    return row.get("status") not in FINAL_STATUSES and scheduled_end(row) <= now - SETTLE_AFTER


def outcome(row: dict[str, Any], reports: list[dict[str, Any]], tenant_id: str, now: datetime) -> dict[str, Any]:
    """The fields to record for a due visit; empty while it may still turn out either way."""
    seen = attendance(reports, tenant_id)
    if seen.completed:
        fields: dict[str, Any] = {
            "status": "completed", "meeting_start": seen.meeting_start, "meeting_end": seen.meeting_end,
            "duration_seconds": int((seen.meeting_end - seen.meeting_start).total_seconds()),
        }
        opened = row.get("patient_opened_at")
        if opened and seen.patient_joined and seen.patient_joined >= opened:
            fields["lobby_wait_seconds"] = int((seen.patient_joined - opened).total_seconds())
        return fields
    # Reports without both sides may be followed by another session; wait before calling it a no-show.
    return {"status": "no_show"} if now >= scheduled_end(row) + NO_SHOW_AFTER else {}


def reports_for(graph: GraphClient, endpoint: FhirEndpoint, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The meeting's attendance reports; none when the provider never opened the visit or it is gone."""
    if not row.get("meeting_id") or not endpoint.organizer:
        return []
    try:
        return graph.attendance_reports(endpoint.organizer, row["meeting_id"])
    except NotFound:
        return []


def reconcile_endpoint(usage: UsageRepository, tenant_id: str, endpoint: FhirEndpoint, region: Region,
                       now: datetime, summary: ReconcileSummary) -> None:
    """Settle the due visits of one FHIR endpoint, then read the call quality of its completed ones."""
    graph = GraphClient(tenant_id)
    calls = CallRecordFinder(graph, endpoint, now - LOOKBACK, now)
    for row in usage.between(region, [endpoint.id], now - LOOKBACK, now):
        if is_due(row, now):
            row = settle(usage, graph, region, endpoint, row, tenant_id, now, summary)
        if needs_quality(row):
            # Call records appear after the call ends; a visit without them yet is read again next hour.
            fields = read_call_quality(calls, row, tenant_id)
            if fields:
                usage.record(region, endpoint.id, row["RowKey"], row["scheduled_start"], fields)
                summary.call_quality += 1
                summary.poor_calls += fields["poor_call"]


def settle(usage: UsageRepository, graph: GraphClient, region: Region, endpoint: FhirEndpoint, row: dict[str, Any],
           tenant_id: str, now: datetime, summary: ReconcileSummary) -> dict[str, Any]:
    """Record a due visit's outcome from its attendance reports; returns the row as it now stands."""
    summary.checked += 1
    try:
        reports = reports_for(graph, endpoint, row)
    except AccessPolicyMissing:
        raise
    except ConnectorError as error:
        summary.failed += 1
        log.warning("attendance reports unavailable: %s (reference %s)", error.code, error.reference)
        return row
    fields = outcome(row, reports, tenant_id, now)
    if not fields:
        summary.pending += 1
        return row
    usage.record(region, endpoint.id, row["RowKey"], row["scheduled_start"], fields)
    summary.completed += fields["status"] == "completed"
    summary.no_show += fields["status"] == "no_show"
    return {**row, **fields}


def reconcile_attendance(now: datetime, accounts: TableAccounts | None = None) -> ReconcileSummary:
    """For every organization's endpoint: settle visits of the last 3 days that ended over 15 minutes ago."""
    accounts = accounts or default_accounts()
    config, usage = ConfigRepository(accounts), UsageRepository(accounts)
    summary = ReconcileSummary()
    for tenant_id, endpoint in config.all_endpoints():
        try:
            reconcile_endpoint(usage, tenant_id, endpoint, config.region(tenant_id), now, summary)
        except ConnectorError as error:
            # One organization's missing access policy must not stop the others; the next run retries.
            summary.failed_endpoints += 1
            log.warning("attendance reconcile skipped endpoint %s: %s (reference %s)",
                        endpoint.id, error.code, error.reference)
    log.info("attendance reconciled: %s", summary)
    return summary
