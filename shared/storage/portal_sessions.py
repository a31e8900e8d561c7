"""Server-side portal sessions: what makes a sealed session cookie valid, so sign-out can revoke it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.storage import entities
from shared.storage.accounts import TableAccounts
from shared.storage.config import TABLE

KIND = "portal_session"


@dataclass(frozen=True)
class PortalSession:
    """One signed-in administrator's session: role as last read from Entra, and the sealed refresh token."""

    key: str
    role: str
    expires_at: datetime
    checked_at: datetime
    refresh: str
    etag: str = ""


class PortalSessionRepository:
    """`portal_session` rows of the config table, under the tenant, keyed by a keyed hash of the session id."""

    def __init__(self, accounts: TableAccounts):
        self.table = accounts.table(TABLE)

    def open(self, tenant_id: str, session: PortalSession) -> None:
        entities.create(self.table, TABLE, KIND, tenant_id, f"session:{session.key}", self._fields(session))

    def get(self, tenant_id: str, key: str) -> PortalSession | None:
        """The session, or None once it was revoked (signed out, role gone) or never existed."""
        entity = entities.get(self.table, tenant_id, f"session:{key}")
        if entity is None or entity.get("Kind") != KIND:
            return None
        return PortalSession(key=key, role=entity["role"], expires_at=entity["expires_at"],
                             checked_at=entity["checked_at"], refresh=entity["refresh"],
                             etag=entity.metadata["etag"])

    def rechecked(self, tenant_id: str, session: PortalSession) -> bool:
        """Store a fresh role check, unless another request stored one first (then False)."""
        return entities.replace_if_unchanged(self.table, TABLE, KIND, tenant_id, f"session:{session.key}",
                                             self._fields(session), session.etag)

    def revoke(self, tenant_id: str, key: str) -> None:
        entities.delete(self.table, tenant_id, f"session:{key}")

    def purge_expired(self, tenant_id: str) -> int:
        """Delete this tenant's sessions that ended without a sign-out."""
        rows = list(self.table.query_entities(
            "PartitionKey eq @pk and Kind eq @kind and expires_at lt @now",
            parameters={"pk": tenant_id, "kind": KIND, "now": datetime.now(UTC)}, select=["RowKey"]))
        for row in rows:
            entities.delete(self.table, tenant_id, row["RowKey"])
        return len(rows)

    @staticmethod
    def _fields(session: PortalSession) -> dict[str, object]:
        return {"role": session.role, "expires_at": session.expires_at, "checked_at": session.checked_at,
                "refresh": session.refresh}
