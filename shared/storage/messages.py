"""One row per message sent, by channel, type and delivery status, kept after the ledger row is purged.

The rows live in the usage table of the organization's region, partitioned by endpoint and sending day, keyed by
the message's opaque ledger key; they hold no recipient, no text and no appointment.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.settings import Region
from shared.storage.accounts import TableAccounts
from shared.storage.schema import check_entity

TABLE = "usage"
KIND = "message"
TRANSACTION_LIMIT = 100  # entities per Table Storage transaction
PREFIX = "msg-"  # not a hex digit: these partitions never fall in a visit range ("<endpoint id>-<day>")


def message_partition(endpoint_id: str, sent: datetime) -> str:
    return f"{PREFIX}{endpoint_id}-{sent.astimezone(UTC):%Y%m%d}"


class MessageLog:
    """Which messages went out and what became of them, for the SMS report and the status page."""

    def __init__(self, accounts: TableAccounts, deferred: bool = False):
        """`deferred`: sends are kept until flush(), then written one transaction per partition (the reminder job)."""
        self.accounts, self.deferred = accounts, deferred
        self._pending: dict[tuple[Region, str], dict[str, dict[str, Any]]] = defaultdict(dict)
        self._lock = threading.Lock()

    def _merge(self, region: Region, partition: str, row: str, fields: dict[str, Any]) -> None:
        entity = {"PartitionKey": partition, "RowKey": row, "Kind": KIND, **fields}
        check_entity(TABLE, entity)
        from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not cold start

        self.accounts.table(TABLE, region).upsert_entity(entity, mode=UpdateMode.MERGE)

    def flush(self) -> int:
        """Write the deferred sends, up to 100 rows per transaction; returns how many rows."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(dict)
        for (region, partition), rows in pending.items():
            self._write_partition(region, partition, rows)
        return sum(len(rows) for rows in pending.values())

    def _write_partition(self, region: Region, partition: str, rows: dict[str, dict[str, Any]]) -> None:
        from azure.data.tables import UpdateMode

        entities = [{"PartitionKey": partition, "RowKey": row, "Kind": KIND, **fields} for row, fields in rows.items()]
        for entity in entities:
            check_entity(TABLE, entity)
        table = self.accounts.table(TABLE, region)
        for first in range(0, len(entities), TRANSACTION_LIMIT):
            table.submit_transaction([("upsert", entity, {"mode": UpdateMode.MERGE})
                                      for entity in entities[first:first + TRANSACTION_LIMIT]])

    def sent(self, region: Region, endpoint_id: str, row: str, kind: str, status: str, at: datetime,
             channel: str = "sms") -> None:
        """A send's outcome (sent or failed); one write, whatever a delivery report wrote before it."""
        fields = {"channel": channel, "kind": kind, "status": status, "sent_at": at}
        if self.deferred:
            key = (region, message_partition(endpoint_id, at))
            with self._lock:
                self._pending[key][row] = fields
                # A full transaction's worth goes now: the job's memory stays flat however many messages are due.
                full = self._pending.pop(key) if len(self._pending[key]) >= TRANSACTION_LIMIT else None
            if full:
                self._write_partition(*key, full)
            return
        self._merge(region, message_partition(endpoint_id, at), row, fields)

    def delivered(self, region: Region, endpoint_id: str, row: str, status: str, at: datetime,
                  sent_at: datetime | None) -> None:
        """A delivery report (delivered, failed or opted_out) on the row of the day the message was sent.

        Kept in its own field, so a send recorded after its report (they race) cannot hide it."""
        self._merge(region, message_partition(endpoint_id, sent_at or at), row, {"delivery": status,
                                                                               "delivered_at": at})

    def between(self, region: Region, endpoint_ids: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Messages of these endpoints sent in [start, end)."""
        table = self.accounts.table(TABLE, region)
        rows: list[dict[str, Any]] = []
        for endpoint_id in endpoint_ids:
            rows += [dict(r) for r in table.query_entities(
                "PartitionKey ge @lo and PartitionKey le @hi and Kind eq @kind and sent_at ge @start "
                "and sent_at lt @end",
                parameters={"lo": message_partition(endpoint_id, start),
                            "hi": message_partition(endpoint_id, end + timedelta(days=1)), "kind": KIND,
                            "start": start.astimezone(UTC), "end": end.astimezone(UTC)},
            )]
        return [{**row, "status": row.get("delivery") or row.get("status") or "sent"} for row in rows
                if row.get("sent_at") is not None]
