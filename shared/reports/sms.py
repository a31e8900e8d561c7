"""The SMS report: messages per day by type (confirmation, reminder, link, notice) and delivery status, with CSV.

Rows are per day, channel and type, so a second channel (email) adds rows and a filter value, not columns.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from shared.errors import InvalidInput
from shared.pages import render
from shared.portal import auth
from shared.reports.usage import CONTENT_SECURITY_POLICY, RANGES, Rendered, parse_days, parse_range
from shared.storage.accounts import TableAccounts, default_accounts
from shared.storage.config import ConfigRepository
from shared.storage.messages import MessageLog

SMS_REPORT_PATH = "/api/portal/reports/sms"
FORMATS = ("html", "json", "csv")
TYPES = ("confirmation", "reminder", "link", "notice")
# What the ledger calls a message, as the report groups it: reschedules and cancellations are notices.
TYPE_OF_KIND = {"confirmation": "confirmation", "reminder": "reminder", "link": "link",
                "reschedule": "notice", "cancellation": "notice"}
STATUSES = ("delivered", "sent", "failed", "opted_out")
CHANNELS = ("sms", "email")
CHANNEL_LABELS = {"sms": "Text (SMS)", "email": "Email"}
STATUS_LABELS = {"delivered": "Delivered", "sent": "Sent, no delivery report yet", "failed": "Failed",
                 "opted_out": "Opted out"}
TYPE_LABELS = {"confirmation": "Confirmation", "reminder": "Reminder", "link": "Link", "notice": "Notice"}
CSV_COLUMNS = ("Day (UTC)", "Channel", "Type", "Delivered", "Sent, no report yet", "Failed", "Opted out", "Total")


class DayTotals(BaseModel):
    """All messages of one day by delivery status (the chart)."""

    day: str
    delivered: int = 0
    sent: int = 0
    failed: int = 0
    opted_out: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.sent + self.failed + self.opted_out


class Counts(DayTotals):
    """Messages of one day, channel and type by delivery status."""

    channel: str
    type: str


class SmsReport(BaseModel):
    days: int
    start: datetime
    end: datetime
    channels: list[str]
    rows: list[Counts]
    per_day: list[DayTotals]
    by_type: dict[str, dict[str, int]]
    by_channel: dict[str, dict[str, int]]


def _status(row: dict) -> str:
    status = str(row.get("status") or "sent")
    return status if status in STATUSES else "sent"


def summarize(messages: list[dict], start: datetime, end: datetime, days: int) -> SmsReport:
    """Count message rows into per-day, per-channel, per-type rows, day totals for the chart and type totals."""
    per_day: dict[str, DayTotals] = {}
    day = start.astimezone(UTC).date()
    while day <= (end - timedelta(microseconds=1)).astimezone(UTC).date():
        per_day[day.isoformat()] = DayTotals(day=day.isoformat())
        day += timedelta(days=1)
    rows: dict[tuple[str, str, str], Counts] = {}
    by_type = {kind: dict.fromkeys(STATUSES, 0) for kind in TYPES}
    by_channel = {channel: dict.fromkeys(STATUSES, 0) for channel in CHANNELS}
    for message in messages:
        sent_day = message["sent_at"].astimezone(UTC).date().isoformat()
        kind, channel, status = TYPE_OF_KIND.get(str(message.get("kind")), "notice"), \
            str(message.get("channel") or "sms"), _status(message)
        counts = rows.setdefault((sent_day, channel, kind), Counts(day=sent_day, channel=channel, type=kind))
        setattr(counts, status, getattr(counts, status) + 1)
        if sent_day in per_day:
            setattr(per_day[sent_day], status, getattr(per_day[sent_day], status) + 1)
        by_type[kind][status] += 1
        by_channel.setdefault(channel, dict.fromkeys(STATUSES, 0))[status] += 1
    ordered = sorted(rows.values(), key=lambda r: (r.day, r.channel, TYPES.index(r.type)), reverse=False)
    return SmsReport(days=days, start=start.astimezone(UTC), end=end.astimezone(UTC),
                     channels=sorted({r.channel for r in ordered} or {"sms"}), rows=ordered,
                     per_day=list(per_day.values()), by_type=by_type, by_channel=by_channel)


def sms_report(tenant_id: str, days: int, now: datetime, accounts: TableAccounts | None = None, *,
               period: tuple[datetime, datetime] | None = None, environment: str = "") -> SmsReport:
    """The organization's messages sent in the last `days` days or in `period`, from the message log only."""
    accounts = accounts or default_accounts()
    config = ConfigRepository(accounts)
    start, end = period or (now - timedelta(days=days), now)
    endpoints = [e.id for e in config.endpoints(tenant_id) if not environment or e.environment == environment]
    messages = MessageLog(accounts).between(config.region(tenant_id), endpoints, start, end)
    return summarize(messages, start, end, days if period is None else (end - start).days)


def as_csv(report: SmsReport) -> str:
    """One row per day, channel and type (UTF-8 with BOM for Excel)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in report.rows:
        writer.writerow([r.day, r.channel, TYPE_LABELS[r.type], r.delivered, r.sent, r.failed, r.opted_out, r.total])
    return "\ufeff" + out.getvalue()


def as_html(report: SmsReport, caller: auth.Caller, environment: str = "") -> str:
    """The report page: texts and emails side by side, the chart with its table, the range and filter form."""
    return render("report_sms.html", report=report, caller=caller, path=SMS_REPORT_PATH, ranges=RANGES,
                  types=TYPES, type_labels=TYPE_LABELS, channel_labels=CHANNEL_LABELS, statuses=STATUSES,
                  status_labels=STATUS_LABELS, environment=environment, timedelta=timedelta,
                  peak=max([d.total for d in report.per_day] + [1]))


def sms_report_view(credentials: auth.Credentials, params: dict[str, str], output: str,
                    now: datetime | None = None) -> Rendered:
    """The SMS report as a page, JSON or CSV, for every portal role (like the usage report)."""
    caller = auth.authenticate(credentials)
    if output not in FORMATS:
        raise InvalidInput("The report comes as html, json or csv.", next_step="Use format=html, json or csv.")
    environment = params.get("environment") or ""
    if environment not in ("", "test", "production"):
        raise InvalidInput("The environment is test or production.", next_step="Use environment=test or production.")
    report = sms_report(caller.tenant_id, parse_days(params.get("days")), now or datetime.now(UTC),
                        period=parse_range(params.get("from"), params.get("to")), environment=environment)
    if output == "json":
        return Rendered(report.model_dump_json(), "application/json")
    if output == "csv":
        name = f"virtual-visits-sms-{report.start:%Y-%m-%d}-to-{report.end:%Y-%m-%d}.csv"
        return Rendered(as_csv(report), "text/csv", {"Content-Disposition": f'attachment; filename="{name}"'})
    return Rendered(as_html(report, caller, environment), "text/html",
                    {"Content-Security-Policy": CONTENT_SECURITY_POLICY})
