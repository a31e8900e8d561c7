"""The SMS data-plane routes: send, opt-outs and delivery reports."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.acs.events import schedule_report
from sandbox.acs.phones import MAX_MESSAGE_CHARS, MAX_RECIPIENTS, acs_error, is_e164
from sandbox.acs.signing import ApiHandler, bad_request, json_object
from sandbox.acs.state import AcsState


def _send_request_problem(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return "The request body must be a JSON object."
    recipients, message = payload.get("smsRecipients"), payload.get("message")
    if not isinstance(payload.get("from"), str) or not isinstance(message, str):
        return "'from' and 'message' are required strings."
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        return f"'smsRecipients' must hold 1 to {MAX_RECIPIENTS} recipients."
    if not all(isinstance(r, dict) and isinstance(r.get("to"), str) for r in recipients):
        return "Each recipient needs a 'to' phone number."
    if len(message) > MAX_MESSAGE_CHARS:
        return f"The message is longer than {MAX_MESSAGE_CHARS} characters."
    return None


async def send_sms(request: Request, state: AcsState) -> Response:
    """POST /sms: per-recipient results inside a 202, or a whole-request 400 / 429."""
    payload = await json_object(request)
    problem = _send_request_problem(payload)
    if problem or payload is None:
        return bad_request(problem or "")
    sender, now = payload["from"], state.now()
    if not state.owns(sender):
        return bad_request("Invalid from phone number: it is not a number of this resource.")
    with state.lock:
        wait = state._throttle(sender, len(payload["smsRecipients"]), now)
        if wait is not None:
            state.request_counts["throttled"] += 1
    if wait is not None:
        return acs_error(429, "TooManyRequests", "Rate limit of the sending number exceeded; retry later.",
                         {"Retry-After": str(wait)})
    items, deliveries = state._send_batch(sender, payload, now)
    for delivery in deliveries:
        schedule_report(state, delivery)
    return JSONResponse({"value": items}, status_code=202)


def _optouts_problem(state: AcsState, payload: dict[str, Any] | None) -> str | None:
    if payload is None or not isinstance(payload.get("recipients"), list):
        return "'from' and 'recipients' are required."
    if not 1 <= len(payload["recipients"]) <= MAX_RECIPIENTS:
        return f"'recipients' must hold 1 to {MAX_RECIPIENTS} recipients."
    if not state.owns(payload.get("from")):
        return "Invalid from phone number: it is not a number of this resource."
    return None


def optouts_route(action: str) -> ApiHandler:
    """The opt-out route for one action (add, remove or check)."""
    async def optouts(request: Request, state: AcsState) -> Response:
        payload = await json_object(request)
        problem = _optouts_problem(state, payload)
        if problem or payload is None:
            return bad_request(problem or "")
        items = [_optout_item(state, action, payload["from"], r) for r in payload["recipients"]]
        return JSONResponse({"value": items})

    return optouts


def _optout_item(state: AcsState, action: str, sender: str, recipient: Any) -> dict[str, Any]:
    to = recipient.get("to") if isinstance(recipient, dict) else None
    if not is_e164(to):
        return {"to": to, "httpStatusCode": 400, "errorMessage": "Invalid recipient phone number format"}
    with state.lock:
        if action == "add":
            state.opted_out.add((sender, to))
        elif action == "remove":
            state.opted_out.discard((sender, to))
        opted_out = (sender, to) in state.opted_out
    return {"to": to, "isOptedOut": opted_out, "httpStatusCode": 200} if action == "check" else {
        "to": to, "httpStatusCode": 200}


async def get_delivery_report(request: Request, state: AcsState) -> Response:
    """GET /deliveryReports/{messageId} (api-version 2026-01-23): the last known report, camelCase."""
    with state.lock:
        report = state.reports.get(request.path_params["message_id"])
    if report is None:
        return JSONResponse({"type": "about:blank", "title": "Not Found", "status": 404,
                             "detail": "No delivery report for this message id."}, status_code=404,
                            media_type="application/problem+json")
    return JSONResponse(_camel_case(report))


def _camel_case(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel_case(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel_case(item) for item in value]
    return value
