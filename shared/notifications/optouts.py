"""Opt-outs kept in the ledger table with the recipient only hashed: SMS STOP / START per sending number, email
unsubscribes per FHIR endpoint."""

from __future__ import annotations

from datetime import datetime

from shared.settings import Region
from shared.storage.ledger import LedgerRepository
from shared.tokens import sealer

KIND = "optout"
OPTED_OUT = "opted_out"
OPTED_IN = "opted_in"


def optout_partition(sender: str) -> str:
    """One partition per sending number, so a run reads a number's opt-outs in one query."""
    return f"optout-{sealer().keyed_hash('sms-sender', sender)[:16]}"


def phone_key(phone: str) -> str:
    """The recipient as a keyed hash: a table dump cannot be matched against a list of phone numbers."""
    return sealer().keyed_hash("sms-recipient", phone)


def email_key(address: str) -> str:
    """An email recipient as a keyed hash (addresses compare case-insensitively)."""
    return sealer().keyed_hash("email-recipient", address.strip().lower())


def email_scope(endpoint_id: str) -> str:
    """Whom an email unsubscribe is from: the FHIR endpoint's organization (a sender address can change)."""
    return f"email:{endpoint_id}"


class OptOutStore:
    """Who replied STOP to which number (carriers block them; we stop trying too)."""

    def __init__(self, ledger: LedgerRepository):
        self.ledger = ledger

    def opted_out(self, region: Region, sender: str) -> frozenset[str]:
        """Phone keys (see phone_key) that opted out of texts from this sender."""
        rows = self.ledger.partition_rows(region, optout_partition(sender), KIND)
        return frozenset(row["RowKey"] for row in rows if row.get("status") == OPTED_OUT)

    def record(self, region: Region, sender: str, phone: str, status: str, at: datetime, event_id: str = "") -> bool:
        """Set a recipient's state unless a later change is recorded already (events can come late or twice)."""
        return self.record_key(region, sender, phone_key(phone), status, at, event_id)

    def record_key(self, region: Region, sender: str, row: str, status: str, at: datetime,
                   event_id: str = "") -> bool:
        """Set the state of a recipient given by its keyed hash (see record)."""
        partition = optout_partition(sender)
        fields = {"status": status, "updated_at": at, "event_id": event_id}
        for _attempt in range(3):
            current = self.ledger.get(region, partition, row)
            if current is None:
                if self.ledger.create(region, partition, row, fields, kind=KIND) is not None:
                    return True
                continue  # someone recorded it meanwhile: compare with theirs
            if (event_id and current.get("event_id") == event_id) or current.get("updated_at", at) > at:
                return False
            etag = current.metadata["etag"]
            if self.ledger.merge(region, partition, row, fields, etag=etag, kind=KIND) is not None:
                return True
        return False
