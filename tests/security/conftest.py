"""Attacks through the real flows: a fresh, switchable Cerner tenant per test, and the app's code run in-process."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from sandbox import config
from sandbox.seed import ORGANIZER_UPN
from shared.storage.config import ConfigRepository, FhirEndpoint
from tests.integration.launching import launch_url, todays_appointments
from tests.integration.reminders_world import AppSettings

OTHER_HOST = "127.0.0.1"  # the Oracle stand-in under a name outside the sandbox's TRUSTED_EHR_HOSTS (localhost)


@dataclass
class Cerner:
    """A Cerner tenant of the stand-in, registered as a test endpoint of the demo organization."""

    tenant: str
    base_url: str
    endpoint: FhirEndpoint
    other_origin: str  # the same server under another host name

    def appointment(self, oracle) -> str:
        return todays_appointments(oracle, tenant=self.tenant)[0]


@pytest.fixture()
def cerner(sandbox, oracle, accounts) -> Cerner:
    """Its own FHIR base URL, so the app's discovery and JWKS caches start empty for this test only."""
    tenant = oracle.add_tenant()
    base_url = sandbox.world.fhir_base(tenant)
    endpoint = FhirEndpoint(base_url=base_url, environment="test", display_name="Security test",
                            departments=oracle.seeded[tenant].locations, organizer=ORGANIZER_UPN)
    repository = ConfigRepository(accounts)
    repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint, "security-test")
    yield Cerner(tenant, base_url, endpoint, sandbox.world.oracle_other_host_url)
    repository.delete_endpoint(config.ENTRA_TENANT_ID, endpoint.id)


@pytest.fixture()
def app_env(sandbox):
    """The app's settings and singletons pointed at the sandbox, for the app's own code run in this process."""
    applied = AppSettings(dict(sandbox.settings_env))
    yield applied
    applied.undo()


def launch(sandbox, oracle, cerner: Cerner, client: httpx.Client | None = None) -> httpx.Response:
    """A provider launch at the tenant, followed like a browser does, to the page it ends on."""
    url = launch_url(sandbox, oracle.create_launch(cerner.appointment(oracle), tenant=cerner.tenant),
                     iss=cerner.base_url)
    if client is not None:
        return client.get(url)
    with httpx.Client(follow_redirects=True, timeout=30) as browser:
        return browser.get(url)


def assert_refused_page(response: httpx.Response, status: int, message: str) -> None:
    """The specific refusal: its status and its message on a friendly page, no stack trace, no visit."""
    assert response.status_code == status, response.text[:2000]
    assert message in response.text, response.text[:2000]
    assert "Reference:" in response.text and "Traceback" not in response.text
    hops = [*response.history, response]
    assert not any("/api/visits/" in str(hop.url) for hop in hops), "no visit page was reached"
    assert not any(re.search(r"ehr_session=[^;]", header)
                   for hop in hops for header in hop.headers.get_list("set-cookie")), "no Cerner session was opened"


def linked_ehr_users(accounts, cerner: Cerner) -> list[dict]:
    """EHR users linked under the tenant's endpoint (a refused launch links nobody)."""
    table = accounts.table("ehrusers", "americas")
    return [dict(row) for row in table.list_entities() if row["PartitionKey"] == cerner.endpoint.id]
