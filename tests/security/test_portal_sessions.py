"""Portal sessions and state changes: sign-out revokes, reads change nothing, removals are confirmed."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import httpx

from sandbox import config
from sandbox.entra import ADMIN_UPN, OTHER_ADMIN_UPN, EntraUser
from shared.storage.ehrusers import EhrUserRepository
from tests.integration.portal_client import JSON, sign_in
from tests.security.portal_world import MEMBER, config_rows, directory_users, index_owner, region_chosen

ORGANIZER = "virtual.appointments@contoso-health.example"
NORTHWIND_ADMIN = EntraUser("4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b99", config.NEW_TENANT_ID,
                            "it.lead@northwind-clinic.example", "Northwind IT Lead", (config.GLOBAL_ADMIN, MEMBER))


def endpoint_body(base_url: str, organizer: str = ORGANIZER) -> dict:
    return {"base_url": base_url, "environment": "test", "display_name": "Session test", "departments": [],
            "organizer": organizer}


def test_a_copied_session_cookie_stops_working_after_sign_out(sandbox, accounts):
    """Someone who copied an administrator's session cookie keeps using it after the administrator signed out."""
    portal = sign_in(sandbox, ADMIN_UPN)
    copied = portal.http.cookies["portal_session"]
    out = portal.http.post("/api/portal/auth/signout", data={"csrf_token": portal.csrf}, follow_redirects=False)
    assert out.status_code == 303
    before = config_rows(accounts, config.ENTRA_TENANT_ID)
    with httpx.Client(base_url=sandbox.world.host_url, timeout=30) as thief:
        thief.cookies.set("portal_session", copied)
        me = thief.get("/api/portal/me", headers=JSON)
        change = thief.put("/api/portal/sms/consents", json={"consent_send": False, "consent_attendees": False},
                           headers={**JSON, "X-CSRF-Token": portal.csrf})
        page = thief.get("/api/portal")
    assert me.status_code == change.status_code == 401
    assert change.json()["error"] == "not_signed_in"
    assert 'href="/api/portal/auth/signin"' in page.text, "the page offers the sign-in, not the wizard"
    assert config_rows(accounts, config.ENTRA_TENANT_ID) == before, "the consents are untouched"


def test_a_get_of_a_numbers_status_never_buys_it(sandbox, admin, acs, accounts):
    """A cross-site GET (an image tag) of a number's status URL, to push a phone-number purchase on."""
    started = admin.send("POST", "sms/numbers", {"country": "US"})
    assert started.status_code == 202, started.text
    number_id = started.json()["id"]
    deadline = time.monotonic() + 15
    while any(o.operation_type == "search" and o.status_at(acs.clock()) == "running" for o in acs.operations.values()):
        assert time.monotonic() < deadline, "the ACS search did not finish"
        time.sleep(0.1)
    purchases = sum(o.operation_type == "purchase" for o in acs.operations.values())
    owned = set(acs.numbers)
    for _ in range(3):
        seen = admin.get(f"sms/numbers/{number_id}")
        assert seen.status_code == 200 and seen.json()["status"] == "searching"
    assert sum(o.operation_type == "purchase" for o in acs.operations.values()) == purchases, "no purchase started"
    assert set(acs.numbers) == owned
    assert admin.http.get(f"/api/portal/sms/numbers/{number_id}/advance").status_code in (404, 405)


def test_advancing_a_purchase_needs_the_sessions_csrf_token(sandbox, admin, acs):
    """A cross-site form POSTs to a number's advance URL without the session's CSRF token."""
    started = admin.send("POST", "sms/numbers", {"country": "US"})
    number_id = started.json()["id"]
    purchases = sum(o.operation_type == "purchase" for o in acs.operations.values())
    forged = admin.send("POST", f"sms/numbers/{number_id}/advance", csrf=None)
    assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
    assert sum(o.operation_type == "purchase" for o in acs.operations.values()) == purchases
    assert admin.get(f"sms/numbers/{number_id}").json()["status"] == "searching"


