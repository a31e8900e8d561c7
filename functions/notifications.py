"""SMS confirmations and reminders: the timer that sends them and the Event Grid trigger for ACS SMS events."""

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared.notifications import handle_sms_event, run_notifications

bp = func.Blueprint()
log = logging.getLogger("connector")


@bp.timer_trigger(schedule="%SMS_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def sms_notifications(timer: func.TimerRequest) -> None:
    """Send the confirmations, notices and reminders that are due (every 5 minutes by default)."""
    report = run_notifications(datetime.now(UTC))
    log.info("sms_notifications%s: %s", " (past due)" if timer.past_due else "", report.summary())


@bp.event_grid_trigger(arg_name="event")
def sms_delivery_report(event: func.EventGridEvent) -> None:
    """ACS delivery reports (status by message tag) and patients' STOP / START replies."""
    outcome = handle_sms_event(event.id, event.event_type, event.get_json(), event.topic)
    log.info("sms event %s: %s", event.event_type.rsplit(".", 1)[-1], outcome)
