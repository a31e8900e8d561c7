"""The last reminder run per FHIR endpoint (counts and error codes only), in the app's configuration table."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.storage import entities
from shared.storage.accounts import TableAccounts

TABLE = "config"
KIND = "reminder_run"


class RunRecord(BaseModel):
    """What the last run did for one endpoint; `outcome` is failed when the endpoint could not be planned."""

    run_at: datetime
    outcome: Literal["ok", "failed"]
    searched: int = 0
    sent: int = 0
    failed: int = 0
    carried_over: int = 0
    error_codes: list[str] = Field(default_factory=list)


class RunRepository:
    """One row per endpoint, replaced by every run."""

    def __init__(self, accounts: TableAccounts):
        self.table = accounts.table(TABLE)

    def save(self, tenant_id: str, endpoint_id: str, record: RunRecord) -> None:
        entities.upsert(self.table, TABLE, KIND, tenant_id, f"run:{endpoint_id}", record.model_dump())

    def save_all(self, tenant_id: str, records: dict[str, RunRecord]) -> None:
        """Every endpoint's record of one organization in one transaction (one request per run and tenant)."""
        from azure.data.tables import UpdateMode  # the Tables SDK loads with the first table client, not cold start

        operations = [("upsert", entities.checked(TABLE, KIND, tenant_id, f"run:{endpoint_id}", record.model_dump()),
                       {"mode": UpdateMode.REPLACE}) for endpoint_id, record in records.items()]
        for index in range(0, len(operations), 100):  # a table transaction holds 100 operations at most
            self.table.submit_transaction(operations[index:index + 100])

    def last(self, tenant_id: str, endpoint_id: str) -> RunRecord | None:
        entity = entities.get(self.table, tenant_id, f"run:{endpoint_id}")
        if not entity:
            return None
        fields = {k: v for k, v in entity.items() if k in RunRecord.model_fields}
        fields["error_codes"] = entities.json_field(entity, "error_codes", [])
        return RunRecord(**fields)