def test_removing_a_url_without_confirmation_deletes_nothing(sandbox, admin, fhir_server, accounts):
    """A script (or a double click) DELETEs a FHIR base URL without the confirmation step."""
    added = admin.send("POST", "endpoints", endpoint_body(f"{fhir_server}/r4/good-unconfirmed"))
    assert added.status_code == 201, added.text
    endpoint_id = added.json()["id"]
    links = EhrUserRepository(accounts)
    links.link("americas", endpoint_id, "https://fhir.example/r4/t/Practitioner/1", str(uuid.uuid4()))
    try:
        before = (config_rows(accounts, config.ENTRA_TENANT_ID), links.count_links("americas", endpoint_id))
        for path in (f"endpoints/{endpoint_id}", f"endpoints/{endpoint_id}?confirm=yes",
                     f"endpoints/{endpoint_id}?confirm=True"):
            asked = admin.send("DELETE", path)
            assert asked.status_code == 409 and asked.json()["error"] == "confirmation_required", path
            assert asked.json()["provider_links"] == 1
            assert "1 provider link to Microsoft accounts" in asked.json()["message"]
        after = (config_rows(accounts, config.ENTRA_TENANT_ID), links.count_links("americas", endpoint_id))
        assert after == before and index_owner(accounts, endpoint_id) == config.ENTRA_TENANT_ID
    finally:
        admin.send("DELETE", f"endpoints/{endpoint_id}?confirm=true")


def test_a_removed_urls_provider_links_do_not_pass_to_the_next_organization(sandbox, admin, fhir_server, accounts):
    """Another organization registers a URL the first one removed, to inherit its providers' Microsoft links."""
    base_url = f"{fhir_server}/r4/good-inherited"
    added = admin.send("POST", "endpoints", endpoint_body(base_url))
    endpoint_id = added.json()["id"]
    links = EhrUserRepository(accounts)
    ehr_user = f"{base_url}/Practitioner/4242"
    links.link("americas", endpoint_id, ehr_user, str(uuid.uuid4()))
    removed = admin.send("DELETE", f"endpoints/{endpoint_id}?confirm=true")
    assert removed.status_code == 200 and removed.json()["provider_links_deleted"] == 1
    assert links.count_links("americas", endpoint_id) == 0 and index_owner(accounts, endpoint_id) is None

    other = sign_in(sandbox, OTHER_ADMIN_UPN)
    try:
        with region_chosen(accounts, other) as region:
            taken = other.send("POST", "endpoints", endpoint_body(base_url, "admin@fabrikam-clinic.example"))
            assert taken.status_code == 201, taken.text
            assert links.lookup(region, endpoint_id, ehr_user) is None, "no Contoso provider link carried over"
            assert other.send("DELETE", f"endpoints/{endpoint_id}?confirm=true").status_code == 200
    finally:
        other.http.close()


def wait_for(check, seconds: float = 30.0):
    """Poll until `check()` returns something truthy (the portal re-reads roles every PORTAL_ROLE_CHECK_SECONDS)."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, "the portal did not notice the change in Entra"
        time.sleep(0.2)
    return result


def test_a_global_administrator_role_removed_in_entra_stops_writing_within_minutes(sandbox, entra, accounts):
    """An administrator whose Global Administrator role was removed in Entra keeps changing the configuration."""
    user = NORTHWIND_ADMIN
    with directory_users(entra, user):
        portal = sign_in(sandbox, user.upn)
        try:
            assert portal.me["can_write"]
            entra.add_user(replace(user, wids=(config.GLOBAL_READER, MEMBER)))  # demoted to a reader in Entra
            wait_for(lambda: portal.get("me").json().get("role") == "Global Reader")
            before = config_rows(accounts, config.NEW_TENANT_ID)
            refused = portal.send("PUT", "sms/consents", {"consent_send": True, "consent_attendees": True})
            assert refused.status_code == 403 and refused.json()["error"] == "read_only"
            entra.add_user(replace(user, wids=(MEMBER,)))  # then no admin role at all
            gone = wait_for(lambda: (r := portal.get("endpoints")).status_code != 200 and r)
            assert gone.status_code == 403 and gone.json()["error"] == "role_missing"
            assert portal.get("me").status_code == 401, "the session was revoked"
            assert config_rows(accounts, config.NEW_TENANT_ID) == before, "nothing changed"
        finally:
            portal.http.close()


def test_a_user_deleted_in_entra_loses_the_portal_within_minutes(sandbox, entra, accounts):
    """An administrator deleted from the directory keeps using an open portal session."""
    leaver = replace(NORTHWIND_ADMIN, oid="4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1baa", upn="leaver@northwind-clinic.example")
    with directory_users(entra, NORTHWIND_ADMIN, leaver):
        portal = sign_in(sandbox, leaver.upn)
        try:
            with entra.lock:
                entra.users = [u for u in entra.users if u.oid != leaver.oid]  # deleted in Entra
            ended = wait_for(lambda: (r := portal.get("me")).status_code != 200 and r)
            assert ended.status_code == 401 and ended.json()["error"] == "not_signed_in"
            before = config_rows(accounts, config.NEW_TENANT_ID)
            refused = portal.send("PUT", "region", {"region": "apac"})
            assert refused.status_code == 401
            assert config_rows(accounts, config.NEW_TENANT_ID) == before, "nothing changed"
        finally:
            portal.http.close()
