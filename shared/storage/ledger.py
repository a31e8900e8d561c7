"""Notification ledger: one row per message that must go out once, keyed by an opaque hash, in the region account."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import UpdateMode

from shared.settings import Region
from shared.storage import entities
from shared.storage.accounts import TableAccounts
from shared.storage.schema import check_entity

TABLE = "ledger"


def day_partition(endpoint_id: str, day: datetime) -> str:
    """Partition per endpoint and appointment day, so a whole day is purged at once."""
    return f"{endpoint_id}-{day.astimezone(UTC):%Y%m%d}"


class LedgerRepository:
    """Claims and outcomes of notifications; a claim is won by exactly one run (optimistic concurrency)."""

    def __init__(self, accounts: TableAccounts):
        self.accounts = accounts

    def _table(self, region: Region):
        return self.accounts.table(TABLE, region)

    def get(self, region: Region, partition: str, row: str) -> dict[str, Any] | None:
        return entities.get(self._table(region), partition, row)

    def claim(self, region: Region, partition: str, row: str, fields: dict[str, Any]) -> bool:
        """Create the row; False when another run (or an earlier one) already has it."""
        entity = {"PartitionKey": partition, "RowKey": row, "Kind": "notification", **fields}
        check_entity(TABLE, entity)
        try:
            self._table(region).create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    def update(self, region: Region, partition: str, row: str, fields: dict[str, Any],
               etag: str | None = None) -> bool:
        """Merge fields; with an etag, only if nobody changed the row meanwhile."""
        entity = {"PartitionKey": partition, "RowKey": row, "Kind": "notification", **fields}
        check_entity(TABLE, entity)
        try:
            if etag:
                self._table(region).update_entity(entity, mode=UpdateMode.MERGE, etag=etag,
                                                  match_condition=MatchConditions.IfNotModified)
            else:
                self._table(region).update_entity(entity, mode=UpdateMode.MERGE)
            return True
        except ResourceModifiedError:
            return False

    def purge_before(self, region: Region, endpoint_id: str, cutoff: datetime) -> int:
        """Delete rows of appointments that ended before the cutoff; returns how many."""
        table = self._table(region)
        rows = table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi and appointment_end lt @cutoff",
            parameters={"lo": f"{endpoint_id}-", "hi": f"{endpoint_id}.", "cutoff": cutoff},
        )
        count = 0
        for row in rows:
            table.delete_entity(row["PartitionKey"], row["RowKey"])
            count += 1
        return count


def message_tag(partition: str, row: str) -> str:
    """The ACS message tag of a ledger row: delivery reports carry it back (opaque, no PHI)."""
    return f"{partition}|{row}"


def parse_message_tag(tag: str) -> tuple[str, str] | None:
    partition, separator, row = (tag or "").partition("|")
    return (partition, row) if separator and partition and row else None
