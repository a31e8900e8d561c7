"""What the ACS Email stand-in keeps: sender domains, send operations, repeatability, the inbox, throttling."""

from __future__ import annotations

import math
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.acs.phones import iso
from sandbox.config import EMAIL_SENDER_ADDRESS

DEMO_SENDER = EMAIL_SENDER_ADDRESS
DEMO_EMAIL_DOMAIN = DEMO_SENDER.rsplit("@", 1)[1]  # shaped like an Azure-managed domain (<guid>.azurecomm.net)
EMAIL_STATUSES = ("Delivered", "Bounced", "Suppressed", "Quarantined", "FilteredSpam", "Failed")


@dataclass(frozen=True)
class Email:
    """One email as the patient's mailbox received it."""

    to: str
    sender: str
    subject: str
    plain_text: str
    html: str
    headers: dict[str, str]
    message_id: str
    received_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "to": self.to, "from": self.sender, "subject": self.subject, "plainText": self.plain_text,
            "html": self.html, "headers": dict(self.headers), "messageId": self.message_id,
            "receivedAt": iso(self.received_at),
        }


@dataclass
class SendOperation:
    """One accepted send: Running for a moment, then Succeeded (or Failed) and delivered."""

    operation_id: str
    request: dict[str, Any]
    started_at: datetime
    seconds: float
    delivered: bool = False
    error: dict[str, Any] | None = None

    def status_at(self, now: datetime) -> str:
        if now - self.started_at < timedelta(seconds=self.seconds):
            return "Running"
        return "Failed" if self.error else "Succeeded"

    def to_json(self, now: datetime) -> dict[str, Any]:
        status = self.status_at(now)
        return {"id": self.operation_id, "status": status, "error": self.error if status == "Failed" else None}


@dataclass(frozen=True)
class EmailRepeat:
    """What a repeatable send request looked like and which operation it started."""

    fingerprint: str
    operation_id: str


@dataclass
class MailState:
    """The Email half of the ACS resource: linked domains, operations, the inbox; tests steer it."""

    domains: set[str] = field(default_factory=lambda: {DEMO_EMAIL_DOMAIN})
    rate_limit_per_minute: int | None = 30
    operation_seconds: float = 0.1
    outcome: dict[str, str] = field(default_factory=dict)  # recipient address → delivery status
    operations: dict[str, SendOperation] = field(default_factory=dict)
    repeats: dict[str, EmailRepeat] = field(default_factory=dict)
    inbox: list[Email] = field(default_factory=list)
    sent_at: dict[str, deque[datetime]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def sender_allowed(self, sender: object) -> bool:
        """Whether `sender` is an address at one of the domains linked to the resource."""
        if not isinstance(sender, str) or sender.count("@") != 1:
            return False
        return sender.rsplit("@", 1)[1].lower() in self.domains

    def throttle(self, sender: str, now: datetime) -> int | None:
        """Seconds to wait when one more email from `sender` exceeds the per-minute limit, else None."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        window = self.sent_at.setdefault(sender.lower(), deque())
        while window and window[0] <= now - timedelta(seconds=60):
            window.popleft()
        if len(window) < limit:
            window.append(now)
            return None
        return max(1, math.ceil((window[0] + timedelta(seconds=60) - now).total_seconds()))

    def start(self, request: dict[str, Any], now: datetime, operation_id: str | None = None) -> SendOperation:
        """Accept a send: an operation that delivers once it has run."""
        operation = SendOperation(operation_id or str(uuid.uuid4()), request, now, self.operation_seconds)
        self.operations[operation.operation_id] = operation
        return operation

    def due(self, now: datetime) -> list[SendOperation]:
        """Operations that finished running and were not delivered yet (marked delivered now)."""
        with self.lock:
            ready = [op for op in self.operations.values() if not op.delivered and op.status_at(now) != "Running"]
            for op in ready:
                op.delivered = True
            return ready

    def mailbox(self, address: str) -> list[Email]:
        """Emails delivered to `address`, oldest first (addresses compare case-insensitively)."""
        with self.lock:
            return [item for item in self.inbox if item.to.lower() == address.lower()]

    def addresses(self) -> list[str]:
        with self.lock:
            return sorted({item.to.lower() for item in self.inbox})
