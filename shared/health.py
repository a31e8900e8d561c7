"""Dependency checks behind /api/health: each storage account and each configured external system."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from pydantic import BaseModel

from shared.http import client
from shared.settings import Settings, get_settings
from shared.storage.accounts import TableAccounts


class PartHealth(BaseModel):
    ok: bool
    detail: str


class HealthReport(BaseModel):
    ok: bool
    parts: dict[str, PartHealth]

    @property
    def failing(self) -> list[str]:
        return [name for name, part in self.parts.items() if not part.ok]


def _storage(accounts: TableAccounts, region) -> PartHealth:
    try:
        next(iter(accounts.service(region).list_tables(results_per_page=1)), None)
        return PartHealth(ok=True, detail="reachable")
    except Exception as exc:  # any failure means "not reachable"; the type is enough to diagnose
        return PartHealth(ok=False, detail=f"unreachable ({type(exc).__name__})")


def _http(system: str, url: str) -> PartHealth:
    # Any HTTP answer, even 401 or 404, proves the service is reachable; only transport failures count.
    try:
        response = client(system).get(url, timeout=3.0)
        return PartHealth(ok=True, detail=f"reachable (HTTP {response.status_code})")
    except httpx.HTTPError as exc:
        return PartHealth(ok=False, detail=f"unreachable ({type(exc).__name__})")


def _keys(settings: Settings) -> PartHealth:
    problems = settings.key_problems()
    return PartHealth(ok=not problems, detail=" ".join(problems) or "safe")


def check_health(settings: Settings | None = None, accounts: TableAccounts | None = None) -> HealthReport:
    """Check every storage account and configured dependency in parallel."""
    settings = settings or get_settings()
    accounts = accounts or TableAccounts(settings)
    checks = {"keys": lambda: _keys(settings), "storage:app": lambda: _storage(accounts, None)}
    for region in settings.enabled_regions:
        checks[f"storage:{region}"] = lambda region=region: _storage(accounts, region)
    if settings.entra_tenant_id:
        discovery = f"{settings.entra_authority_host}/{settings.entra_tenant_id}/v2.0/.well-known/openid-configuration"
        checks["entra"] = lambda: _http("entra", discovery)
        checks["graph"] = lambda: _http("graph", f"{settings.graph_base_url}/v1.0/")
    if settings.acs_endpoint:
        checks["acs"] = lambda: _http("acs", settings.acs_endpoint.rstrip("/") + "/")
    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = {name: pool.submit(check) for name, check in checks.items()}
        parts = {name: future.result() for name, future in futures.items()}
    return HealthReport(ok=all(p.ok for p in parts.values()), parts=parts)
