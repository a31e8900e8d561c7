"""The Teams pages of the Graph stand-in: the meeting (clinician) and visit (patient) pages and their JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from sandbox.entra import Endpoint
from sandbox.graph.records import PageError, Participant
from sandbox.graph.state import GraphState

_PAGE_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;margin:0;background:#f5f5f5;color:#242424}"
    "header{background:#464775;color:#fff;padding:10px 20px}main{max-width:640px;margin:24px auto;"
    "background:#fff;padding:24px;border-radius:6px;box-shadow:0 1px 4px #0002}"
    "button{background:#5b5fc7;color:#fff;border:0;border-radius:4px;padding:8px 16px;cursor:pointer}"
    "button:disabled{background:#bbb;cursor:not-allowed}.muted{color:#616161}"
    "li{margin:6px 0}.error{color:#c4314b}"
)


def _html(title: str, body: str, script: str = "", status: int = 200) -> HTMLResponse:
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
                f'content="width=device-width,initial-scale=1"><title>{html.escape(title)}</title>'
                f"<style>{_PAGE_STYLE}</style></head><body><header>Microsoft Teams (sandbox)</header>"
                f"<main>{body}</main><script>{script}</script></body></html>")
    return HTMLResponse(document, status_code=status)


_MEET_BODY = """
<h1>Virtual appointment</h1>
<p class="muted" id="times"></p>
<section id="prejoin"><p>Ready to join?</p><button id="join">Join now</button></section>
<section id="you-waiting" hidden><p>Someone in the meeting should let you in soon</p></section>
<section id="inmeeting" hidden><p>You're in the meeting.</p><button id="leave">Leave</button></section>
<p id="ended" hidden>This meeting has ended.</p>
<section id="guest"><h2>Continue on this browser</h2><p class="muted">No Teams account needed.</p>
<p><label>Your name <input id="guest-name" autocomplete="name" maxlength="100"></label></p>
<button id="guest-join">Join as a guest</button></section>
<div id="organizer-view">
<section><h2>Waiting in the lobby</h2><ul id="lobby-list"></ul><p class="muted" id="lobby-empty">Nobody is
waiting.</p></section>
<section><h2>In the meeting</h2><ul id="in-list"></ul></section>
</div>
<p class="error" id="message" role="status"></p>
"""

_MEET_SCRIPT = """
const base = location.pathname.replace(/\\/$/, '');
const as = new URLSearchParams(location.search).get('as') || '';
const q = as ? '?as=' + encodeURIComponent(as) : '';
const $ = (id) => document.getElementById(id);
async function post(path) {
  const r = await fetch(base + path + q, {method: 'POST', headers: {'content-type': 'application/json'},
                                          body: JSON.stringify({as: as || null})});
  const body = await r.json();
  $('message').textContent = r.ok ? '' : (body.error || 'Something went wrong.');
  return body;
}
function item(text, button) {
  const li = document.createElement('li');
  const span = document.createElement('span');
  span.textContent = text;
  li.append(span);
  if (button) { li.append(' ', button); }
  return li;
}
let guest = sessionStorage.getItem(base + ':guest') || '';
function renderGuest(state) {
  for (const id of ['prejoin', 'guest', 'organizer-view']) { $(id).hidden = true; }
  $('you-waiting').hidden = state !== 'lobby';
  $('inmeeting').hidden = state !== 'admitted';
  $('ended').hidden = state !== 'ended';
}
function render(s) {
  $('times').textContent = s.startDateTime + ' to ' + s.endDateTime;
  $('guest').hidden = Boolean(as) || s.you.state === 'in_meeting' || s.you.state === 'lobby';
  $('prejoin').hidden = s.you.state === 'in_meeting' || s.you.state === 'lobby';
  $('you-waiting').hidden = s.you.state !== 'lobby';
  $('inmeeting').hidden = s.you.state !== 'in_meeting';
  $('ended').hidden = s.meetingState !== 'ended';
  $('lobby-list').replaceChildren(...s.lobby.map((p) => {
    const b = document.createElement('button');
    b.textContent = 'Admit';
    b.disabled = !s.you.canAdmit || s.you.state !== 'in_meeting';
    if (!s.you.canAdmit) { b.title = 'Only organizers and co-organizers can admit people.'; }
    b.onclick = () => post('/admit/' + encodeURIComponent(p.participantId)).then(refresh);
    return item(p.displayName + ' (waiting)', b);
  }));
  $('lobby-empty').hidden = s.lobby.length > 0;
  $('in-list').replaceChildren(...s.inMeeting.map((p) => item(p.displayName)));
}
async function refresh() {
  if (guest) {
    const g = await fetch(base + '/guest/status?participant=' + encodeURIComponent(guest));
    if (g.ok) { renderGuest((await g.json()).state); }
    return;
  }
  const r = await fetch(base + '/state' + q);
  if (r.ok) { render(await r.json()); }
}
$('guest-join').onclick = async () => {
  const r = await fetch(base + '/guest', {method: 'POST', headers: {'content-type': 'application/json'},
                                          body: JSON.stringify({displayName: $('guest-name').value})});
  const body = await r.json();
  $('message').textContent = r.ok ? '' : (body.error || 'Something went wrong.');
  if (r.ok) { guest = body.participantId; sessionStorage.setItem(base + ':guest', guest); refresh(); }
};
$('join').onclick = () => post('/join').then(refresh);
$('leave').onclick = () => post('/leave').then(refresh);
refresh();
setInterval(refresh, 1000);
"""

_VISIT_BODY = """
<h1>Virtual appointment</h1>
<section id="prejoin">
  <p><label>Your name <input id="name" autocomplete="name" maxlength="100"></label></p>
  <p class="muted" id="devices">Camera: Sandbox camera (working) · Microphone: Sandbox microphone (working)</p>
  <button id="join">Join now</button>
