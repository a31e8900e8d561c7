"""One row per message sent, by channel, type and delivery status, kept after the ledger row is purged.

The rows live in the usage table of the organization's region, partitioned by endpoint and sending day, keyed by
the message's opaque ledger key; they hold no recipient, no text and no appointment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import UpdateMode

from shared.settings import Region
from shared.storage.accounts import TableAccounts
from shared.storage.schema import check_entity

TABLE = "usage"
KIND = "message"
PREFIX = "msg-"  # not a hex digit: these partitions never fall in a visit range ("<endpoint id>-<day>")


def message_partition(endpoint_id: str, sent: datetime) -> str:
    return f"{PREFIX}{endpoint_id}-{sent.astimezone(UTC):%Y%m%d}"


class MessageLog:
    """Which messages went out and what became of them, for the SMS report and the status page."""

    def __init__(self, accounts: TableAccounts):
        self.accounts = accounts

    def _merge(self, region: Region, partition: str, row: str, fields: dict[str, Any]) -> None:
        entity = {"PartitionKey": partition, "RowKey": row, "Kind": KIND, **fields}
        check_entity(TABLE, entity)
        self.accounts.table(TABLE, region).upsert_entity(entity, mode=UpdateMode.MERGE)

    def sent(self, region: Region, endpoint_id: str, row: str, kind: str, status: str, at: datetime,
             channel: str = "sms") -> None:
        """A send's outcome (sent or failed); a delivery report that arrived first keeps its status."""
        fields: dict[str, Any] = {"channel": channel, "kind": kind, "sent_at": at}
        partition = message_partition(endpoint_id, at)
        current = self._get(region, partition, row)
        if not (current and current.get("status") in ("delivered", "failed", "opted_out")):
            fields["status"] = status
        self._merge(region, partition, row, fields)

    def delivered(self, region: Region, endpoint_id: str, row: str, status: str, at: datetime,
                  sent_at: datetime | None) -> None:
        """A delivery report: delivered, failed or opted_out, on the row of the day the message was sent."""
        partition = message_partition(endpoint_id, sent_at or at)
        self._merge(region, partition, row, {"status": status, "delivered_at": at})

    def _get(self, region: Region, partition: str, row: str) -> dict[str, Any] | None:
        found = list(self.accounts.table(TABLE, region).query_entities(
            "PartitionKey eq @p and RowKey eq @r", parameters={"p": partition, "r": row}))
        return dict(found[0]) if found else None

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
        return rows
