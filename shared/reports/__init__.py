"""Virtual-visits usage: attendance reconciled from Teams reports, and the report administrators read."""

from shared.reports.attendance import reconcile_attendance
from shared.reports.usage import usage_report, usage_report_view

__all__ = ["reconcile_attendance", "usage_report", "usage_report_view"]