</section>
<section id="lobby" hidden><p>Someone in the meeting should let you in soon</p></section>
<section id="in" hidden><p>You're in the visit</p><button id="leave">Leave</button></section>
<section id="left" hidden><p>You left the visit.</p></section>
<section id="ended" hidden><p>The visit has ended.</p></section>
<p class="error" id="error" role="alert"></p>
"""

_VISIT_SCRIPT = """
const base = location.pathname.replace(/\\/$/, '');
const $ = (id) => document.getElementById(id);
let participant = sessionStorage.getItem(base) || '';
function show(view) {
  for (const id of ['prejoin', 'lobby', 'in', 'left', 'ended']) { $(id).hidden = id !== view; }
}
async function poll() {
  if (!participant) { return; }
  const r = await fetch(base + '/status?participant=' + encodeURIComponent(participant));
  if (!r.ok) { return; }
  const s = await r.json();
  show({lobby: 'lobby', admitted: 'in', left: 'left', ended: 'ended'}[s.state] || 'prejoin');
}
async function send(path, body) {
  const r = await fetch(base + path, {method: 'POST', headers: {'content-type': 'application/json'},
                                      body: JSON.stringify(body)});
  const answer = await r.json();
  $('error').textContent = r.ok ? '' : (answer.error || 'Something went wrong.');
  return r.ok ? answer : null;
}
$('join').onclick = async () => {
  const answer = await send('/join', {displayName: $('name').value});
  if (answer) { participant = answer.participantId; sessionStorage.setItem(base, participant); poll(); }
};
$('leave').onclick = () => send('/leave', {participantId: participant}).then(poll);
poll();
setInterval(poll, 1000);
"""


async def _page_body(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise PageError(400, "The request body must be JSON.") from exc
    return body if isinstance(body, dict) else {}


def _page_api(action: Callable) -> Callable[[GraphState], Endpoint]:
    """Make a JSON endpoint of the pages: run the action, map PageError to {"error": ...}."""

    def factory(state: GraphState) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return JSONResponse(await action(state, request))
            except PageError as error:
                return JSONResponse({"error": error.message}, status_code=error.status)

        return endpoint

    return factory


async def _acting_oid(request: Request) -> str | None:
    return request.query_params.get("as") or (await _page_body(request)).get("as") or None


def _participant_json(person: Participant) -> dict:
    state = {"in_meeting": "admitted"}.get(person.state, person.state) if person.anonymous else person.state
    return {"participantId": person.participant_id, "state": state}


@_page_api
async def meet_state(state: GraphState, request: Request) -> dict:
    """What the provider's meeting page shows to `as` (else the organizer): your state, the lobby, who is in."""
    return state.meeting_view(request.path_params["meeting_id"], request.query_params.get("as"))


