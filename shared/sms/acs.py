"""ACS SMS send through the real SDK, with our own per-recipient repeatability ids for exactly-once delivery."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, TypeVar

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.errors import ConnectorError, DependencyFailed
from shared.http import count_call, sdk_transport
from shared.runtime import forgotten_on_reset
from shared.settings import get_settings

Client = TypeVar("Client")


class SmsThrottled(ConnectorError):
    status, code, title = 429, "sms_throttled", "Text messages are paused for a moment"

    def __init__(self, retry_after: float):
        super().__init__("Too many text messages were sent from this number in the last minute.",
                         next_step="Try again in a minute.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendOutcome:
    """ACS's per-recipient answer (a 202 can still carry a failure for the recipient)."""

    successful: bool
    message_id: str
    http_status: int
    error: str


class _CountCalls(SansIOHTTPPolicy):
    def on_request(self, request) -> None:
        count_call("acs")


_lock = threading.Lock()
_clients: dict[type, Any] = {}


@forgotten_on_reset
def _forget_clients() -> None:
    with _lock:
        _clients.clear()


def acs_client(client_class: type[Client]) -> Client:
    """One ACS SDK client of a kind per process: the access key locally, the managed identity in Azure."""
    with _lock:
        if client_class not in _clients:
            settings = get_settings()
            key = settings.acs_access_key.get_secret_value()
            if key:
                credential: Any = AzureKeyCredential(key)
            else:
                from azure.identity import DefaultAzureCredential  # imported lazily: only Azure needs it

                credential = DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id or None)
            # Retries are ours to decide (throttling carries over, LROs resume on the next poll), not the SDK's.
            _clients[client_class] = client_class(
                settings.acs_endpoint, credential, retry_total=0, per_call_policies=[_CountCalls()],
                transport=sdk_transport(),
                connection_timeout=settings.http_timeout_seconds, read_timeout=settings.http_timeout_seconds)
        return _clients[client_class]


def send_sms(from_number: str, to: str, message: str, *, tag: str, repeatability_id: str,
             first_sent: datetime) -> SendOutcome:
    """Send one SMS; the same repeatability id and first-sent time make a retry a no-op at ACS."""
    # The ACS SDK is imported when the first text is sent: a cold start does not pay for it.
    from azure.communication.sms import SmsClient
    from azure.communication.sms._generated.models import SendMessageRequest, SmsRecipient, SmsSendOptions

    request = SendMessageRequest(
        from_property=from_number,
        sms_recipients=[SmsRecipient(to=to, repeatability_request_id=repeatability_id,
                                     repeatability_first_sent=format_datetime(first_sent, usegmt=True))],
        message=message,
        sms_send_options=SmsSendOptions(enable_delivery_report=True, tag=tag),
    )
    try:
        # The public send() draws a random repeatability id per call, which would defeat exactly-once.
        items = acs_client(SmsClient)._sms_service_client.sms.send(request, cls=lambda _p, body, _h: body.value)
    except HttpResponseError as exc:
        if exc.status_code == 429:
            retry_after = float((exc.response.headers.get("Retry-After") if exc.response else None) or 60)
            raise SmsThrottled(retry_after) from exc
        raise DependencyFailed(f"Azure Communication Services answered HTTP {exc.status_code}.",
                               next_step="Try again in a minute.") from exc
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise DependencyFailed("Azure Communication Services could not be reached.",
                               next_step="Try again in a minute.") from exc
    item = items[0]
    return SendOutcome(successful=bool(item.successful), message_id=item.message_id or "",
                       http_status=int(item.http_status_code or 0), error=item.error_message or "")
