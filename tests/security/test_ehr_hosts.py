"""Credentials stay with Cerner: a Cerner environment that points the connector at another host gets nothing.

"Another host" is the Oracle stand-in under 127.0.0.1, outside the sandbox's TRUSTED_EHR_HOSTS (localhost): the
same server, so had the connector called it, the stand-in would have recorded the credentials it received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sandbox import config
from sandbox.seed import DEMO_SMS_NUMBER, ORGANIZER_UPN
from shared.ehr_hosts import UntrustedEhrHost
from shared.fhir import FhirClient
from shared.smart import backend_services
from shared.smart.discovery import smart_configuration
from shared.smart.ehr_launch import exchange_code
from shared.storage.accounts import default_accounts
from shared.storage.config import ConfigRepository, FhirEndpoint
from tests.integration.launching import launch_at, launch_url
from tests.integration.portal_client import sign_in
from tests.integration.reminders_world import AppSettings
from tests.security.conftest import OTHER_HOST, assert_refused_page


@pytest.fixture()
def nothing_reaches_the_other_host(oracle):
    """After the test: not one request (let alone a credential) reached the stand-in under the other host name."""
    before = oracle.requests_by_host[OTHER_HOST]
    yield
    assert oracle.received_by(OTHER_HOST) == []
    assert oracle.requests_by_host[OTHER_HOST] == before


@pytest.fixture()
def admin(sandbox):
    from sandbox.entra import ADMIN_UPN

    portal = sign_in(sandbox, ADMIN_UPN)
    yield portal
    portal.http.close()


@pytest.fixture()
def system_key(sandbox, oracle):
    """The system account registered for private_key_jwt (and its Basic secret), and the app given both."""
    key = ec.generate_private_key(ec.SECP384R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    oracle.register_system_client(config.SMART_SYSTEM_CLIENT_ID, jwks={"keys": [{**public, "kid": "sys-1"}]},
                                  secret=config.SMART_SYSTEM_SECRET)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    applied = AppSettings({**sandbox.settings_env, "SMART_SYSTEM_PRIVATE_KEY": pem, "SMART_SYSTEM_KEY_ID": "sys-1"})
    yield
    applied.undo()
    oracle.register_system_client(config.SMART_SYSTEM_CLIENT_ID, secret=config.SMART_SYSTEM_SECRET)


# --- the provider launch ------------------------------------------------------------------------------------------


def test_token_endpoint_on_another_host_gets_no_authorization_code(sandbox, oracle, cerner,
                                                                   nothing_reaches_the_other_host):
    """SMART configuration naming a token endpoint on another host, to harvest authorization codes."""
    oracle.advertise_elsewhere(cerner.tenant, "token", cerner.other_origin)
    response = launch_at(sandbox, oracle, cerner)
    assert_refused_page(response, 502, f"token endpoint is on {OTHER_HOST}, which is not a trusted Oracle Health host")


def test_authorize_endpoint_on_another_host_is_not_where_the_browser_goes(sandbox, oracle, cerner,
                                                                          nothing_reaches_the_other_host):
    """SMART configuration naming an authorize endpoint on another host (phishing the provider's sign-in)."""
    oracle.advertise_elsewhere(cerner.tenant, "authorize", cerner.other_origin)
    url = launch_url(sandbox, oracle.create_launch(cerner.appointment(oracle), tenant=cerner.tenant),
                     iss=cerner.base_url)
    response = httpx.get(url, follow_redirects=False, headers={"Accept": "text/html"})
    assert_refused_page(response, 502, f"authorization endpoint is on {OTHER_HOST}")
    assert "location" not in response.headers


def test_jwks_on_another_host_is_not_fetched(sandbox, oracle, cerner, nothing_reaches_the_other_host):
    """SMART configuration naming a JWKS on another host (keys the attacker controls sign the id_token)."""
    oracle.advertise_elsewhere(cerner.tenant, "jwks", cerner.other_origin)
    response = launch_at(sandbox, oracle, cerner)
    assert_refused_page(response, 502, f"JWKS URI is on {OTHER_HOST}")


def test_registered_fhir_base_on_another_host_is_refused_at_launch(sandbox, oracle, accounts,
                                                                   nothing_reaches_the_other_host):
    """A stored FHIR base URL outside TRUSTED_EHR_HOSTS (registered before the list was narrowed) used by a launch."""
    tenant = oracle.add_tenant()
    base_url = f"{sandbox.world.oracle_other_host_url}/r4/{tenant}"
    endpoint = FhirEndpoint(base_url=base_url, environment="test", organizer=ORGANIZER_UPN)
    repository = ConfigRepository(accounts)
    repository.save_endpoint(config.ENTRA_TENANT_ID, endpoint, "security-test")
    try:
        launch_id = oracle.create_launch(oracle.seeded[tenant].today[1], tenant=tenant)
        response = httpx.get(launch_url(sandbox, launch_id, iss=base_url), follow_redirects=True)
    finally:
        repository.delete_endpoint(config.ENTRA_TENANT_ID, endpoint.id)
    assert_refused_page(response, 502, f"FHIR base URL is on {OTHER_HOST}")


def test_confidential_client_secret_is_not_sent_to_a_token_endpoint_on_another_host(sandbox, oracle, cerner, app_env,
                                                                                    nothing_reaches_the_other_host):
    """Code exchange of a confidential provider app against a token endpoint on another host."""
    oracle.advertise_elsewhere(cerner.tenant, "token", cerner.other_origin)
    configuration = smart_configuration(cerner.base_url)
    with pytest.raises(UntrustedEhrHost) as refused:
        exchange_code(configuration, code="a-code", redirect_uri=f"{sandbox.world.host_url}/api/launch/callback",
                      client_id=config.SMART_CLIENT_ID, client_secret="provider-app-secret", code_verifier=None)
    assert refused.value.status == 502 and f"token endpoint is on {OTHER_HOST}" in refused.value.message


# --- the reminder job's system account -------------------------------------------------------------------------------


def test_system_secret_is_not_posted_to_a_token_endpoint_on_another_host(oracle, cerner, app_env,
                                                                         nothing_reaches_the_other_host):
    """SMART configuration naming a token endpoint on another host, to harvest the system account's Basic secret."""
    oracle.advertise_elsewhere(cerner.tenant, "token", cerner.other_origin)
    with pytest.raises(UntrustedEhrHost) as refused:
        backend_services.system_token(cerner.base_url)
    assert refused.value.status == 502 and f"token endpoint is on {OTHER_HOST}" in refused.value.message


def test_client_assertion_is_not_posted_to_a_token_endpoint_on_another_host(oracle, cerner, system_key,
                                                                            nothing_reaches_the_other_host):
    """Token endpoint on another host, to collect a client assertion (replayable there within its lifetime)."""
    oracle.advertise_elsewhere(cerner.tenant, "token", cerner.other_origin)
    with pytest.raises(UntrustedEhrHost):
        backend_services.system_token(cerner.base_url)


def test_backend_services_are_not_downgraded_to_the_shared_secret(sandbox, oracle, cerner, system_key):
    """A system account with both a key and a secret: the secret must not travel when private_key_jwt is offered."""
    assert backend_services.system_token(cerner.base_url)
    sent = [r.kind for r in oracle.received_by("localhost") if r.path.endswith(f"/tenants/{cerner.tenant}/protocols/"
                                                                             "oauth2/profiles/smart-v1/token")]
    assert sent == ["client_assertion"]


def test_next_link_to_another_host_gets_no_bearer_token(oracle, cerner, app_env, nothing_reaches_the_other_host):
    """Search Bundle whose next link points at another host, to collect the system access token."""
    oracle.advertise_elsewhere(cerner.tenant, "next", cerner.other_origin)
    now = datetime.now(UTC)
    fhir = FhirClient(cerner.base_url, backend_services.system_token(cerner.base_url))
    query = {"location": oracle.seeded[cerner.tenant].locations[0], "_count": "1",
             "date": [f"ge{(now - timedelta(hours=2)).isoformat()}", f"lt{(now + timedelta(hours=30)).isoformat()}"]}
    pages = fhir.appointments(query)
    assert next(pages).id  # the first page comes from the trusted base
    with pytest.raises(UntrustedEhrHost) as refused:
        next(pages)
    assert f"paging (next) link is on {OTHER_HOST}" in refused.value.message


def test_reminder_run_posts_no_secret_to_a_token_endpoint_on_another_host(oracle, cerner, app_env,
                                                                           nothing_reaches_the_other_host):
    """A registered FHIR URL whose discovery later names a token endpoint on another host, then a reminder run."""
    from shared.notifications import run_notifications

    repository = ConfigRepository(default_accounts())
    repository.save_endpoint(config.ENTRA_TENANT_ID, cerner.endpoint.model_copy(
        update={"sms_number": DEMO_SMS_NUMBER}), "security-test")
    oracle.advertise_elsewhere(cerner.tenant, "token", cerner.other_origin)
    report = run_notifications(datetime.now(UTC), max_seconds=20)
    assert report.counts.get("endpoint_errors", 0) >= 1, report.summary()


# --- registration in the portal -----------------------------------------------------------------------------------


def test_registering_a_fhir_url_on_an_untrusted_host_is_refused(sandbox, oracle, admin,
                                                                nothing_reaches_the_other_host):
    """An administrator registering a FHIR base URL on a host outside TRUSTED_EHR_HOSTS."""
    base_url = f"{sandbox.world.oracle_other_host_url}/r4/{config.CERNER_TEST_TENANT}"
    response = admin.send("POST", "endpoints", {"base_url": base_url, "environment": "test", "display_name": "X",
                                                "departments": ["32216049"], "organizer": ORGANIZER_UPN})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["check"] == "trusted_host"
    assert body["message"] == (f"FHIR URL isn't valid: {OTHER_HOST} is not a trusted Oracle Health host "
                               "(trusted: localhost).")
    assert base_url not in [e["base_url"] for e in admin.get("endpoints").json()["endpoints"]]


def test_registering_a_fhir_url_whose_token_endpoint_is_on_another_host_is_refused(sandbox, oracle, admin,
                                                                                   nothing_reaches_the_other_host):
    """An administrator registering a trusted FHIR URL whose SMART configuration names a token endpoint elsewhere."""
    tenant = oracle.add_tenant()
    oracle.advertise_elsewhere(tenant, "token", sandbox.world.oracle_other_host_url)
    base_url = sandbox.world.fhir_base(tenant)
    response = admin.send("POST", "endpoints", {"base_url": base_url, "environment": "test", "display_name": "X",
                                                "departments": ["32216049"], "organizer": ORGANIZER_UPN})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["check"] == "smart_configuration"
    assert f"names a token endpoint on {OTHER_HOST}, which is not a trusted Oracle Health host" in body["message"]
    assert base_url not in [e["base_url"] for e in admin.get("endpoints").json()["endpoints"]]
