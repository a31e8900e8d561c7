"""SMS confirmations and reminders: the timer job, the exactly-once ledger protocol, and ACS SMS events."""

from shared.notifications.events import handle_sms_event
from shared.notifications.job import run_notifications, run_slice
from shared.notifications.report import RunReport

__all__ = ["RunReport", "handle_sms_event", "run_notifications", "run_slice"]
