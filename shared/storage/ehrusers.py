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

    def count_links(self, region: Region, endpoint_id: str) -> int:
        """How many EHR users of this FHIR endpoint are linked to a Microsoft account."""
        return len(self._keys(region, endpoint_id))

    def unlink_endpoint(self, region: Region, endpoint_id: str) -> int:
        """Delete every link of a FHIR endpoint (it is being removed); returns how many there were."""
        from azure.data.tables import TableTransactionError  # the Tables SDK loads with the first table client

        table = self.accounts.table(TABLE, region)
        keys = self._keys(region, endpoint_id)
        # One partition, so deletes go in transactions of up to 100 (the Table service's batch limit).
        for start in range(0, len(keys), 100):
            batch = keys[start:start + 100]
            try:
                table.submit_transaction([("delete", {"PartitionKey": endpoint_id, "RowKey": row}) for row in batch])
            except TableTransactionError:  # a row went meanwhile (a provider unlinked): delete one by one
                for row in batch:
                    table.delete_entity(endpoint_id, row)
        return len(keys)

    def _keys(self, region: Region, endpoint_id: str) -> list[str]:
        rows = self.accounts.table(TABLE, region).query_entities(
            "PartitionKey eq @pk", parameters={"pk": endpoint_id}, select=["RowKey"])
        return [row["RowKey"] for row in rows]
