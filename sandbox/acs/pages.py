"""Sandbox-only routes (no HMAC): the patient's phone (SMS outbox) and the portal's view of numbers."""

from __future__ import annotations

import html
from datetime import datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from sandbox.acs.events import schedule_received
from sandbox.acs.phones import URL, acs_error, is_e164, normalize_phone
from sandbox.acs.signing import bad_request, json_object
from sandbox.acs.state import AcsState


def _linkify(text: str) -> str:
    pieces, last = [], 0
    for match in URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")  # sentence punctuation after a link is not part of it
        pieces += [html.escape(text[last:match.start()]), f'<a href="{html.escape(url)}">{html.escape(url)}</a>']
        last = match.start() + len(url)
    pieces.append(html.escape(text[last:]))
    return "".join(pieces).replace("\n", "<br>")


_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;background:#eef0f3;margin:0}
.phone{max-width:420px;margin:1.5rem auto;background:#fff;border-radius:28px;box-shadow:0 4px 24px #0002;
 overflow:hidden}
header{background:#f7f7f9;padding:1rem;text-align:center;border-bottom:1px solid #ddd}
header h1{font-size:1.05rem;margin:0} header p{margin:.2rem 0 0;color:#666;font-size:.8rem}
ol{list-style:none;margin:0;padding:1rem;display:flex;flex-direction:column;gap:.6rem;min-height:50vh}
li{max-width:80%;padding:.55rem .8rem;border-radius:18px;line-height:1.35;overflow-wrap:anywhere}
li.in{background:#e5e5ea;align-self:flex-start} li.out{background:#0b84ff;color:#fff;align-self:flex-end}
li.out a{color:#fff} small{display:block;font-size:.7rem;opacity:.7;margin-top:.25rem}
.empty{color:#888;text-align:center}
"""


def _page(title: str, body: str, refresh: str | None) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh and refresh.isdigit() else ""
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">{meta}'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head><body>{body}</body></html>"
    )


async def home(request: Request) -> Response:
    """GET /: the outbox is what a person opening the stand-in wants to see."""
    return RedirectResponse("/outbox")


async def outbox_index(request: Request) -> Response:
    """GET /outbox: every phone that received a message."""
    state: AcsState = request.app.state.acs
    rows = "".join(
        f'<li class="in"><a href="/outbox/{html.escape(phone)}">{html.escape(phone)}</a>'
        f"<small>{len(state.outbox(phone))} received</small></li>"
        for phone in state.phones()
    ) or '<li class="empty">No messages yet.</li>'
    body = f'<div class="phone"><header><h1>Sandbox phones</h1><p>SMS sent by ACS</p></header><ol>{rows}</ol></div>'
    return _page("Sandbox phones", body, request.query_params.get("refresh"))


def _conversation(state: AcsState, phone: str) -> list[tuple[datetime, str]]:
    received = [
        (m.sent_at, f'<li class="in" data-message-id="{html.escape(m.message_id)}">{_linkify(m.message)}'
                    f"<small>from {html.escape(m.from_)} · {m.sent_at:%H:%M:%S} UTC</small></li>")
        for m in state.outbox(phone)
    ]
    sent = [
        (m.received_at, f'<li class="out">{_linkify(m.message)}<small>to {html.escape(m.to)} · '
                        f"{m.received_at:%H:%M:%S} UTC</small></li>")
        for m in state.inbox(phone)
    ]
    return sorted(received + sent, key=lambda pair: pair[0])


async def outbox_phone(request: Request) -> Response:
    """GET /outbox/{phone}: the phone's message list (HTML, or JSON with ?format=json)."""
    state: AcsState = request.app.state.acs
    phone = normalize_phone(request.path_params["phone"])
    if request.query_params.get("format") == "json":
        return outbox_json_for(state, phone)
    bubbles = "".join(bubble for _, bubble in _conversation(state, phone)) or '<li class="empty">No messages.</li>'
    body = (f'<div class="phone"><header><h1>{html.escape(phone)}</h1><p>Messages</p></header>'
            f'<ol id="messages">{bubbles}</ol></div>')
    return _page(f"Messages · {phone}", body, request.query_params.get("refresh"))


def outbox_json_for(state: AcsState, phone: str) -> JSONResponse:
    """The phone's received messages as JSON."""
    return JSONResponse({"phone": phone, "messages": [m.to_json() for m in state.outbox(phone)]})


async def outbox_json(request: Request) -> Response:
    """GET /outbox/{phone}.json."""
    return outbox_json_for(request.app.state.acs, normalize_phone(request.path_params["phone"]))


async def sandbox_reply(request: Request) -> Response:
    """POST /_sandbox/reply {from, to, message}: the patient texts back (STOP / START change the opt-out)."""
    state: AcsState = request.app.state.acs
    payload = await json_object(request)
    if payload is None or not isinstance(payload.get("message"), str):
        return bad_request("'from', 'to' and 'message' are required.")
    if not (is_e164(payload.get("from")) and is_e164(payload.get("to"))):
        return bad_request("'from' and 'to' must be E.164 phone numbers.")
    if not state.owns(payload.get("to")):
        return acs_error(404, "NotFound", "'to' is not a number of this resource.")
    inbound = state._receive(payload["from"], payload["to"], payload["message"], state.now())
    schedule_received(state, inbound)
    opted_out = state.is_opted_out(payload["to"], payload["from"])
    return JSONResponse({"messageId": inbound.message_id, "optedOut": opted_out}, status_code=202)


async def sandbox_numbers(request: Request) -> Response:
    """GET /_sandbox/numbers: owned numbers with their toll-free verification status."""
    state: AcsState = request.app.state.acs
    state._settle(state.now())
    with state.lock:
        value = [
            {**number.to_json(), "verificationStatus": state.verification.get(number.phone_number)}
            for number in state.numbers.values()
        ]
    return JSONResponse({"value": value})


async def sandbox_verification(request: Request) -> Response:
    """POST /_sandbox/verification {phoneNumber, status}: move a toll-free number through verification."""
    state: AcsState = request.app.state.acs
    payload = await json_object(request) or {}
    number, status = payload.get("phoneNumber"), payload.get("status")
    if not state.owns(number) or status not in ("unverified", "pending", "verified"):
        return bad_request("'phoneNumber' must be owned; 'status' unverified, pending or verified.")
    with state.lock:
        state.verification[number] = status
    return JSONResponse({"phoneNumber": number, "verificationStatus": status})
