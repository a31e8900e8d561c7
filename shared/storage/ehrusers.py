"""Region-pinned link of an EHR user ID (scoped by FHIR endpoint) to an Entra object ID."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.settings import Region
from shared.storage import entities
from shared.storage.accounts import TableAccounts

TABLE = "ehrusers"


class EhrUserRepository:
    """The only personal data the connector keeps, in the organization's region account only."""

    def __init__(self, accounts: TableAccounts):
        self.accounts = accounts

    def link(self, region: Region, endpoint_id: str, ehr_user_id: str, entra_oid: str) -> None:
        """Remember that this EHR user is this Microsoft user."""
        entities.upsert(
            self.accounts.table(TABLE, region), TABLE, "ehr_user", endpoint_id, entities.key(ehr_user_id),
            {"entra_oid": entra_oid, "linked_at": datetime.now(UTC)},
        )

    def lookup(self, region: Region, endpoint_id: str, ehr_user_id: str) -> str | None:
        """The Entra object ID linked to this EHR user, or None before the one-time sign-in."""
        entity = entities.get(self.accounts.table(TABLE, region), endpoint_id, entities.key(ehr_user_id))
        return entity["entra_oid"] if entity else None

    def unlink(self, region: Region, endpoint_id: str, ehr_user_id: str) -> None:
        entities.delete(self.accounts.table(TABLE, region), endpoint_id, entities.key(ehr_user_id))
