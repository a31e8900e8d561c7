"""Confirmations and reminders: the timer that sends them, the Event Grid trigger for ACS SMS and email events,
and the email unsubscribe link."""

import logging
from datetime import UTC, datetime

import azure.functions as func

from functions.lazy import lazy
from functions.responses import friendly_errors, html_response

joining = lazy("shared.join")
notifications = lazy("shared.notifications")
unsubscribing = lazy("shared.notifications.unsubscribe")

bp = func.Blueprint()
log = logging.getLogger("connector")


@bp.timer_trigger(schedule="%SMS_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def sms_notifications(timer: func.TimerRequest) -> None:
    """Send the confirmations, notices and reminders that are due (every 5 minutes by default)."""
    report = notifications.run_notifications(datetime.now(UTC))
    log.info("sms_notifications%s: %s", " (past due)" if timer.past_due else "", report.summary())


@bp.queue_trigger(arg_name="message", queue_name="%SMS_QUEUE_NAME%", connection="AzureWebJobsStorage")
def sms_notifications_slice(message: func.QueueMessage) -> None:
    """One endpoint's part of a fanned-out run; raising leaves the message for a retry, then `<queue>-poison`."""
    report = notifications.run_slice(message.get_body().decode("utf-8", errors="replace"), datetime.now(UTC))
    log.info("sms_notifications_slice (attempt %d): %s", message.dequeue_count or 1, report.summary())


@bp.event_grid_trigger(arg_name="event")
def sms_delivery_report(event: func.EventGridEvent) -> None:
    """ACS delivery reports (SMS by message tag, email by message id) and patients' STOP / START replies."""
    outcome = notifications.handle_sms_event(event.id, event.event_type, event.get_json(), event.topic)
    log.info("sms event %s: %s", event.event_type.rsplit(".", 1)[-1], outcome)


@bp.route(route="unsubscribe/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@friendly_errors
def email_unsubscribe(req: func.HttpRequest) -> func.HttpResponse:
    """GET asks to confirm (mail scanners open links); POST, the button or a mail client's one-click, unsubscribes."""
    token = req.route_params.get("token", "")
    language = joining.language_from_header(req.headers.get("accept-language", ""))
    page = (unsubscribing.unsubscribe(token, language) if req.method == "POST"
            else unsubscribing.confirm_page(token, language))
    return html_response(page.html, status=page.status,
                         headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                  "form-action 'self'; frame-ancestors 'none'", "Referrer-Policy": "no-referrer"})
