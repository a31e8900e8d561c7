"""Notification ledger: one row per message that must go out once, keyed by an opaque hash, in the region account."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from shared.settings import Region
from shared.storage import entities
from shared.storage.accounts import TableAccounts
from shared.storage.schema import check_entity

TABLE = "ledger"
INDEX_KIND = "message_index"
INDEX_ROW = "notification"


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
        return self.create(region, partition, row, fields) is not None

    def create(self, region: Region, partition: str, row: str, fields: dict[str, Any],
               kind: str = "notification") -> str | None:
        """Create the row and return its etag; None when it exists already (someone else won the claim)."""
        entity = {"PartitionKey": partition, "RowKey": row, "Kind": kind, **fields}
        check_entity(TABLE, entity)
        try:
            return self._table(region).create_entity(entity).get("etag") or ""
        except ResourceExistsError:
            return None

    def update(self, region: Region, partition: str, row: str, fields: dict[str, Any],
               etag: str | None = None) -> bool:
        """Merge fields; with an etag, only if nobody changed the row meanwhile."""
        return self.merge(region, partition, row, fields, etag) is not None

    def merge(self, region: Region, partition: str, row: str, fields: dict[str, Any], etag: str | None = None,
              kind: str = "notification") -> str | None:
        """Merge fields and return the new etag; None when the row changed since `etag` or is gone."""
        entity = {"PartitionKey": partition, "RowKey": row, "Kind": kind, **fields}
        check_entity(TABLE, entity)
        condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not on cold start

        try:
            return self._table(region).update_entity(entity, mode=UpdateMode.MERGE, **condition).get("etag") or ""
        except (ResourceModifiedError, ResourceNotFoundError):
            return None

    def merge_many(self, region: Region, partition: str, rows: list[tuple[str, dict[str, Any], str]],
                   kind: str = "notification") -> bool:
        """Merge (row, fields, etag) of one partition in one transaction, each only if unchanged since its etag;
        False, and nothing written, when any row changed or is gone."""
        from azure.data.tables import TableTransactionError, UpdateMode

        operations = []
        for row, fields, etag in rows:
            entity = {"PartitionKey": partition, "RowKey": row, "Kind": kind, **fields}
            check_entity(TABLE, entity)
            operations.append(("update", entity, {"mode": UpdateMode.MERGE, "etag": etag,
                                                  "match_condition": MatchConditions.IfNotModified}))
        try:
            self._table(region).submit_transaction(operations)
        except TableTransactionError:
            return False
        return True

    def rows_between(self, region: Region, endpoint_id: str, first_day: datetime, last_day: datetime,
                     kind: str = "notification") -> list[dict[str, Any]]:
        """Rows of an endpoint whose partitions (appointment days, UTC) lie from first_day to last_day."""
        return list(self._table(region).query_entities(
            "PartitionKey ge @lo and PartitionKey le @hi and Kind eq @kind",
            parameters={"lo": day_partition(endpoint_id, first_day), "hi": day_partition(endpoint_id, last_day),
                        "kind": kind},
        ))

    def index_message(self, region: Region, message_id: str, partition: str, row: str,
                      appointment_end: datetime) -> None:
        """Record which notification row an ACS message id belongs to, in the row's own region account."""
        entity = {"PartitionKey": index_partition(message_id), "RowKey": INDEX_ROW, "Kind": INDEX_KIND,
                  "ledger_partition": partition, "ledger_row": row, "appointment_end": appointment_end}
        check_entity(TABLE, entity)
        from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not on cold start

        self._table(region).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def unindex_message(self, region: Region, message_id: str) -> None:
        """Forget a message id's index row (its row was purged, or a new generation replaced the id)."""
        with contextlib.suppress(ResourceNotFoundError):
            self._table(region).delete_entity(index_partition(message_id), INDEX_ROW)

    def by_message_id(self, regions: tuple[Region, ...], message_id: str) -> tuple[Region, dict[str, Any]] | None:
        """The region and notification row that recorded an ACS message id (email reports carry no tag).

        A point read of the message's index row per region; rows sent before the index existed are found by the
        query of old. An index row whose notification row now carries another id (a later generation) or is gone
        finds nothing, as the query would."""
        if not message_id:
            return None
        for region in regions:
            index = entities.get(self._table(region), index_partition(message_id), INDEX_ROW)
            if index is not None:
                row = self.get(region, index["ledger_partition"], index["ledger_row"])
                return (region, row) if row is not None and row.get("message_id") == message_id else None
        return self.query_by_message_id(regions, message_id)

    def query_by_message_id(self, regions: tuple[Region, ...],
                            message_id: str) -> tuple[Region, dict[str, Any]] | None:
        """The fallback: a query per region for the notification row with this message id."""
        for region in regions:
            rows = self._table(region).query_entities(
                "Kind eq 'notification' and message_id eq @m", parameters={"m": message_id}, results_per_page=1)
            for row in rows:
                return region, row
        return None

    def partition_rows(self, region: Region, partition: str, kind: str) -> list[dict[str, Any]]:
        """Every row of one partition and kind."""
        return list(self._table(region).query_entities(
            "PartitionKey eq @p and Kind eq @kind", parameters={"p": partition, "kind": kind}))

    def purge_before(self, region: Region, endpoint_id: str, cutoff: datetime) -> int:
        """Delete rows of appointments that ended before the cutoff; returns how many."""
        table = self._table(region)
        rows = table.query_entities(
            "PartitionKey ge @lo and PartitionKey lt @hi and appointment_end lt @cutoff",
            parameters={"lo": f"{endpoint_id}-", "hi": f"{endpoint_id}.", "cutoff": cutoff},
        )
        count = 0
        for row in rows:
            with contextlib.suppress(ResourceNotFoundError):  # an overlapping run purged it first
                table.delete_entity(row["PartitionKey"], row["RowKey"])
                count += 1
            if row.get("channel") == "email" and row.get("message_id"):
                self.unindex_message(region, row["message_id"])
        return count


def index_partition(message_id: str) -> str:
    """The index row's partition: one per message id, so the lookup is a point read (never in an endpoint's range,
    which starts with the endpoint id)."""
    return f"msgid:{message_id}"


def message_tag(partition: str, row: str) -> str:
    """The ACS message tag of a ledger row: delivery reports carry it back (opaque, no PHI)."""
    return f"{partition}|{row}"


def parse_message_tag(tag: str) -> tuple[str, str] | None:
    """(partition, row) of a tag made by message_tag, or None."""
    partition, separator, row = (tag or "").partition("|")
    return (partition, row) if separator and partition and row else None
