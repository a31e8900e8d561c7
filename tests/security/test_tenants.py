"""Tenants pinned: only ALLOWED_TENANTS sign in to the portal or launch, whatever the app registration's audience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import config
from sandbox.seed import sandbox_settings
from shared.errors import ConnectorError
from shared.http import call_counts
from shared.microsoft import entra as entra_client
from shared.settings import Settings
from shared.storage.config import ConfigRepository, FhirEndpoint
from shared.storage.portal_sessions import PortalSession, PortalSessionRepository
from shared.tokens import Sealer
from tests.integration.launching import launch_url
from tests.integration.portal_client import JSON
from tests.security.portal_world import UNLISTED_ADMIN, config_rows, directory_users, session_rows


def test_an_admin_of_a_tenant_not_on_allowed_tenants_gets_a_403_page_and_no_session(sandbox, entra, accounts):
    """A Global Administrator of another Microsoft tenant signs in to the portal (multi-tenant app registration)."""
    before = config_rows(accounts, config.UNLISTED_TENANT_ID)
    with directory_users(entra, UNLISTED_ADMIN), \
            httpx.Client(base_url=sandbox.world.host_url, follow_redirects=True, timeout=30) as http:
        page = http.get("/api/portal/auth/signin", params={"login_hint": UNLISTED_ADMIN.upn})
        cookies = [h for r in [*page.history, page] for h in r.headers.get_list("set-cookie")]
        me = http.get("/api/portal/me", headers=JSON)
    assert page.status_code == 403
    assert "not allowed to use this connector" in page.text and "ALLOWED_TENANTS" in page.text
    assert not any(c.startswith("portal_session=") and "Max-Age=3600" in c for c in cookies), "no session cookie"
    assert me.status_code == 401
    assert config_rows(accounts, config.UNLISTED_TENANT_ID) == before == [], "nothing stored"
    assert session_rows(accounts, config.UNLISTED_TENANT_ID) == [], "no server-side session"


def test_a_session_issued_before_the_tenant_left_allowed_tenants_no_longer_works(sandbox, accounts):
    """A portal session of a tenant that was removed from ALLOWED_TENANTS after it signed in keeps being used."""
    sealer = Sealer(sandbox_settings(sandbox))
    now = datetime.now(UTC)
    PortalSessionRepository(accounts).open(config.UNLISTED_TENANT_ID, PortalSession(
        key=sealer.keyed_hash("portal-session", "sid-1"), role="Global Administrator",
        expires_at=now + timedelta(hours=1), checked_at=now,
        refresh=sealer.seal_json({"rt": "x"}, 3600, "portal-refresh")))
    cookie = sealer.seal_json({"sid": "sid-1", "tid": config.UNLISTED_TENANT_ID, "oid": UNLISTED_ADMIN.oid,
                               "name": "", "csrf": "token"}, 3600, "portal-session")
    before = config_rows(accounts, config.UNLISTED_TENANT_ID)
    try:
        with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as http:
            http.cookies.set("portal_session", cookie)
            refused = http.put("/api/portal/region", json={"region": "emea"},
                               headers={**JSON, "X-CSRF-Token": "token"})
            listed = http.get("/api/portal/endpoints", headers=JSON)
    finally:
        key = sealer.keyed_hash("portal-session", "sid-1")
        PortalSessionRepository(accounts).revoke(config.UNLISTED_TENANT_ID, key)
    assert refused.status_code == listed.status_code == 403
    assert refused.json()["error"] == "tenant_not_allowed"
    assert config_rows(accounts, config.UNLISTED_TENANT_ID) == before, "no region pinned, nothing else stored"


def test_a_launch_from_a_cerner_environment_of_an_unlisted_tenant_is_refused(sandbox, oracle, accounts):
    """A provider launches from a Cerner environment registered by a tenant that is no longer on ALLOWED_TENANTS."""
    base_url = f"{sandbox.world.oracle_url}/r4/{config.CERNER_PROD_TENANT}-unlisted"
    repository = ConfigRepository(accounts)
    repository.save_endpoint(config.UNLISTED_TENANT_ID, FhirEndpoint(base_url=base_url, environment="test"), "seed")
    authorize_before = sum(n for label, n in oracle.request_counts.items() if "authorize" in label)
    links_before = [dict(r) for r in accounts.table("ehrusers", "americas").list_entities()]
    try:
        with httpx.Client(timeout=30) as browser:
            page = browser.get(launch_url(sandbox, oracle.create_launch(oracle.seeded[config.CERNER_TEST_TENANT]
                                                                         .today[0]), iss=base_url))
    finally:
        repository.delete_endpoint(config.UNLISTED_TENANT_ID, FhirEndpoint(base_url=base_url, environment="test").id)
    assert page.status_code == 403
    assert "belongs to an organization that may not use this connector" in page.text
    assert "location" not in page.headers and "ehr_launch=" not in page.headers.get("set-cookie", "")
    assert sum(n for label, n in oracle.request_counts.items() if "authorize" in label) == authorize_before
    assert [dict(r) for r in accounts.table("ehrusers", "americas").list_entities()] == links_before


def test_an_id_token_of_an_unlisted_tenant_is_refused_before_any_key_is_fetched(monkeypatch):
    """A validly shaped Entra id_token whose tid is a tenant not on ALLOWED_TENANTS (e.g. from a multi-tenant flow)."""
    settings = Settings(entra_tenant_id=config.ENTRA_TENANT_ID, entra_client_id=config.ENTRA_CLIENT_ID,
                        entra_authority_host="https://login.invalid")
    monkeypatch.setattr(entra_client, "get_settings", lambda: settings)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"tid": config.UNLISTED_TENANT_ID, "oid": UNLISTED_ADMIN.oid, "aud": config.ENTRA_CLIENT_ID,
              "iss": f"https://login.invalid/{config.UNLISTED_TENANT_ID}/v2.0", "wids": [config.GLOBAL_ADMIN]}
    token = jwt.encode(claims, key, algorithm="RS256")
    calls_before = call_counts().get("entra", 0)
    with pytest.raises(ConnectorError) as refused:
        entra_client.verify_entra_id_token(token, nonce=None)
    assert (refused.value.status, refused.value.code) == (403, "tenant_not_allowed")
    assert call_counts().get("entra", 0) == calls_before, "no JWKS request for a tenant that is not allowed"


def test_a_launch_from_a_recently_read_environment_is_refused_once_its_tenant_leaves_allowed_tenants(
        app_env, cerner, oracle, monkeypatch):
    """A launch from a Cerner environment this instance just cached, after its tenant left ALLOWED_TENANTS."""
    from shared.launch import NotConfigured, ProviderLaunch
    from shared.settings import get_settings

    monkeypatch.setenv("CONFIG_CACHE_SECONDS", "30")  # as deployed
    get_settings.cache_clear()
    launch = oracle.create_launch(oracle.seeded[cerner.tenant].today[0])
    assert ProviderLaunch().start({"iss": cerner.base_url, "launch": launch}).location, "allowed: on to Cerner"
    monkeypatch.setenv("ALLOWED_TENANTS", config.OTHER_TENANT_ID)
    get_settings.cache_clear()  # the row read above stays in the configuration cache
    calls_before = dict(call_counts())
    with pytest.raises(NotConfigured) as refused:
        ProviderLaunch().start({"iss": cerner.base_url, "launch": launch})
    assert refused.value.status == 403 and "may not use this connector" in refused.value.message
    assert dict(call_counts()) == calls_before, "no discovery, no authorize redirect: nothing sent to Cerner"
