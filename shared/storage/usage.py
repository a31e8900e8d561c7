"""Usage events per visit (opaque key, times only) in the organization's region account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from shared.settings import Region
from shared.storage import entities
from shared.storage.accounts import TableAccounts
from shared.storage.ledger import day_partition
from shared.storage.schema import check_entity

TABLE = "usage"
TRANSACTION_LIMIT = 100  # entities per Azure Tables transaction (all in one partition)


class UsageRepository:
    """Times of what happened in a visit; never who."""

    def __init__(self, accounts: TableAccounts):
        self.accounts = accounts

    def find(self, region: Region, endpoint_id: str, visit_key: str | Sequence[str],
             scheduled_start: datetime) -> tuple[str, dict[str, Any]]:
        """(row key, row) of the visit under the first of its keys with a row, else (the first key, {})."""
        return self._find(self.accounts.table(TABLE, region), day_partition(endpoint_id, scheduled_start), visit_key)

    def record(self, region: Region, endpoint_id: str, visit_key: str | Sequence[str], scheduled_start: datetime,
               fields: dict[str, Any], keep_first: tuple[str, ...] = (),
               found: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Merge event times into the visit's row (the first of its keys with one); keep_first fields keep theirs.
        `found`: what `find` answered, read while the caller waited on something else."""
        # Several keys are the visit under each hash key, active first: a visit recorded before a rotation keeps
        # its one row; a new row takes the first key.
        table = self.accounts.table(TABLE, region)
        partition = day_partition(endpoint_id, scheduled_start)
        visit_key, current = found or self._find(table, partition, visit_key)
        update = {k: v for k, v in fields.items() if not (k in keep_first and current.get(k))}
        entity = {"PartitionKey": partition, "RowKey": visit_key, "Kind": "visit",
                  "scheduled_start": scheduled_start, **update}
        check_entity(TABLE, entity)
        from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not on cold start

        table.upsert_entity(entity, mode=UpdateMode.MERGE)
        return {**current, **entity}

    def record_many(self, region: Region, visits: list[tuple[str, Sequence[str], datetime, dict[str, Any]]]) -> int:
        """Merge (endpoint id, visit keys, start, fields) rows in one transaction per partition and 100 rows."""
        from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not on cold start

        by_partition: dict[str, dict[str, dict[str, Any]]] = {}
        writes = 0
        for endpoint_id, visit_key, scheduled_start, fields in visits:
            keys = (visit_key,) if isinstance(visit_key, str) else tuple(visit_key)
            if len(keys) > 1:  # a hash key rotation is under way: find the row under its older key, one by one
                self.record(region, endpoint_id, keys, scheduled_start, fields)
                writes += 1
                continue
            partition = day_partition(endpoint_id, scheduled_start)
            entity = by_partition.setdefault(partition, {}).setdefault(keys[0], {
                "PartitionKey": partition, "RowKey": keys[0], "Kind": "visit", "scheduled_start": scheduled_start})
            entity.update(fields)  # one visit twice in a batch is one row: a transaction may not name it twice
        table = self.accounts.table(TABLE, region)
        for rows in by_partition.values():
            batch = list(rows.values())
            for entity in batch:
                check_entity(TABLE, entity)
            for first in range(0, len(batch), TRANSACTION_LIMIT):
                table.submit_transaction([("upsert", entity, {"mode": UpdateMode.MERGE})
                                          for entity in batch[first:first + TRANSACTION_LIMIT]])
                writes += 1
        return writes

    def get(self, region: Region, endpoint_id: str, visit_key: str | Sequence[str],
            scheduled_start: datetime) -> dict[str, Any]:
        """The visit's row under the first of its keys that has one, or {}."""
        table = self.accounts.table(TABLE, region)
        return self._find(table, day_partition(endpoint_id, scheduled_start), visit_key)[1]

    @staticmethod
    def _find(table, partition: str, visit_key: str | Sequence[str]) -> tuple[str, dict[str, Any]]:
        """(row key, entity) of the first key with a row, else (the first key, {})."""
        keys = (visit_key,) if isinstance(visit_key, str) else tuple(visit_key)
        for key in keys:
            found = entities.get(table, partition, key)
            if found:
                return key, found
        return keys[0], {}

    def between(self, region: Region, endpoint_ids: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Visits scheduled in [start, end) for these endpoints (for the usage report)."""
        table = self.accounts.table(TABLE, region)
        rows: list[dict[str, Any]] = []
        for endpoint_id in endpoint_ids:
            rows += [dict(r) for r in table.query_entities(
                "PartitionKey ge @lo and PartitionKey le @hi and scheduled_start ge @start and scheduled_start lt @end",
                parameters={"lo": day_partition(endpoint_id, start), "hi": day_partition(endpoint_id, end),
                            "start": start.astimezone(UTC), "end": end.astimezone(UTC)},
            )]
        return rows
