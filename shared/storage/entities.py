"""Schema-checked reads and writes of entities, the only path any repository uses to touch a table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

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


def _checked(table_name: str, kind: str, partition: str, row: str, fields: dict[str, Any]) -> dict[str, Any]:
    entity = {"PartitionKey": partition, "RowKey": row, "Kind": kind}
    entity.update({name: _encode(value) for name, value in fields.items() if value is not None})
    check_entity(table_name, entity)
    return entity


def checked(table_name: str, kind: str, partition: str, row: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The entity as written, after the schema check (for batched writes)."""
    return _checked(table_name, kind, partition, row, fields)


def upsert(table: TableClient, table_name: str, kind: str, partition: str, row: str, fields: dict[str, Any]) -> None:
    """Write an entity after checking it against the schema (replacing what was there)."""
    from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not cold start

    table.upsert_entity(_checked(table_name, kind, partition, row, fields), mode=UpdateMode.REPLACE)


def create(table: TableClient, table_name: str, kind: str, partition: str, row: str, fields: dict[str, Any]) -> None:
    """Insert an entity only if absent: of two writers racing, one wins and the other gets ResourceExistsError."""
    table.create_entity(_checked(table_name, kind, partition, row, fields))


def replace_if_unchanged(table: TableClient, table_name: str, kind: str, partition: str, row: str,
                         fields: dict[str, Any], etag: str) -> bool:
    """Replace an entity only if nobody changed it since it was read with this etag; False if someone did."""
    entity = _checked(table_name, kind, partition, row, fields)
    from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not cold start

    try:
        table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        return False
    return True


def delete_if_unchanged(table: TableClient, partition: str, row: str, etag: str) -> bool:
    """Delete an entity only if nobody changed it since it was read with this etag."""
    try:
        table.delete_entity(partition, row, etag=etag, match_condition=MatchConditions.IfNotModified)
    except ResourceModifiedError:
        return False
    return True


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