@_page_api
async def meet_join(state: GraphState, request: Request) -> dict:
    """A signed-in Teams user (`as`, else the organizer) clicks "Join now"."""
    person = state.join_as_user(request.path_params["meeting_id"], await _acting_oid(request))
    return _participant_json(person)


@_page_api
async def meet_admit(state: GraphState, request: Request) -> dict:
    """Admit a participant from the lobby."""
    params = request.path_params
    person = state.admit(params["meeting_id"], params["participant_id"], await _acting_oid(request))
    return _participant_json(person)


@_page_api
async def meet_leave(state: GraphState, request: Request) -> dict:
    """A signed-in user leaves the meeting."""
    who = state.leave_as_user(request.path_params["meeting_id"], await _acting_oid(request))
    return {"participantId": who, "state": "left"}


@_page_api
async def meet_guest(state: GraphState, request: Request) -> dict:
    """Someone without a Teams account continues on the meeting page in the browser, into the lobby."""
    name = (await _page_body(request)).get("displayName")
    person = state.join_as_guest(request.path_params["meeting_id"], name if isinstance(name, str) else "")
    return _participant_json(person)


@_page_api
async def meet_guest_status(state: GraphState, request: Request) -> dict:
    """Where that guest stands, for their polling page: lobby, admitted, left or ended."""
    participant_id = request.query_params.get("participant", "")
    return {"state": state.guest_status(request.path_params["meeting_id"], participant_id)}


@_page_api
async def visit_join(state: GraphState, request: Request) -> dict:
    """A patient joins from the visit link, under the name they typed, into the lobby."""
    name = (await _page_body(request)).get("displayName")
    person = state.join_as_visitor(request.path_params["visit_token"], name if isinstance(name, str) else "")
    return _participant_json(person)


@_page_api
async def visit_status(state: GraphState, request: Request) -> dict:
    """Where the patient stands, for their polling page: lobby, admitted, left or ended."""
    participant_id = request.query_params.get("participant", "")
    return {"state": state.visitor_status(request.path_params["visit_token"], participant_id)}


@_page_api
async def visit_leave(state: GraphState, request: Request) -> dict:
    """The patient leaves."""
    participant_id = str((await _page_body(request)).get("participantId", ""))
    state.leave_visit(request.path_params["visit_token"], participant_id)
    return {"participantId": participant_id, "state": "left"}


def meet_page(state: GraphState) -> Endpoint:
    """The clinician's meeting page (404 for an unknown meeting)."""
    async def page(request: Request) -> Response:
        if request.path_params["meeting_id"] not in state.meetings:
            return _html("Microsoft Teams", "<h1>This meeting doesn't exist</h1>", status=404)
        return _html("Virtual appointment | Microsoft Teams", _MEET_BODY, _MEET_SCRIPT)

    return page


def visit_page(state: GraphState) -> Endpoint:
    """The patient's visit page (404 for an unknown link)."""
    async def page(request: Request) -> Response:
        if not state.has_visit(request.path_params["visit_token"]):
            return _html("Virtual appointment", "<h1>This link isn't valid</h1>", status=404)
        return _html("Virtual appointment", _VISIT_BODY, _VISIT_SCRIPT)

    return page
