"""What the ACS stand-in keeps: messages out and in, owned numbers, searches, operations, delivery reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.acs.phones import iso, utc_now


@dataclass(frozen=True)
class OutboxMessage:
    """One SMS as the patient's phone received it."""

    to: str
    from_: str
    message: str
    message_id: str
    tag: str | None
    sent_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "to": self.to, "from": self.from_, "message": self.message, "messageId": self.message_id,
            "tag": self.tag, "sentAt": iso(self.sent_at),
        }


@dataclass(frozen=True)
class InboundMessage:
    """One SMS the patient's phone sent to one of the resource's numbers."""

    from_: str
    to: str
    message: str
    message_id: str
    received_at: datetime


@dataclass
class OwnedNumber:
    """A phone number the resource owns (pre-owned or purchased)."""

    phone_number: str
    country_code: str = "US"
    phone_number_type: str = "tollFree"
    assignment_type: str = "application"
    capabilities: dict[str, str] = field(default_factory=lambda: {"calling": "none", "sms": "inbound+outbound"})
    purchase_date: datetime = field(default_factory=utc_now)
    monthly_cost: float = 2.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.phone_number.lstrip("+"), "phoneNumber": self.phone_number,
            "countryCode": self.country_code, "phoneNumberType": self.phone_number_type,
            "capabilities": self.capabilities, "assignmentType": self.assignment_type,
            "purchaseDate": iso(self.purchase_date),
            "cost": {"amount": self.monthly_cost, "currencyCode": "USD", "billingFrequency": "monthly"},
        }


@dataclass
class NumberSearch:
    """Numbers reserved by a search, until purchased or expired."""

    search_id: str
    country_code: str
    request: dict[str, Any]
    phone_numbers: list[str]
    expires_by: datetime
    purchased: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "searchId": self.search_id, "phoneNumbers": self.phone_numbers,
            "phoneNumberType": self.request["phoneNumberType"], "assignmentType": self.request["assignmentType"],
            "capabilities": self.request["capabilities"],
            "cost": {"amount": 2.0, "currencyCode": "USD", "billingFrequency": "monthly"},
            "searchExpiresBy": iso(self.expires_by), "isAgreementToNotResellRequired": False,
        }


@dataclass
class Operation:
    """A phone-number long-running operation (search or purchase)."""

    id: str
    operation_type: str
    search_id: str
    created: datetime
    duration: float
    error: dict[str, str] | None = None
    settled: bool = False

    def status_at(self, now: datetime) -> str:
        elapsed = (now - self.created).total_seconds()
        if elapsed < self.duration * 0.2:
            return "notStarted"
        if elapsed < self.duration:
            return "running"
        return "failed" if self.error else "succeeded"

    def to_json(self, now: datetime) -> dict[str, Any]:
        status = self.status_at(now)
        body: dict[str, Any] = {
            "status": status, "createdDateTime": iso(self.created), "id": self.id,
            "operationType": self.operation_type,
            "lastActionDateTime": iso(min(now, self.created + timedelta(seconds=self.duration))),
            "resourceLocation": (
                f"/availablePhoneNumbers/searchResults/{self.search_id}"
                if self.operation_type == "search" and status == "succeeded" else None
            ),
        }
        if status == "failed":
            body["error"] = self.error
        return body


@dataclass(frozen=True)
class Delivery:
    """What happens to one accepted message on the carrier side, reported back by Event Grid."""

    message_id: str
    from_: str
    to: str
    status: str
    detail: str
    tag: str | None
    segments: int
    report_wanted: bool


@dataclass(frozen=True)
class Repeat:
    """A request seen under a Repeatability-Request-ID, and what it was answered."""

    fingerprint: tuple[str, str, str]
    item: dict[str, Any]
