"""The Oracle Health stand-in as a Starlette app, with fault injection and per-route request counts."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.oracle import fhir, oauth, powerchart, token
from sandbox.oracle.http import operation_outcome
from sandbox.oracle.state import OracleState

SMART_V1 = "/tenants/{tenant}/protocols/oauth2/profiles/smart-v1"


async def home(_request: object) -> Response:
    """GET /: straight to PowerChart."""
    return RedirectResponse("/powerchart", 302)


def routes() -> list[BaseRoute]:
    """Every route, specific paths before the FHIR catch-alls."""
    return [
        Route("/", home),
        Route("/powerchart", powerchart.powerchart),
        Route("/jwk", oauth.jwk),
        Route("/tenants/{tenant}/jwk", oauth.tenant_jwk),
        Route("/styles/smart-v1.json", oauth.smart_style),
        Route("/errors/{rest:path}", oauth.error_page),
        Route("/tenants/{tenant}/oidc/idsps/{idsp}/.well-known/openid-configuration", oauth.openid_configuration),
        Route(f"{SMART_V1}/personas/provider/authorize", oauth.authorize, methods=["GET", "POST"]),
        Route(f"{SMART_V1}/token", token.token, methods=["POST"]),
        Route("/r4/{tenant}/.well-known/smart-configuration", oauth.smart_configuration),
        Route("/r4/{tenant}/metadata", fhir.metadata_r4),
        Route("/dstu2/{tenant}/metadata", fhir.metadata_dstu2),
        Route("/r4/{tenant}/{type}/{id}", fhir.read),
        Route("/r4/{tenant}/{type}", fhir.search),
    ]


def host_name(scope: Scope) -> str:
    """The host name the client addressed (Host header without port)."""
    host = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), "")
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def tenant_of(path: str) -> str:
    """The Millennium tenant a request is for (FHIR under /r4/ or /dstu2/, OAuth under /tenants/), else ""."""
    parts = path.split("/")
    return parts[2] if len(parts) > 2 and parts[1] in ("r4", "dstu2", "tenants") else ""


class FaultsAndCounts:
    """Counts requests per route and plays the state's planned delays and failures."""

    def __init__(self, app: ASGIApp, state: OracleState, known: list[BaseRoute]) -> None:
        self.app, self.state, self.known = app, state, known

    def label(self, scope: Scope) -> str:
        """ "METHOD /route/{template}" of the route that will answer, or the raw path."""
        for route in self.known:
            matched, child = route.matches(scope)
            if matched is Match.FULL and isinstance(route, Route):
                # Name the FHIR resource type, so benchmarks can tell Appointment searches from Patient reads.
                path = route.path.replace("{type}", child["path_params"].get("type", "{type}"))
                return f"{scope['method']} {path}"
        return f"{scope['method']} {scope['path']}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.state.count_request(self.label(scope), host_name(scope))
        tenant = tenant_of(scope["path"])
        self.state.request_started(tenant)
        try:
            await self.answer(scope, receive, send)
        finally:
            self.state.request_ended(tenant)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The planned gate, delay or failure for this request, else the route's own answer."""
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        gate = self.state.take_gate(target)
        if gate is not None:  # off the event loop: the other parties' requests must get in meanwhile
            await asyncio.to_thread(gate.barrier.wait, 30)
        delay = self.state.take_fault(target, self.state.delays)
        if delay is not None:
            await asyncio.sleep(delay.seconds)
        fault = self.state.take_fault(target, self.state.faults)
        if fault is None:
            await self.app(scope, receive, send)
            return
        headers = {"Retry-After": "1"} if fault.status in (429, 503) else None
        failure = operation_outcome(fault.status, "exception", "injected failure", headers)
        await failure(scope, receive, send)


def build_app(state: OracleState) -> Starlette:
    """The ASGI app serving `state`."""
    known = routes()
    app = Starlette(routes=known)
    app.state.oracle = state
    app.add_middleware(FaultsAndCounts, state=state, known=known)
    return app
