"""Delivery reports and inbound messages as Event Grid events, posted to the subscribed webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from sandbox.acs.phones import NO_RETRY_STATUSES, iso
from sandbox.acs.records import Delivery, InboundMessage
from sandbox.acs.shapes import event_envelope, report_json
from sandbox.acs.state import AcsState


async def _post_event(webhook: str, event: dict[str, Any], attempt: int) -> int | None:
    headers = {
        "aeg-event-type": "Notification", "aeg-delivery-count": str(attempt - 1),
        "aeg-subscription-name": "SANDBOX-ACS-SMS", "aeg-data-version": "1.0", "aeg-metadata-version": "1",
    }
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(webhook, json=[event], headers=headers)
    except httpx.HTTPError:
        return None
    return response.status_code


async def _deliver_event(state: AcsState, webhook: str, event_factory: Callable[[], dict], delay: float) -> None:
    """Post one event like Event Grid: after `delay`, retried on failure, dead-lettered when it keeps failing."""
    await asyncio.sleep(delay)
    event = event_factory()
    for attempt, wait in enumerate((0.0, *state.event_retry_delays), start=1):
        await asyncio.sleep(wait)
        with state.lock:
            state.event_attempts += 1
        status = await _post_event(webhook, event, attempt)
        if status is not None and 200 <= status < 300:
            with state.lock:
                state.events_sent.append(event)
            return
        if status in NO_RETRY_STATUSES:
            break
    with state.lock:
        state.events_failed.append(event)


def schedule_report(state: AcsState, delivery: Delivery) -> None:
    """Post the message's delivery report to the subscribed webhook later, if a report was asked for."""
    webhook = state.event_webhook
    if not (webhook and delivery.report_wanted):
        return

    def build() -> dict[str, Any]:
        now = state.now()
        data = report_json(delivery, now)
        with state.lock:
            state.reports[delivery.message_id] = data
        return event_envelope("Microsoft.Communication.SMSDeliveryReportReceived", delivery.message_id, delivery.from_,
                      data, now)

    state._spawn(_deliver_event(state, webhook, build, state.delivery_delay_seconds))


def schedule_received(state: AcsState, inbound: InboundMessage) -> None:
    """Post an inbound message (SMSReceived) to the subscribed webhook."""
    webhook = state.event_webhook
    if not webhook:
        return
    data = {
        "MessageId": inbound.message_id, "From": inbound.from_, "To": inbound.to, "Message": inbound.message,
        "ReceivedTimestamp": iso(inbound.received_at),
    }
    event = event_envelope("Microsoft.Communication.SMSReceived", inbound.message_id, inbound.to, data,
                           inbound.received_at)
    state._spawn(_deliver_event(state, webhook, lambda: event, 0.0))
