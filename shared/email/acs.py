"""ACS Email send through the real SDK, with our own repeatability headers for exactly-once delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from azure.communication.email import EmailClient
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from shared.errors import DependencyFailed
from shared.sms.acs import SendOutcome, SmsThrottled, acs_client


@dataclass(frozen=True)
class EmailContent:
    """One email: subject, plain-text and HTML bodies, and the headers it carries (List-Unsubscribe)."""

    subject: str
    plain_text: str
    html: str
    headers: dict[str, str]


class EmailThrottled(SmsThrottled):
    code, title = "email_throttled", "Emails are paused for a moment"


def send_email(sender: str, to: str, content: EmailContent, *, repeatability_id: str,
               first_sent: datetime) -> SendOutcome:
    """Queue one email; the same repeatability id and first-sent make a retry a no-op at ACS.

    ACS answers 202 with the send operation; its id is the message id that delivery reports carry. We do not wait
    for the operation: the delivery report (Event Grid) says how it ended.
    """
    message = {
        "senderAddress": sender,
        "recipients": {"to": [{"address": to}]},
        "content": {"subject": content.subject, "plainText": content.plain_text, "html": content.html},
        "headers": content.headers,
        "userEngagementTrackingDisabled": True,  # no tracking pixel or rewritten links in a patient's email
    }
    headers = {"Repeatability-Request-Id": repeatability_id,
               "Repeatability-First-Sent": format_datetime(first_sent, usegmt=True)}
    try:
        poller = acs_client(EmailClient).begin_send(message, operation_id=repeatability_id, headers=headers,
                                                     polling=False)
    except HttpResponseError as exc:
        return _refused(exc, repeatability_id)
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise DependencyFailed("Azure Communication Services could not be reached.",
                               next_step="Try again in a minute.") from exc
    operation = poller.result() or {}  # without polling: the 202's operation
    return SendOutcome(successful=True, message_id=str(operation.get("id") or repeatability_id), http_status=202,
                       error="")


def _refused(exc: HttpResponseError, operation_id: str) -> SendOutcome:
    """A non-202 answer in SMS terms, so the courier classifies both channels alike."""
    status = exc.status_code or 0
    if status == 429:
        raise EmailThrottled(float((exc.response.headers.get("Retry-After") if exc.response else None) or 60)) from exc
    if status == 409:  # the same request is still running at ACS: an earlier attempt was accepted
        return SendOutcome(successful=True, message_id=operation_id, http_status=409, error="")
    if status >= 500:
        return SendOutcome(successful=False, message_id="", http_status=status, error="")
    error = exc.error.message if exc.error is not None and exc.error.message else ""
    return SendOutcome(successful=False, message_id="", http_status=status, error=error[:200])
