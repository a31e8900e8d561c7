"""A stand-in for PowerChart's patient board: today's virtual appointments, each with a "Teams" launch link."""

from __future__ import annotations

from datetime import timedelta
from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from sandbox.config import CERNER_TEST_TENANT
from sandbox.oracle.http import fhir_base
from sandbox.oracle.oauth import oracle, page, with_query
from sandbox.oracle.resources import parse_instant
from sandbox.oracle.state import OracleState

# "Today" is the clinic day around now, so the demo has appointments at any UTC hour.
HALF_DAY = timedelta(hours=12)

STYLE = ("body{font-family:Segoe UI,Arial,sans-serif;margin:2rem;color:#222}"
         "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.4rem .8rem;text-align:left}"
         "th{background:#e8eef5}a.teams{background:#5b5fc7;color:#fff;padding:.2rem .7rem;border-radius:4px;"
         "text-decoration:none}")


def todays_appointments(state: OracleState, tenant: str) -> list[dict[str, Any]]:
    """Appointments starting within 12 hours either side of now, by start."""
    now = state.now()
    today = [a for a in state.all_resources("Appointment", tenant)
             if now - HALF_DAY <= parse_instant(a["start"]) < now + HALF_DAY]
    return sorted(today, key=lambda a: (a["start"], a["id"]))


def actor_display(appointment: dict[str, Any], resource_type: str) -> str:
    """Display text of the first participant of a type."""
    for participant in appointment["participant"]:
        if participant.get("actor", {}).get("reference", "").startswith(f"{resource_type}/"):
            return participant["actor"].get("display", "")
    return ""


def row(state: OracleState, request: Request, tenant: str, appointment: dict[str, Any]) -> str:
    """One table row with a fresh launch behind its Teams link."""
    launch_id = state.create_launch(appointment["id"], tenant=tenant)
    link = with_query(state.launch_url, {"iss": fhir_base(state, request, tenant), "launch": launch_id})
    cells = [parse_instant(appointment["start"]).strftime("%H:%M UTC"), actor_display(appointment, "Patient"),
             actor_display(appointment, "Practitioner"), actor_display(appointment, "Location"),
             appointment["status"]]
    tds = "".join(f"<td>{escape(cell)}</td>" for cell in cells)
    anchor = (f'<a class="teams" href="{escape(link)}" data-appointment-id="{escape(appointment["id"])}">'
              "Teams</a>")
    return f"<tr>{tds}<td>{anchor}</td></tr>"


async def powerchart(request: Request) -> Response:
    """GET /powerchart[?tenant=<cerner tenant>]."""
    state = oracle(request)
    tenant = request.query_params.get("tenant", CERNER_TEST_TENANT)
    if tenant not in state.tenants:
        return page(404, "Unknown tenant", "PowerChart does not know this tenant.")
    rows = "".join(row(state, request, tenant, a) for a in todays_appointments(state, tenant))
    empty = '<tr><td colspan="6">No appointments today.</td></tr>'
    body = (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>PowerChart — Virtual appointments today</title><style>{STYLE}</style></head><body>"
        "<h1>PowerChart — Virtual appointments today</h1>"
        f"<p>Tenant <code>{escape(tenant)}</code> · sandbox, fake patients only</p>"
        "<table><thead><tr><th>Time</th><th>Patient</th><th>Practitioner</th><th>Location</th><th>Status</th>"
        f"<th>Video visit</th></tr></thead><tbody>{rows or empty}</tbody></table></body></html>"
    )
    return HTMLResponse(body)
