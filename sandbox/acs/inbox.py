"""Sandbox-only pages (no HMAC): the patient's mailbox, beside the SMS outbox."""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.acs.email import deliver_due, mail_of
from sandbox.acs.mail import Email
from sandbox.acs.pages import _linkify, _page
from sandbox.acs.state import AcsState


async def inbox_index(request: Request) -> Response:
    """GET /inbox: every address that received an email."""
    state: AcsState = request.app.state.acs
    deliver_due(state)
    mail = mail_of(state)
    rows = "".join(
        f'<li class="in"><a href="/inbox/{quote(address)}">{html.escape(address)}</a>'
        f"<small>{len(mail.mailbox(address))} received</small></li>"
        for address in mail.addresses()
    ) or '<li class="empty">No emails yet.</li>'
    body = (f'<div class="phone"><header><h1>Sandbox mailboxes</h1><p>Email sent by ACS</p></header>'
            f"<ol>{rows}</ol></div>")
    return _page("Sandbox mailboxes", body, request.query_params.get("refresh"))


def _unsubscribe_form(email: Email) -> str:
    """The one-click unsubscribe a mail client offers from List-Unsubscribe (RFC 8058), as a button."""
    target = email.headers.get("List-Unsubscribe", "").strip("<>")
    if not target.startswith(("https://", "http://")):
        return ""
    return (f'<form method="post" action="{html.escape(target)}"><input type="hidden" name="List-Unsubscribe" '
            f'value="One-Click"><button type="submit">Unsubscribe (mail client button)</button></form>')


def _message(email: Email) -> str:
    frame = html.escape(email.html, quote=True)
    html_part = (f'<iframe title="HTML version" sandbox="allow-popups allow-top-navigation-by-user-activation" '
                 f'srcdoc="{frame}" style="width:100%;min-height:14rem;border:1px solid #ddd"></iframe>'
                 if email.html else "")
    return (f'<li class="in" data-message-id="{html.escape(email.message_id)}"><strong>'
            f"{html.escape(email.subject)}</strong><small>from {html.escape(email.sender)} · "
            f"{email.received_at:%H:%M:%S} UTC</small><p>{_linkify(email.plain_text)}</p>{html_part}"
            f"{_unsubscribe_form(email)}</li>")


async def inbox_address(request: Request) -> Response:
    """GET /inbox/{address}: the mailbox (HTML, or JSON with ?format=json)."""
    state: AcsState = request.app.state.acs
    deliver_due(state)
    address = request.path_params["address"]
    as_json = request.query_params.get("format") == "json" or address.endswith(".json")
    address = address.removesuffix(".json")
    emails = mail_of(state).mailbox(address)
    if as_json:
        return JSONResponse({"address": address, "messages": [e.to_json() for e in emails]})
    items = "".join(_message(email) for email in emails) or '<li class="empty">No emails.</li>'
    body = (f'<div class="phone"><header><h1>{html.escape(address)}</h1><p>Inbox</p></header>'
            f'<ol id="messages">{items}</ol></div>')
    return _page(f"Inbox · {address}", body, request.query_params.get("refresh"))

