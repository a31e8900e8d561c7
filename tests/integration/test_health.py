"""/api/health/ready: 200 when every storage account and dependency answers, 503 naming what fails; /api/health
is liveness alone."""

from __future__ import annotations

import httpx

from sandbox.seed import sandbox_settings
from sandbox.servers import free_port
from shared.health import check_health


def test_health_is_200_with_every_part_named(sandbox):
    response = httpx.get(f"{sandbox.world.host_url}/api/health/ready", timeout=30)
    assert response.status_code == 200
    parts = response.json()["parts"]
    assert set(parts) == {"keys", "storage:app", "storage:americas", "storage:emea", "storage:apac", "entra", "graph",
                          "acs"}
    assert all(part["ok"] for part in parts.values())


def test_an_unreachable_region_account_and_dependency_are_named(sandbox):
    dead = f"http://127.0.0.1:{free_port()}/emea"
    settings = sandbox_settings(sandbox).model_copy(update={
        "table_endpoint_emea": dead, "acs_endpoint": f"https://localhost:{free_port()}",
    })
    report = check_health(settings)
    assert not report.ok
    assert sorted(report.failing) == ["acs", "storage:emea"]
    assert report.parts["storage:americas"].ok
