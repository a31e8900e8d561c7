"""Helpers for the portal's attack tests: extra directory users, stored-state snapshots, a FHIR server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sandbox import config
from sandbox.entra import EntraUser

MEMBER = "b79fbf4d-3ef9-4689-8143-76b194e85509"
UNLISTED_ADMIN = EntraUser("6e5d4c3b-2a19-4087-9f6e-5d4c3b2a1908", config.UNLISTED_TENANT_ID,
                           "admin@tailspin-toys.example", "Tailspin Admin", (config.GLOBAL_ADMIN, MEMBER))


@contextlib.contextmanager
def directory_users(entra, *users: EntraUser) -> Iterator[None]:
    """Users present in the Entra stand-in's directory (their tenants consented) for the duration."""
    consented = set(entra.consented_tenants)
    for user in users:
        entra.add_user(user)
        entra.consented_tenants.add(user.tid)
    try:
        yield
    finally:
        with entra.lock:
            entra.users = [u for u in entra.users if u.oid not in {x.oid for x in users}]
            entra.consented_tenants.clear()
            entra.consented_tenants.update(consented)


def config_rows(accounts, partition: str) -> list[dict]:
    """The configuration stored under one partition (a tenant id or the URL index); sessions are not configuration."""
    table = accounts.table("config")
    rows = table.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
    return sorted((dict(r) for r in rows if r.get("Kind") != "portal_session"), key=lambda r: r["RowKey"])


def session_rows(accounts, partition: str) -> list[dict]:
    """The server-side portal sessions of a tenant."""
    rows = accounts.table("config").query_entities("PartitionKey eq @pk and Kind eq 'portal_session'",
                                                   parameters={"pk": partition})
    return [dict(r) for r in rows]


def index_owner(accounts, endpoint_id: str) -> str | None:
    rows = [r for r in config_rows(accounts, "fhir_index") if r["RowKey"] == endpoint_id]
    return rows[0]["tenant_id"] if rows else None


@contextlib.contextmanager
def region_chosen(accounts, portal) -> Iterator[str]:
    """The portal's organization has a data region for the duration; one chosen here is un-pinned afterwards,
    so tests that meet the organization fresh still do."""
    table = accounts.table("config")
    tenant = portal.me["tenant_id"]
    fresh = not [r for r in config_rows(accounts, tenant) if r["RowKey"] == "organization"]
    if fresh:
        assert portal.send("PUT", "region", {"region": "americas"}).status_code == 200
    try:
        yield portal.get("region").json()["region"]
    finally:
        if fresh:
            table.delete_entity(tenant, "organization")
