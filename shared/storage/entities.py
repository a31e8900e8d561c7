"""Schema-checked reads and writes of entities, the only path any repository uses to touch a table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from azure.core.exceptions import ResourceNotFoundError

from shared.storage.schema import check_entity

if TYPE_CHECKING:
    from azure.data.tables import TableClient


def key(value: str) -> str:
    """A value made safe for PartitionKey / RowKey ('/', '\\', '#', '?' are not allowed there)."""
    return quote(value, safe="")


def unkey(value: str) -> str:
    return unquote(value)


def _encode(value: Any) -> Any:
    # Lists and dicts are stored as JSON text: tables hold scalars only.
    return json.dumps(value) if isinstance(value, list | dict) else value


def upsert(table: TableClient, table_name: str, kind: str, partition: str, row: str, fields: dict[str, Any]) -> None:
    """Write an entity after checking it against the schema (replacing what was there)."""
    entity = {"PartitionKey": partition, "RowKey": row, "Kind": kind}
    entity.update({name: _encode(value) for name, value in fields.items() if value is not None})
    check_entity(table_name, entity)
    from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not on cold start

    table.upsert_entity(entity, mode=UpdateMode.REPLACE)


def get(table: TableClient, partition: str, row: str) -> dict[str, Any] | None:
    """The entity (a dict whose `.metadata["etag"]` allows conditional updates), or None."""
    try:
        return table.get_entity(partition, row)
    except ResourceNotFoundError:
        return None


def delete(table: TableClient, partition: str, row: str) -> None:
    table.delete_entity(partition, row)


def json_field(entity: dict[str, Any], name: str, default: Any) -> Any:
    raw = entity.get(name)
    return json.loads(raw) if isinstance(raw, str) and raw else default
