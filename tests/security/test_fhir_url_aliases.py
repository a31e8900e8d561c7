"""No alias of a FHIR base URL registers a Cerner tenant twice or takes over another organization's URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from sandbox import config
from sandbox.entra import ADMIN_UPN, OTHER_ADMIN_UPN
from shared.storage.config import ConfigRepository, FhirEndpoint, endpoint_id_for
from tests.integration.portal_client import sign_in
from tests.security.portal_world import config_rows, region_chosen

ORGANIZER = "virtual.appointments@fabrikam-clinic.example"
# A URL on the default https port can only be spelled with ":443" if it was registered without a port.
PORTLESS = "https://localhost/r4/0b8a0111-aliases"  # localhost: a trusted EHR host in the sandbox


def aliases_of(base: str) -> list[str]:
    """Other spellings of one FHIR base URL (case, trailing dot and slash, empty and dot segments, escapes)."""
    parts = urlsplit(base)
    host, path = parts.netloc, parts.path
    tenant = path.rsplit("/", 1)[1]
    return [
        f"HTTPS://{host.upper()}{path}",
        f"https://{parts.hostname}.:{parts.port}{path}",
        f"https://{host}{path}/",
        f"https://{host}//r4//{tenant}",
        f"https://{host}/r4/./{tenant}",
        f"https://{host}/dstu2/../r4/{tenant}",
        f"https://{host}/%72%34/{tenant}",
    ]


@pytest.fixture(scope="module")
def contoso(sandbox):
    portal = sign_in(sandbox, ADMIN_UPN)
    yield portal
    portal.http.close()


@pytest.fixture(scope="module")
def fabrikam(sandbox, accounts):
    portal = sign_in(sandbox, OTHER_ADMIN_UPN)
    with region_chosen(accounts, portal):
        yield portal
    portal.http.close()


@pytest.fixture(scope="module")
def portless(sandbox, accounts):
    """Contoso's registration of a URL without a port (written as the portal would store it)."""
    repository = ConfigRepository(accounts)
    endpoint = FhirEndpoint(base_url=PORTLESS, environment="production", display_name="Portless")
    repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint, "seed")
    yield endpoint
    repository.delete_endpoint(config.ENTRA_TENANT_ID, endpoint.id)


def body(base_url: str, environment: str = "test") -> dict:
    return {"base_url": base_url, "environment": environment, "display_name": "Alias", "departments": [],
            "organizer": ORGANIZER}


@pytest.mark.parametrize("which", range(7))
def test_another_organization_cannot_register_an_alias_of_contosos_url(sandbox, fabrikam, accounts, which):
    """Another organization registers a differently spelled alias of a Cerner URL that Contoso registered."""
    alias = aliases_of(sandbox.world.fhir_base())[which]
    before = (config_rows(accounts, fabrikam.me["tenant_id"]), config_rows(accounts, "fhir_index"))
    refused = fabrikam.send("POST", "endpoints", body(alias))
    assert refused.status_code == 409, (alias, refused.text)
    assert refused.json()["message"] == "This FHIR base URL is already registered by another organization."
    assert (config_rows(accounts, fabrikam.me["tenant_id"]), config_rows(accounts, "fhir_index")) == before


def test_an_organization_cannot_register_its_own_url_twice_under_an_alias(sandbox, contoso, accounts):
    """An administrator registers an alias of the organization's test URL as a second (production) entry."""
    alias = aliases_of(sandbox.world.fhir_base())[1]
    before = config_rows(accounts, contoso.me["tenant_id"])
    refused = contoso.send("POST", "endpoints", body(alias, "production"))
    assert refused.status_code == 409
    assert refused.json()["message"] == "This FHIR base URL is already registered under the test environment."
    assert config_rows(accounts, contoso.me["tenant_id"]) == before


def test_the_default_port_is_no_new_url(fabrikam, portless, accounts):
    """Another organization registers a URL again with its default port (:443) spelled out."""
    alias = PORTLESS.replace("localhost/", "LOCALHOST:443/") + "/"
    assert endpoint_id_for(alias) == portless.id
    before = config_rows(accounts, "fhir_index")
    refused = fabrikam.send("POST", "endpoints/validate", {"base_url": alias, "environment": "production"})
    assert refused.status_code == 409 and refused.json()["check"] == "registered"
    assert config_rows(accounts, "fhir_index") == before


def test_an_alias_cannot_rename_an_entry_to_another_url(sandbox, contoso, accounts):
    """An edit (PUT) of Contoso's entry carries another URL spelled like an alias, to move the entry."""
    endpoint_id = endpoint_id_for(sandbox.world.fhir_base())
    before = config_rows(accounts, contoso.me["tenant_id"])
    moved = contoso.send("PUT", f"endpoints/{endpoint_id}", body(sandbox.world.fhir_base() + "/../other"))
    assert moved.status_code == 400 and moved.json()["message"] == "The FHIR base URL of an entry cannot be changed."
    assert config_rows(accounts, contoso.me["tenant_id"]) == before
