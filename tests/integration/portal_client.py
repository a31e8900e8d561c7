"""Signed-in portal sessions over real HTTP, and a tiny FHIR server whose answers a test chooses."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

JSON = {"Accept": "application/json"}


@dataclass
class Portal:
    """A browser-like client with a portal session: cookies, and the session's CSRF token for changes."""

    http: httpx.Client
    csrf: str
    me: dict

    def get(self, path: str) -> httpx.Response:
        return self.http.get(f"/api/portal/{path}", headers=JSON)

    def send(self, method: str, path: str, body=None, csrf: str | None = "session", **kwargs) -> httpx.Response:
        headers = dict(JSON)
        if csrf:
            headers["X-CSRF-Token"] = self.csrf if csrf == "session" else csrf
        return self.http.request(method, f"/api/portal/{path}", json=body, headers=headers, **kwargs)


def sign_in(sandbox, upn: str) -> Portal:
    """The real sign-in: our redirect to Entra (login_hint skips the picker), the code back, the session."""
    http = httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30)
    page = http.get("/api/portal/auth/signin", params={"login_hint": upn})
    assert page.status_code == 200 and page.url.path == "/api/portal", page.text[:500]
    me = http.get("/api/portal/me", headers=JSON).json()
    return Portal(http, me["csrf_token"], me)


def fhir_server_app() -> Starlette:
    """FHIR bases under /r4/{kind}: `good` and `good-<anything>` (R4 + SMART), `nosmart`, `stu3` and `notfhir`."""

    async def metadata(request: Request) -> JSONResponse:
        kind = request.path_params["kind"]
        if kind == "notfhir":
            return JSONResponse({"hello": "world"})
        version = "3.0.2" if kind == "stu3" else "4.0.1"
        return JSONResponse({"resourceType": "CapabilityStatement", "fhirVersion": version, "status": "active"})

    async def smart(request: Request) -> JSONResponse:
        if not request.path_params["kind"].startswith("good"):
            return JSONResponse({"error": "not found"}, status_code=404)
        base = f"https://{request.url.netloc}/auth"
        return JSONResponse({"authorization_endpoint": f"{base}/authorize", "token_endpoint": f"{base}/token",
                             "capabilities": ["launch-ehr", "permission-v1"]})

    return Starlette(routes=[Route("/r4/{kind}/metadata", metadata),
                             Route("/r4/{kind}/.well-known/smart-configuration", smart)])
