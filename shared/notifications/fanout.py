"""Fan-out of the reminder job: when one run's work is too much for one instance, one queue message per endpoint.

The timer decides (`SMS_FANOUT`, `SMS_FANOUT_DEPARTMENTS`) and puts a message per endpoint on the Storage queue
`SMS_QUEUE_NAME`; the queue-triggered function runs that endpoint's part of the run, planning and sending, so
Flex Consumption spreads the work over instances. Nothing else changes: the ledger still lets each message out
once, whichever instance, retry or overlapping run gets there first. A message names only the organization (its
Entra tenant id), the endpoint (an opaque id) and the run's time: nothing about a patient or an appointment.
A slice that fails is retried by the host, then left in `<queue>-poison` after host.json's maxDequeueCount.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import ConnectorError
from shared.runtime import forgotten_on_reset
from shared.settings import Settings, get_settings

# A slice left waiting this long belongs to a run whose next run has already begun (and covers its endpoint).
SLICE_EXPIRES = timedelta(minutes=10)
ENDPOINT_ID = r"^[A-Za-z0-9_-]{1,64}$"
TENANT_ID = r"^[0-9a-fA-F-]{36}$"


class Slice(BaseModel):
    """One endpoint's part of one run: what a queue message carries (ids and a minute, no personal data)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(pattern=TENANT_ID)
    endpoint: str = Field(pattern=ENDPOINT_ID)
    run_at: datetime  # the timer's `now`: the slice plans as of the same moment as the run it belongs to


class BadSlice(ConnectorError):
    status, code, title = 400, "bad_slice", "This queue message is not a part of a reminder run"


def fans_out(departments: int, settings: Settings) -> bool:
    """Whether a run with this many departments to search hands its endpoints to the queue."""
    if settings.sms_fanout == "auto":
        return departments > settings.sms_fanout_departments
    return settings.sms_fanout == "always"


_clients: dict[tuple[str, str], object] = {}
_clients_lock = threading.Lock()


@forgotten_on_reset
def _forget_clients() -> None:
    with _clients_lock:
        _clients.clear()


def slice_queue(settings: Settings | None = None):
    """The fan-out queue (created once per process if missing); the managed identity in Azure, Azurite's key locally."""
    settings = settings or get_settings()
    key = (settings.sms_queue_endpoint, settings.sms_queue_name)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _new_queue_client(settings)
        return _clients[key]


def _new_queue_client(settings: Settings):
    # The Queues SDK loads with the first fan-out, not on cold start.
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    from shared.storage.accounts import storage_credential

    credential = storage_credential(settings.sms_queue_endpoint, settings)
    # The Functions queue trigger decodes base64 by default (host.json messageEncoding).
    client = QueueClient(settings.sms_queue_endpoint, settings.sms_queue_name, credential=credential,
                         message_encode_policy=TextBase64EncodePolicy())
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def enqueue(slices: list[Slice], settings: Settings | None = None) -> int:
    """Put one message per slice on the fan-out queue; the number queued."""
    queue = slice_queue(settings)
    for part in slices:
        queue.send_message(part.model_dump_json())
    return len(slices)


def parse_slice(body: str) -> Slice:
    """A queue message as a slice; BadSlice (never its text in the error) when it is not one."""
    try:
        return Slice.model_validate_json(body)
    except ValidationError:
        raise BadSlice("The message is not a reminder slice.") from None
