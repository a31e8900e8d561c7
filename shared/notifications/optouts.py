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
    return optout_partitions(sender)[0]


def optout_partitions(sender: str) -> tuple[str, ...]:
    """The sender's opt-out partition under every hash key, active first."""
    return tuple(f"optout-{digest}" for digest in sealer().keyed_hashes("sms-sender", sender, size=16))


def phone_key(phone: str) -> str:
    """The recipient as a keyed hash: a table dump cannot be matched against a list of phone numbers."""
    return phone_keys(phone)[0]


def phone_keys(phone: str) -> tuple[str, ...]:
    """The recipient's keyed hash under every hash key, active first (see opted_out)."""
    return sealer().keyed_hashes("sms-recipient", phone)


def email_key(address: str) -> str:
    """An email recipient as a keyed hash (addresses compare case-insensitively)."""
    return email_keys(address)[0]


def email_keys(address: str) -> tuple[str, ...]:
    """An email recipient's keyed hash under every hash key, active first (an unsubscribe outlives a rotation)."""
    return sealer().keyed_hashes("email-recipient", address.strip().lower())


def email_scope(endpoint_id: str) -> str:
    """Whom an email unsubscribe is from: the FHIR endpoint's organization (a sender address can change)."""
    return f"email:{endpoint_id}"


class OptOutStore:
    """Who replied STOP to which number (carriers block them; we stop trying too)."""

    def __init__(self, ledger: LedgerRepository):
        self.ledger = ledger

    def opted_out(self, region: Region, sender: str) -> frozenset[str]:
        """Phone keys (see phone_keys: match any of a number's keys) that opted out of texts from this sender."""
        rows = [row for partition in optout_partitions(sender)
                for row in self.ledger.partition_rows(region, partition, KIND)]
        return frozenset(row["RowKey"] for row in rows if row.get("status") == OPTED_OUT)

    def record(self, region: Region, sender: str, phone: str, status: str, at: datetime, event_id: str = "") -> bool:
        """Set a recipient's state unless a later change is recorded already (events can come late or twice)."""
        partition, row = self._row_of(region, sender, phone)
        return self._record_at(region, partition, row, status, at, event_id)

    def record_key(self, region: Region, sender: str, row: str, status: str, at: datetime,
                   event_id: str = "") -> bool:
        """Set the state of a recipient given by its keyed hash (see record)."""
        return self._record_at(region, optout_partition(sender), row, status, at, event_id)

    def _record_at(self, region: Region, partition: str, row: str, status: str, at: datetime,
                   event_id: str) -> bool:
        """Write one recipient's state unless a later change is recorded already."""
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

    def _row_of(self, region: Region, sender: str, phone: str) -> tuple[str, str]:
        """Where this recipient's state is kept: its row under an older hash key if it has one, else a new one."""
        places = list(zip(optout_partitions(sender), phone_keys(phone), strict=True))
        for partition, row in places[1:]:
            if self.ledger.get(region, partition, row) is not None:
                return partition, row
        return places[0]
