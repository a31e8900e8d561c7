"""The ACS Email data plane as azure-communication-email speaks it: send LRO, status polling, delivery events.

POST /emails:send?api-version=… answers 202 with the operation ({id, status: Running}) and an Operation-Location
to poll; GET /emails/operations/{id} gives Running, then Succeeded or Failed. Repeatable requests follow ACS's
documented rules (Repeatability-Request-Id + Repeatability-First-Sent, 5-minute window): a repeat of a request
still running is a 409, a finished one replays its 202, a different body under the same id is a 400, and a
first-sent outside the window is a 412. Each sender address has a per-minute limit (429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.acs.events import _deliver_event
from sandbox.acs.mail import Email, EmailRepeat, MailState, SendOperation
from sandbox.acs.phones import RESOURCE_TOPIC, acs_error, iso
from sandbox.acs.shapes import parse_http_date
from sandbox.acs.signing import bad_request, json_object
from sandbox.acs.state import AcsState

EMAIL_DELIVERY_REPORT = "Microsoft.Communication.EmailDeliveryReportReceived"
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
MAX_RECIPIENTS = 50


def mail_of(state: AcsState) -> MailState:
    """The Email half of the resource."""
    return state.mail


def _request_problem(payload: dict[str, Any] | None, mail: MailState) -> str | None:
    if payload is None:
        return "The request body must be a JSON object."
    content, recipients = payload.get("content"), payload.get("recipients")
    if not mail.sender_allowed(payload.get("senderAddress")):
        return "senderAddress must be an address at a domain linked to this resource."
    if not isinstance(content, dict) or not isinstance(content.get("subject"), str):
        return "content.subject is required."
    if not (isinstance(content.get("plainText"), str) or isinstance(content.get("html"), str)):
        return "content needs plainText or html."
    to = recipients.get("to") if isinstance(recipients, dict) else None
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
        return f"recipients.to must hold 1 to {MAX_RECIPIENTS} addresses."
    if not all(isinstance(r, dict) and ADDRESS.match(str(r.get("address", ""))) for r in to):
        return "Each recipient needs a valid address."
    headers = payload.get("headers")
    if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        return "headers must map names to strings."
    return None


def _repeat_problem(request: Request, state: AcsState, now: datetime) -> Response | None:
    request_id = request.headers.get("repeatability-request-id")
    if request_id is None:
        return None
    first_sent = parse_http_date(request.headers.get("repeatability-first-sent"))
    if first_sent is None:
        return acs_error(400, "BadRequest", "Repeatability-First-Sent must be an IMF-fixdate when "
                         "Repeatability-Request-Id is sent.")
    if (now - first_sent).total_seconds() > state.repeatability_window_seconds:
        return acs_error(412, "PreconditionFailed", "Repeatability-First-Sent is outside the 5 minute window.")
    return None


def _accepted(request: Request, operation: SendOperation, now: datetime) -> JSONResponse:
    version = request.query_params.get("api-version", "")
    location = f"{request.base_url}emails/operations/{operation.operation_id}?api-version={version}"
    return JSONResponse(operation.to_json(now), status_code=202,
                        headers={"Operation-Location": location, "Retry-After": "1"})


async def send_email(request: Request, state: AcsState) -> Response:
    """POST /emails:send: a 202 with the operation to poll, or 400 / 409 / 412 / 429."""
    mail, now = mail_of(state), state.now()
    payload = await json_object(request)
    problem = _request_problem(payload, mail)
    if problem or payload is None:
        return bad_request(problem or "")
    refused = _repeat_problem(request, state, now)
    if refused is not None:
        return refused
    request_id = request.headers.get("repeatability-request-id")
    fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    with mail.lock:
        earlier = mail.repeats.get(request_id) if request_id else None
        if earlier is not None:
            return _repeat(request, mail, earlier, fingerprint, now)
        wait = mail.throttle(payload["senderAddress"], now)
        if wait is not None:
            state.request_counts["email.throttled"] += 1
            return acs_error(429, "TooManyRequests", "Too many emails from this sender; retry later.",
                             {"Retry-After": str(wait)})
        operation = mail.start(payload, now, request.headers.get("operation-id"))
        if request_id:
            mail.repeats[request_id] = EmailRepeat(fingerprint, operation.operation_id)
    state._spawn(_run(state, operation))
    return _accepted(request, operation, now)


def _repeat(request: Request, mail: MailState, earlier: EmailRepeat, fingerprint: str, now: datetime) -> Response:
    if earlier.fingerprint != fingerprint:
        return acs_error(400, "BadRequest", "Repeatability-Request-Id was already used for a different request.")
    operation = mail.operations[earlier.operation_id]
    if operation.status_at(now) == "Running":
        return acs_error(409, "Conflict", "The original request with this Repeatability-Request-Id is in progress.")
    return _accepted(request, operation, now)


async def get_operation(request: Request, state: AcsState) -> Response:
    """GET /emails/operations/{operationId}: Running, Succeeded or Failed."""
    mail = mail_of(state)
    with mail.lock:
        operation = mail.operations.get(request.path_params["operation_id"])
    if operation is None:
        return acs_error(404, "NotFound", "No email operation with this id.")
    return JSONResponse(operation.to_json(state.now()), headers={"Retry-After": "1"})


async def _run(state: AcsState, operation: SendOperation) -> None:
    """After the operation has run: deliver to each mailbox and report each delivery through Event Grid."""
    await asyncio.sleep(operation.seconds)
    deliver_due(state)


def deliver_due(state: AcsState) -> None:
    """Deliver every finished operation not delivered yet."""
    mail, now = mail_of(state), state.now()
    for operation in mail.due(now):
        for recipient in operation.request["recipients"]["to"]:
            _deliver_one(state, mail, operation, recipient["address"], now)


def _deliver_one(state: AcsState, mail: MailState, operation: SendOperation, address: str, now: datetime) -> None:
    payload = operation.request
    status = mail.outcome.get(address.lower(), "Delivered")
    if status == "Delivered":
        content = payload["content"]
        email = Email(address, payload["senderAddress"], content["subject"], content.get("plainText") or "",
                      content.get("html") or "", dict(payload.get("headers") or {}), operation.operation_id, now)
        with mail.lock:
            mail.inbox.append(email)
    webhook = state.event_webhook
    if webhook:
        event = delivery_event(operation.operation_id, payload["senderAddress"], address, status, now)
        state._spawn(_deliver_event(state, webhook, lambda: event, state.delivery_delay_seconds))


def delivery_event(message_id: str, sender: str, recipient: str, status: str, now: datetime) -> dict[str, Any]:
    """Microsoft.Communication.EmailDeliveryReportReceived as Event Grid posts it."""
    detail = "No error." if status == "Delivered" else f"The message was not delivered: {status}."
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{message_id}/{recipient.lower()}")), "topic": RESOURCE_TOPIC,
        "subject": f"sender/{sender}/message/{message_id}",
        "data": {
            "sender": sender, "recipient": recipient, "messageId": message_id, "status": status,
            "internetMessageId": f"<{message_id}@{sender.rsplit('@', 1)[1]}>",
            "deliveryStatusDetails": {"statusMessage": detail}, "deliveryAttemptTimeStamp": iso(now),
        },
        "eventType": EMAIL_DELIVERY_REPORT, "dataVersion": "1.0", "metadataVersion": "1", "eventTime": iso(now),
    }

