"""Every HTTP route the function app registers, under four callers who must not get what they ask for: anonymous,
a read-only role (Global Reader), an administrator of another tenant, and an administrator whose change carries
no CSRF token.

The rows come from the registered functions (function_app's blueprints) and openapi.yaml: a route without a row,
or a row without a route, fails. Each cell is the status a secure app must answer, written out by hand; every
request that changes something is also checked to have changed nothing in the configuration table.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import yaml

import function_app
from sandbox import config
from sandbox.entra import ADMIN_UPN, GLOBAL_READER_UPN
from sandbox.functions_host import registered_functions
from sandbox.seed import sandbox_settings
from shared.storage.config import endpoint_id_for
from shared.tokens import Sealer
from tests.integration.portal_client import JSON, sign_in
from tests.security.portal_world import UNLISTED_ADMIN, directory_users

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
CALLERS = ("anonymous", "reader", "other_tenant_admin", "admin_without_csrf")
WRITES = {"post", "put", "patch", "delete"}
DENIED = frozenset({401, 403})  # refused: not signed in, or signed in without the right

PUBLIC = 200
# The portal's session cookie is scoped to /api/portal: elsewhere every caller is as anonymous as the first.
EVERYONE = lambda status: (status,) * len(CALLERS)  # noqa: E731 - reads as a table
PORTAL_READ = (401, 200, DENIED, 200)  # readers read; another tenant's administrator gets nothing
PORTAL_WRITE = (401, 403, DENIED, 403)  # only a Global Administrator with the session's CSRF token writes

EXPECTED: dict[tuple[str, str], tuple] = {
    ("get", "/api/health"): EVERYONE(PUBLIC),  # liveness
    ("get", "/api/health/ready"): EVERYONE(PUBLIC),  # readiness: the sandbox's keys and dependencies are fine
    ("get", "/api/join/{*token}"): EVERYONE(404),  # patients are anonymous: a link that does not open is not found
    ("get", "/api/unsubscribe/{token}"): EVERYONE(404),  # one-click unsubscribe: a link that does not open
    ("post", "/api/unsubscribe/{token}"): EVERYONE(404),
    ("get", "/api/launch/provider"): EVERYONE(400),  # no iss/launch
    ("get", "/api/launch/callback"): EVERYONE(400),  # no launch cookie
    ("get", "/api/launch/microsoft/callback"): EVERYONE(400),  # no link cookie
    ("get", "/api/visits/{visit}"): EVERYONE(401),  # a genuine visit reference, but no Cerner session
    ("get", "/api/visits/{visit}/status"): EVERYONE(401),
    ("post", "/api/visits/{visit}/send-link"): EVERYONE(401),
    ("get", "/api/reports/usage"): EVERYONE(302),  # on to /api/portal/reports/usage, where the cookie is sent
    ("get", "/api/portal"): EVERYONE(PUBLIC),  # the sign-in page or the wizard
    ("get", "/api/portal/static/{name}"): EVERYONE(PUBLIC),
    ("get", "/api/portal/auth/signin"): EVERYONE(302),  # on to Microsoft
    ("get", "/api/portal/auth/callback"): EVERYONE(401),  # no sign-in started in this browser
    ("post", "/api/portal/auth/signout"): (401, 303, DENIED, 403),  # one's own session, with its CSRF token
    ("get", "/api/portal/me"): PORTAL_READ,
    ("get", "/api/portal/region"): PORTAL_READ,
    ("put", "/api/portal/region"): PORTAL_WRITE,
    ("get", "/api/portal/endpoints"): PORTAL_READ,
    ("post", "/api/portal/endpoints"): PORTAL_WRITE,
    ("post", "/api/portal/endpoints/validate"): PORTAL_WRITE,
    ("put", "/api/portal/endpoints/{id}"): PORTAL_WRITE,
    ("delete", "/api/portal/endpoints/{id}"): PORTAL_WRITE,
    ("put", "/api/portal/endpoints/{id}/sms"): PORTAL_WRITE,
    ("get", "/api/portal/sms/consents"): PORTAL_READ,
    ("put", "/api/portal/sms/consents"): PORTAL_WRITE,
    ("get", "/api/portal/sms/numbers"): PORTAL_READ,
    ("post", "/api/portal/sms/numbers"): PORTAL_WRITE,
    ("get", "/api/portal/sms/numbers/{id}"): (401, 404, DENIED, 404),  # no such number of Contoso's
    ("put", "/api/portal/sms/numbers/{id}"): PORTAL_WRITE,
    ("post", "/api/portal/sms/numbers/{id}/advance"): PORTAL_WRITE,
    ("get", "/api/portal/records"): PORTAL_READ,
    ("get", "/api/portal/licence"): PORTAL_READ,
    ("get", "/api/portal/reports/usage"): PORTAL_READ,
    ("get", "/api/portal/reports/sms"): PORTAL_READ,
    ("get", "/api/portal/status"): PORTAL_READ,
}

def registered_operations() -> set[tuple[str, str]]:
    operations = set()
    for function in registered_functions(function_app.app):  # get_functions() works once per app
        trigger = next((b for b in function.get_bindings() if b.type == "httpTrigger"), None)
        if trigger is not None:
            operations |= {(str(m).rsplit(".", 1)[-1].lower(), f"/api/{trigger.route}") for m in trigger.methods}
    return operations


def described_operations() -> set[tuple[str, str]]:
    return {(method, path) for path, item in SPEC["paths"].items() for method in item if method in WRITES | {"get"}}


def test_every_route_has_a_row_and_every_row_a_route():
    """A new route ships without anyone deciding who may call it."""
    assert registered_operations() == set(EXPECTED), "add the new route's row to EXPECTED (and remove stale rows)"
    assert described_operations() <= registered_operations(), "openapi.yaml describes only registered routes"
    assert {op for op in registered_operations() if op[1].startswith("/api/portal/") and "/auth/" not in op[1]
            and "/static/" not in op[1] and "/reports/" not in op[1]} <= described_operations()


def cells() -> Iterator:
    for operation, statuses in sorted(EXPECTED.items()):
        for caller, status in zip(CALLERS, statuses, strict=True):
            yield pytest.param(operation, caller, status, id=f"{operation[0]} {operation[1]} {caller}")


class Caller:
    """One of the four callers: a client, and the CSRF token it sends with changes (None: it sends none)."""

    def __init__(self, sandbox, name: str):
        self.portal = None
        if name == "anonymous":
            self.http, self.csrf = httpx.Client(base_url=sandbox.world.host_url, timeout=30), None
            return
        if name == "other_tenant_admin":
            # A Global Administrator of a tenant outside ALLOWED_TENANTS: the sign-in itself is refused, so this
            # browser asks everything without a session.
            self.csrf = None
            self.http = httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30)
            with directory_users(sandbox.standins["entra"], UNLISTED_ADMIN):
                page = self.http.get("/api/portal/auth/signin", params={"login_hint": UNLISTED_ADMIN.upn})
            assert page.status_code == 403, page.text[:300]
            return
        upns = {"reader": GLOBAL_READER_UPN, "admin_without_csrf": ADMIN_UPN}
        self.portal = sign_in(sandbox, upns[name])
        self.http = self.portal.http
        self.csrf = None if name == "admin_without_csrf" else self.portal.csrf

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def callers(sandbox) -> Iterator[dict[str, Caller]]:
    made = {name: Caller(sandbox, name) for name in CALLERS}
    yield made
    for caller in made.values():
        caller.close()


def concrete_path(sandbox, route: str) -> str:
    endpoint = endpoint_id_for(sandbox.world.fhir_base())
    # A genuine visit reference (the status route has its own purpose): only the Cerner session is missing.
    visit = {"tenant": config.ENTRA_TENANT_ID, "endpoint": endpoint, "appointment": "4817517"}
    purpose = "visit-status" if route.endswith("/status") else "visit"
    if purpose == "visit-status":
        visit["start"] = "2026-06-10T15:00:00+00:00"
    sealed = Sealer(sandbox_settings(sandbox)).seal_json(visit, 3600, purpose)
    return (route.replace("{*token}", "not-a-token").replace("{token}", "not-a-token")
            .replace("{visit}", quote(sealed, safe="")).replace("{name}", "portal.js").replace("{id}", endpoint))


def configuration(accounts) -> list[dict]:
    """The configuration table's rows, without the portal's own session rows (each request may refresh its own)."""
    return sorted((dict(e) for e in accounts.table("config").list_entities() if e.get("Kind") != "portal_session"),
                  key=lambda e: (e["PartitionKey"], e["RowKey"]))


@pytest.mark.parametrize(("operation", "caller", "expected"), list(cells()))
def test_route_refuses_what_the_caller_may_not_do(sandbox, accounts, callers, operation, caller, expected):
    """An anonymous, read-only, foreign-tenant or CSRF-less caller asks for more than the route allows it."""
    method, route = operation
    # Signing out ends the session it is sent with: those cells get a session of their own.
    who = Caller(sandbox, caller) if route.endswith("/signout") else callers[caller]
    headers = dict(JSON)
    if who.csrf:
        headers["X-CSRF-Token"] = who.csrf
    before = configuration(accounts) if method in WRITES else None
    try:
        response = who.http.request(method.upper(), concrete_path(sandbox, route), headers=headers,
                                    json={} if method in WRITES else None, follow_redirects=False)
    finally:
        if who is not callers[caller]:
            who.close()
    if isinstance(expected, frozenset):
        assert response.status_code in expected, response.text[:300]
    else:
        assert response.status_code == expected, response.text[:300]
    assert response.status_code < 500 and "Traceback" not in response.text
    if method in WRITES:
        assert configuration(accounts) == before, "a refused change changed nothing"
