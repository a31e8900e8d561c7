"""Two administrators at once, as real concurrent requests through the host to Azurite: one wins, cleanly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from sandbox import config
from sandbox.entra import ADMIN_UPN, OTHER_ADMIN_UPN, EntraUser
from shared.storage.config import ConfigRepository, endpoint_id_for
from tests.integration.portal_client import Portal, sign_in
from tests.security.portal_world import MEMBER, config_rows, directory_users, index_owner, region_chosen

NEW_ADMINS = [EntraUser(f"4d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0{i}", config.NEW_TENANT_ID,
                        f"admin{i}@northwind-clinic.example", f"Northwind Admin {i}", (config.GLOBAL_ADMIN, MEMBER))
             for i in range(4)]
REGIONS = ["americas", "emea", "apac", "emea"]


def at_once(portals: list[Portal], send) -> list[httpx.Response]:
    """Each portal sends its request at the same moment (a barrier releases them together)."""
    barrier = threading.Barrier(len(portals))

    def one(index: int) -> httpx.Response:
        barrier.wait()
        return send(index, portals[index])

    with ThreadPoolExecutor(len(portals)) as pool:
        return list(pool.map(one, range(len(portals))))


def test_admins_choosing_different_regions_at_once_pin_exactly_one(sandbox, entra, accounts):
    """Administrators of a new organization choose different data regions at the same moment, to re-pin it."""
    with directory_users(entra, *NEW_ADMINS):
        portals = [sign_in(sandbox, user.upn) for user in NEW_ADMINS]
        try:
            assert config_rows(accounts, config.NEW_TENANT_ID) == [], "a fresh organization"
            answers = at_once(portals, lambda i, p: p.send("PUT", "region", {"region": REGIONS[i]}))
        finally:
            for portal in portals:
                portal.http.close()
    pinned = ConfigRepository(accounts).organization(config.NEW_TENANT_ID).region
    assert sorted(a.status_code for a in answers if a.status_code != 200) == [409] * sum(
        r != pinned for r in REGIONS), [a.text for a in answers]
    for region, answer in zip(REGIONS, answers, strict=True):
        if answer.status_code == 200:
            assert region == pinned and answer.json()["region"] == pinned
        else:
            assert answer.json()["message"] == f"The data region is already {pinned} and cannot be changed."
    rows = config_rows(accounts, config.NEW_TENANT_ID)
    assert [r["region"] for r in rows if r["Kind"] == "organization"] == [pinned], "one region row, never moved"


def test_two_organizations_registering_one_url_at_once_cannot_both_own_it(sandbox, accounts, fhir_server):
    """Admins of two organizations register the same Cerner URL at the same moment, to take it over."""
    contoso, fabrikam = sign_in(sandbox, ADMIN_UPN), sign_in(sandbox, OTHER_ADMIN_UPN)
    try:
        with region_chosen(accounts, fabrikam):
            tenants = [contoso.me["tenant_id"], fabrikam.me["tenant_id"]]
            organizers = ["virtual.appointments@contoso-health.example", "admin@fabrikam-clinic.example"]
            for attempt in range(3):
                base_url = f"{fhir_server}/r4/good-race-{attempt}"
                endpoint_id = endpoint_id_for(base_url)
                answers = at_once([contoso, fabrikam], lambda i, p, url=base_url: p.send("POST", "endpoints", {
                    "base_url": url, "environment": "test", "display_name": f"Race {i}", "departments": [],
                    "organizer": organizers[i]}))
                assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
                winner = tenants[[a.status_code for a in answers].index(201)]
                loser = tenants[1 - tenants.index(winner)]
                assert index_owner(accounts, endpoint_id) == winner
                owners = [t for t in tenants
                          if any(r["RowKey"] == f"fhir:{endpoint_id}" for r in config_rows(accounts, t))]
                assert owners == [winner], "only the winner holds an entry; nothing was stored for the other"
                refused = answers[tenants.index(loser)].json()
                assert refused["message"].startswith("This FHIR base URL is already registered")
                portal = contoso if winner == tenants[0] else fabrikam
                assert portal.send("DELETE", f"endpoints/{endpoint_id}?confirm=true").status_code == 200
    finally:
        contoso.http.close()
        fabrikam.http.close()


def test_two_admins_of_one_organization_adding_one_url_at_once_make_one_entry(sandbox, accounts, fhir_server):
    """Two administrators of one organization add the same URL at the same moment (a double registration)."""
    first, second = sign_in(sandbox, ADMIN_UPN), sign_in(sandbox, ADMIN_UPN)
    base_url = f"{fhir_server}/r4/good-double"
    try:
        answers = at_once([first, second], lambda i, p: p.send("POST", "endpoints", {
            "base_url": base_url, "environment": "test", "display_name": f"Double {i}", "departments": [],
            "organizer": "virtual.appointments@contoso-health.example"}))
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        winner = answers[[a.status_code for a in answers].index(201)].json()
        stored = ConfigRepository(accounts).endpoint(config.ENTRA_TENANT_ID, endpoint_id_for(base_url))
        assert stored.display_name == winner["display_name"], "the loser did not overwrite the winner's entry"
    finally:
        first.send("DELETE", f"endpoints/{endpoint_id_for(base_url)}?confirm=true")
        first.http.close()
        second.http.close()
