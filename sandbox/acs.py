"""Azure Communication Services stand-in: HMAC-signed SMS, opt-outs, phone-number LROs, Event Grid reports, outbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import math
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import httpx
import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sandbox.config import ACS_ACCESS_KEY

DEMO_NUMBER = "+18005550100"
TOLL_FREE_AREA_CODES = ("800", "833", "844", "855", "866", "877", "888")
TOLL_FREE_REACHABLE_REGIONS = frozenset({"US", "CA", "PR"})
TOLL_FREE_COUNTRIES = frozenset({"US", "CA"})
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
MAX_MESSAGE_CHARS = 2048
MAX_RECIPIENTS = 100
CLOCK_SKEW = timedelta(minutes=15)
SEARCH_HOLD = timedelta(minutes=16)
RESOURCE_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/sandbox/providers/"
    "microsoft.communication/communicationservices/sandbox-acs"
)
SIGNED_HEADERS_REQUIRED = frozenset({"x-ms-date", "host", "x-ms-content-sha256"})
DELIVERED_DETAIL = "No error."
OPTED_OUT_DETAIL = "Sender blocked for given recipient"
REPEATABILITY_DATE_ERROR = (
    "Request sent with Invalid DateTime value for repeatability-first-sent. Expected is DateTime ,RFC1123 pattern."
)
NO_RETRY_STATUSES = frozenset({400, 403, 413})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_URL = re.compile(r"https?://[^\s<>\"']+")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _message_id(direction: str, moment: datetime) -> str:
    return f"{direction}_{moment.strftime('%Y%m%d%H%M%S')}{uuid.uuid4()}"


def is_e164(number: object) -> bool:
    """Whether `number` is an E.164 phone number as ACS accepts it (+1 numbers have exactly 10 digits)."""
    if not isinstance(number, str) or not _E164.match(number):
        return False
    return len(number) == 12 if number.startswith("+1") else True


def toll_free_reaches(number: str) -> bool:
    """Whether a US toll-free sender can text `number` (US, CA and PR only; other NANP countries excluded)."""
    if not number.startswith("+1"):
        return False
    region = phonenumbers.region_code_for_number(phonenumbers.parse(number))
    return region is None or region in TOLL_FREE_REACHABLE_REGIONS


def segment_count(message: str) -> int:
    """SMS segments a carrier bills: GSM-7 160/153 characters, otherwise UCS-2 70/67."""
    single, multi = (160, 153) if set(message) <= _GSM7 else (70, 67)
    return 1 if len(message) <= single else math.ceil(len(message) / multi)


def normalize_phone(raw: str) -> str:
    """A phone number from a URL path in E.164 form ('+' restored when a browser or client dropped it)."""
    digits = raw.strip().replace(" ", "")
    return digits if digits.startswith("+") else f"+{digits}"


def acs_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error response with the ACS body shape."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _status_code_name(status: int) -> str:
    try:
        return "".join(word.capitalize() for word in HTTPStatus(status).phrase.split())
    except ValueError:
        return "Error"


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
            "tag": self.tag, "sentAt": _iso(self.sent_at),
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
    purchase_date: datetime = field(default_factory=_utc_now)
    monthly_cost: float = 2.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.phone_number.lstrip("+"), "phoneNumber": self.phone_number,
            "countryCode": self.country_code, "phoneNumberType": self.phone_number_type,
            "capabilities": self.capabilities, "assignmentType": self.assignment_type,
            "purchaseDate": _iso(self.purchase_date),
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
            "searchExpiresBy": _iso(self.expires_by), "isAgreementToNotResellRequired": False,
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
            "status": status, "createdDateTime": _iso(self.created), "id": self.id,
            "operationType": self.operation_type,
            "lastActionDateTime": _iso(min(now, self.created + timedelta(seconds=self.duration))),
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
class _Repeat:
    fingerprint: tuple[str, str, str]
    item: dict[str, Any]


class AcsState:
    """Everything the ACS stand-in knows; tests read and steer it (faults, limits, outcomes, clock)."""

    def __init__(self, access_key: str = ACS_ACCESS_KEY, owned_numbers: tuple[str, ...] = (DEMO_NUMBER,)) -> None:
        self.lock = threading.RLock()
        self.access_key = access_key
        self.clock: Callable[[], datetime] = _utc_now
        self.numbers: dict[str, OwnedNumber] = {}
        self.verification: dict[str, str] = {}
        self.rate_limit_per_minute: int | None = 200
        self.repeatability_window_seconds = 300.0
        self.latency_seconds = 0.0
        self.lro_seconds = 1.0
        self.lro_retry_after_seconds = 1.0
        self.fail_next_purchase = False
        self.event_webhook: str | None = None
        self.delivery_delay_seconds = 0.05
        self.event_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
        self.delivery_outcome: dict[str, tuple[str, str]] = {}
        self.opted_out: set[tuple[str, str]] = set()
        self.events_sent: list[dict[str, Any]] = []
        self.events_failed: list[dict[str, Any]] = []
        self.event_attempts = 0
        self.request_counts: Counter[str] = Counter()
        self.auth_failures: list[str] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.searches: dict[str, NumberSearch] = {}
        self.operations: dict[str, Operation] = {}
        self._faults: deque[tuple[int, str]] = deque()
        self._outbox: list[OutboxMessage] = []
        self._inbox: list[InboundMessage] = []
        self._repeats: dict[str, _Repeat] = {}
        self._units_sent: dict[str, deque[tuple[datetime, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_number = 200
        for number in owned_numbers:
            self.own_number(number, verification="verified")

    # --- inspection and steering -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The stand-in's current time (steer with `clock`)."""
        return self.clock()

    def own_number(self, number: str, verification: str = "unverified", country_code: str = "US") -> None:
        """Make the resource own `number` (toll-free when its area code is a toll-free one)."""
        kind = "tollFree" if number[2:5] in TOLL_FREE_AREA_CODES else "geographic"
        with self.lock:
            self.numbers[number] = OwnedNumber(number, country_code, kind, purchase_date=self.now())
            if kind == "tollFree":
                self.verification.setdefault(number, verification)

    def fail_next(self, status: int, count: int = 1, path: str = "/sms") -> None:
        """Answer the next `count` signed API requests whose path starts with `path` with `status`."""
        with self.lock:
            self._faults.extend([(status, path)] * count)

    def outbox(self, phone: str) -> list[OutboxMessage]:
        """Messages delivered to `phone`, oldest first."""
        with self.lock:
            return [item for item in self._outbox if item.to == phone]

    def inbox(self, phone: str) -> list[InboundMessage]:
        """Messages `phone` sent to the resource's numbers, oldest first."""
        with self.lock:
            return [item for item in self._inbox if item.from_ == phone]

    def phones(self) -> list[str]:
        """Every phone that received or sent a message."""
        with self.lock:
            return sorted({item.to for item in self._outbox} | {item.from_ for item in self._inbox})

    def owns(self, number: object) -> bool:
        """Whether `number` is a phone number of this resource."""
        return isinstance(number, str) and number in self.numbers

    def is_opted_out(self, sender: str, recipient: str) -> bool:
        """Whether `recipient` replied STOP to `sender` (or was added with the opt-out API)."""
        with self.lock:
            return (sender, recipient) in self.opted_out

    def wait_for_events(self, count: int, timeout: float = 5.0, event_type: str | None = None) -> list[dict]:
        """Block until at least `count` events (of `event_type`) were delivered to the webhook; return them."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                events = [e for e in self.events_sent if event_type in (None, e["eventType"])]
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.02)

    # --- request plumbing --------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> int | None:
        with self.lock:
            for index, (status, prefix) in enumerate(self._faults):
                if path.startswith(prefix):
                    del self._faults[index]
                    return status
        return None

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- SMS ---------------------------------------------------------------------------------------------

    def _throttle(self, sender: str, units: int, now: datetime) -> int | None:
        """Seconds to wait when `units` more messages from `sender` exceed the per-minute limit, else None."""
        limit = self.rate_limit_per_minute
        if limit is None:
            return None
        window = self._units_sent.setdefault(sender, deque())
        while window and window[0][0] <= now - timedelta(seconds=60):
            window.popleft()
        excess = sum(used for _, used in window) + units - limit
        if excess <= 0:
            window.append((now, units))
            return None
        freed = 0
        for sent_at, used in window:
            freed += used
            if freed >= excess:
                return max(1, math.ceil((sent_at + timedelta(seconds=60) - now).total_seconds()))
        return 60

    def _send_batch(self, sender: str, payload: dict[str, Any], now: datetime) -> tuple[list[dict], list[Delivery]]:
        items, deliveries = [], []
        with self.lock:
            for recipient in payload["smsRecipients"]:
                item, delivery = self._send_one(sender, recipient, payload, now)
                items.append(item)
                if delivery:
                    deliveries.append(delivery)
        return items, deliveries

    def _send_one(self, sender: str, recipient: dict, payload: dict, now: datetime) -> tuple[dict, Delivery | None]:
        to, request_id = recipient["to"], recipient.get("repeatabilityRequestId")
        if not request_id:
            return self._accept(sender, to, payload, now)
        problem = self._repeatability_problem(recipient, now)
        if problem or not isinstance(request_id, str):
            return problem or _item(to, 400, "repeatabilityRequestId must be a string.", "rejected"), None
        fingerprint = (sender, to, payload["message"])
        earlier = self._repeats.get(request_id)
        if earlier and earlier.fingerprint != fingerprint:
            message = "repeatabilityRequestId was already used for a different request."
            return _item(to, 400, message, repeatability="rejected"), None
        if earlier:
            return dict(earlier.item), None
        item, delivery = self._accept(sender, to, payload, now)
        item["repeatabilityResult"] = "accepted"
        if item["successful"]:
            self._repeats[request_id] = _Repeat(fingerprint, dict(item))
        return item, delivery

    def _repeatability_problem(self, recipient: dict, now: datetime) -> dict | None:
        """The rejected item when repeatabilityFirstSent is missing, malformed or outside the window."""
        first_sent = _parse_http_date(recipient.get("repeatabilityFirstSent"))
        if first_sent is None:
            return _item(recipient["to"], 400, REPEATABILITY_DATE_ERROR, repeatability="rejected")
        if (now - first_sent).total_seconds() > self.repeatability_window_seconds:
            message = "repeatabilityFirstSent is older than the repeatability window; send a new request."
            return _item(recipient["to"], 412, message, repeatability="rejected")
        return None

    def _accept(self, sender: str, to: str, payload: dict, now: datetime) -> tuple[dict, Delivery | None]:
        if not is_e164(to):
            return _item(to, 400, "Invalid To phone number format."), None
        if self.numbers[sender].phone_number_type == "tollFree" and not toll_free_reaches(to):
            message = "Destination not reachable from a toll-free number; toll-free numbers only reach US, CA and PR."
            return _item(to, 400, message), None
        options = payload["smsSendOptions"] if isinstance(payload.get("smsSendOptions"), dict) else {}
        message_id = _message_id("Outgoing", now)
        status, detail = self._outcome(sender, to)
        if status == "Delivered":
            self._outbox.append(OutboxMessage(to, sender, payload["message"], message_id, options.get("tag"), now))
        delivery = Delivery(
            message_id, sender, to, status, detail, options.get("tag"), segment_count(payload["message"]),
            bool(options.get("enableDeliveryReport")),
        )
        self.reports[message_id] = _report_json(delivery, now)
        return {"to": to, "messageId": message_id, "httpStatusCode": 202, "successful": True}, delivery

    def _outcome(self, sender: str, to: str) -> tuple[str, str]:
        if (sender, to) in self.opted_out:
            return "Failed", OPTED_OUT_DETAIL
        return self.delivery_outcome.get(to, ("Delivered", DELIVERED_DETAIL))

    def _receive(self, sender: str, recipient: str, message: str, now: datetime) -> InboundMessage:
        """Record a patient's reply; STOP and START keywords change the opt-out list as carriers do."""
        keyword = message.strip().upper()
        inbound = InboundMessage(sender, recipient, message, _message_id("Incoming", now), now)
        with self.lock:
            if keyword in STOP_WORDS:
                self.opted_out.add((recipient, sender))
            elif keyword in START_WORDS:
                self.opted_out.discard((recipient, sender))
            self._inbox.append(inbound)
        return inbound

    # --- phone numbers -----------------------------------------------------------------------------------

    def _settle(self, now: datetime) -> None:
        """Apply the effects of operations that finished (purchased numbers become owned)."""
        with self.lock:
            for operation in self.operations.values():
                if operation.settled or operation.status_at(now) != "succeeded":
                    continue
                operation.settled = True
                if operation.operation_type == "purchase":
                    self._complete_purchase(self.searches[operation.search_id], now)

    def _complete_purchase(self, search: NumberSearch, now: datetime) -> None:
        search.purchased = True
        for number in search.phone_numbers:
            self.numbers[number] = OwnedNumber(
                number, search.country_code, search.request["phoneNumberType"],
                search.request["assignmentType"], dict(search.request["capabilities"]), now,
            )
            if search.request["phoneNumberType"] == "tollFree":
                self.verification[number] = "unverified"

    def _start_search(self, country_code: str, request: dict[str, Any], now: datetime) -> Operation:
        search_id = str(uuid.uuid4())
        with self.lock:
            error = _inventory_problem(country_code, request)
            numbers = [] if error else self._reserve(request)
            self.searches[search_id] = NumberSearch(search_id, country_code, request, numbers, now + SEARCH_HOLD)
            return self._new_operation(f"search_{search_id}", "search", search_id, now, error)

    def _reserve(self, request: dict[str, Any]) -> list[str]:
        area_code = request.get("areaCode") or ("833" if request["phoneNumberType"] == "tollFree" else "425")
        taken = set(self.numbers) | {n for s in self.searches.values() for n in s.phone_numbers}
        numbers: list[str] = []
        while len(numbers) < int(request.get("quantity") or 1):
            self._next_number += 1
            candidate = f"+1{area_code}555{self._next_number:04d}"
            if candidate not in taken:
                numbers.append(candidate)
        return numbers

    def _start_purchase(self, search: NumberSearch, now: datetime) -> Operation:
        with self.lock:
            error = None
            if self.fail_next_purchase:
                self.fail_next_purchase = False
                error = {"code": "PurchaseFailed", "message": "The phone number order could not be completed. "
                         "Search again and retry the purchase."}
            elif search.purchased:
                error = {"code": "SearchAlreadyPurchased", "message": "The numbers of this search were purchased."}
            elif now > search.expires_by:
                error = {"code": "SearchExpired", "message": "The search expired; search again."}
            return self._new_operation(f"purchase_{search.search_id}", "purchase", search.search_id, now, error)

    def _new_operation(self, op_id: str, kind: str, search_id: str, now: datetime, error: dict | None) -> Operation:
        operation = Operation(op_id, kind, search_id, now, self.lro_seconds, error)
        self.operations[op_id] = operation
        return operation


def _parse_http_date(value: object) -> datetime | None:
    """An RFC 1123 date with its zone, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _item(to: object, status: int, message: str, repeatability: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"to": to, "httpStatusCode": status, "successful": False, "errorMessage": message}
    if repeatability:
        item["repeatabilityResult"] = repeatability
    return item


def _inventory_problem(country_code: str, request: dict[str, Any]) -> dict[str, str] | None:
    kind, area_code = request["phoneNumberType"], request.get("areaCode")
    if kind == "tollFree" and country_code not in TOLL_FREE_COUNTRIES:
        return {"code": "NoInventory", "message": f"No toll-free numbers are available in country {country_code}."}
    if kind == "tollFree" and area_code and area_code not in TOLL_FREE_AREA_CODES:
        return {"code": "NoInventory", "message": "No toll-free numbers are available for the requested area code."}
    if kind == "geographic" and country_code != "US":
        return {"code": "NoInventory", "message": f"No geographic numbers are available in country {country_code}."}
    return None


def _report_json(delivery: Delivery, now: datetime) -> dict[str, Any]:
    delivered = delivery.status == "Delivered"
    return {
        "MessageId": delivery.message_id, "From": delivery.from_, "To": delivery.to,
        "DeliveryStatus": delivery.status, "DeliveryStatusDetails": delivery.detail,
        "ReceivedTimestamp": _iso(now),
        "DeliveryAttempts": [{
            "Timestamp": _iso(now),
            "SegmentsSucceeded": delivery.segments if delivered else 0,
            "SegmentsFailed": 0 if delivered else delivery.segments,
        }],
        **({"Tag": delivery.tag} if delivery.tag is not None else {}),
    }


def _event(event_type: str, event_id: str, number: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {
        "id": event_id, "topic": RESOURCE_TOPIC, "subject": f"/phonenumber/{number.lstrip('+')}", "data": data,
        "eventType": event_type, "dataVersion": "1.0", "metadataVersion": "1", "eventTime": _iso(now),
    }


# --- Event Grid delivery -------------------------------------------------------------------------------------


async def _post_event(webhook: str, event: dict[str, Any], attempt: int) -> int | None:
    headers = {
        "aeg-event-type": "Notification", "aeg-delivery-count": str(attempt - 1),
        "aeg-subscription-name": "SANDBOX-ACS-SMS", "aeg-data-version": "1.0", "aeg-metadata-version": "1",
    }
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.post(webhook, json=[event], headers=headers)
    except httpx.HTTPError:
        return None
    return response.status_code


async def _deliver_event(state: AcsState, webhook: str, event_factory: Callable[[], dict], delay: float) -> None:
    """Post one event like Event Grid: after `delay`, retried on failure, dead-lettered when it keeps failing."""
    await asyncio.sleep(delay)
    event = event_factory()
    for attempt, wait in enumerate((0.0, *state.event_retry_delays), start=1):
        await asyncio.sleep(wait)
        with state.lock:
            state.event_attempts += 1
        status = await _post_event(webhook, event, attempt)
        if status is not None and 200 <= status < 300:
            with state.lock:
                state.events_sent.append(event)
            return
        if status in NO_RETRY_STATUSES:
            break
    with state.lock:
        state.events_failed.append(event)


def _schedule_report(state: AcsState, delivery: Delivery) -> None:
    webhook = state.event_webhook
    if not (webhook and delivery.report_wanted):
        return

    def build() -> dict[str, Any]:
        now = state.now()
        data = _report_json(delivery, now)
        with state.lock:
            state.reports[delivery.message_id] = data
        return _event("Microsoft.Communication.SMSDeliveryReportReceived", delivery.message_id, delivery.from_,
                      data, now)

    state._spawn(_deliver_event(state, webhook, build, state.delivery_delay_seconds))


def _schedule_received(state: AcsState, inbound: InboundMessage) -> None:
    webhook = state.event_webhook
    if not webhook:
        return
    data = {
        "MessageId": inbound.message_id, "From": inbound.from_, "To": inbound.to, "Message": inbound.message,
        "ReceivedTimestamp": _iso(inbound.received_at),
    }
    event = _event("Microsoft.Communication.SMSReceived", inbound.message_id, inbound.to, data, inbound.received_at)
    state._spawn(_deliver_event(state, webhook, lambda: event, 0.0))


# --- HMAC and the signed API wrapper -------------------------------------------------------------------------


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def hmac_problem(request: Request, body: bytes, access_key: str, now: datetime) -> str | None:
    """Why the request's ACS HMAC-SHA256 signature is not acceptable, or None when it is."""
    headers = request.headers
    date, content_hash = headers.get("x-ms-date"), headers.get("x-ms-content-sha256")
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if not (date and content_hash and scheme == "HMAC-SHA256"):
        return "missing x-ms-date, x-ms-content-sha256 or HMAC-SHA256 authorization"
    signed_at = _parse_http_date(date)
    if signed_at is None:
        return "x-ms-date is not an RFC 1123 date"
    if abs(now - signed_at) > CLOCK_SKEW:
        return "x-ms-date is more than 15 minutes away from the server time"
    if not _same(content_hash, _b64_sha256(body)):
        return "x-ms-content-sha256 does not match the body"
    parts = dict(part.split("=", 1) for part in credentials.split("&") if "=" in part)
    signed_headers = parts.get("SignedHeaders", "").lower().split(";")
    if not SIGNED_HEADERS_REQUIRED.issubset(signed_headers):
        return "SignedHeaders must include x-ms-date, host and x-ms-content-sha256"
    path_and_query = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    if request.scope.get("query_string"):
        path_and_query += "?" + request.scope["query_string"].decode("latin-1")
    signed_values = ";".join(headers.get(name, "") for name in signed_headers)
    to_sign = f"{request.method}\n{path_and_query}\n{signed_values}".encode()
    expected = base64.b64encode(hmac.new(base64.b64decode(access_key), to_sign, hashlib.sha256).digest()).decode()
    if not _same(parts.get("Signature", ""), expected):
        return "signature does not match"
    return None


ApiHandler = Callable[[Request, AcsState], Awaitable[Response]]


def _signed(state: AcsState, name: str, handler: ApiHandler, needs_api_version: bool = True):
    """Wrap an API handler with what ACS does first: latency, HMAC check, injected faults, api-version."""

    async def endpoint(request: Request) -> Response:
        if state.latency_seconds:
            await asyncio.sleep(state.latency_seconds)
        body = await request.body()
        problem = hmac_problem(request, body, state.access_key, state.now())
        with state.lock:
            state.request_counts["denied" if problem else name] += 1
            if problem:
                state.auth_failures.append(problem)
        if problem:
            return acs_error(401, "Denied", "Denied by the resource provider.")
        fault = state._take_fault(request.url.path)
        if fault:
            retry = {"Retry-After": "1"} if fault in (429, 503) else None
            return acs_error(fault, _status_code_name(fault), "Injected fault from the sandbox.", retry)
        if needs_api_version and not request.query_params.get("api-version"):
            return acs_error(400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required for all requests.")
        state._settle(state.now())
        return await handler(request, state)

    return endpoint


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        payload = await request.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _bad_request(message: str) -> JSONResponse:
    return acs_error(400, "BadRequest", message)


# --- SMS routes -----------------------------------------------------------------------------------------------


def _send_request_problem(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return "The request body must be a JSON object."
    recipients, message = payload.get("smsRecipients"), payload.get("message")
    if not isinstance(payload.get("from"), str) or not isinstance(message, str):
        return "'from' and 'message' are required strings."
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        return f"'smsRecipients' must hold 1 to {MAX_RECIPIENTS} recipients."
    if not all(isinstance(r, dict) and isinstance(r.get("to"), str) for r in recipients):
        return "Each recipient needs a 'to' phone number."
    if len(message) > MAX_MESSAGE_CHARS:
        return f"The message is longer than {MAX_MESSAGE_CHARS} characters."
    return None


async def send_sms(request: Request, state: AcsState) -> Response:
    """POST /sms: per-recipient results inside a 202, or a whole-request 400 / 429."""
    payload = await _json_object(request)
    problem = _send_request_problem(payload)
    if problem or payload is None:
        return _bad_request(problem or "")
    sender, now = payload["from"], state.now()
    if not state.owns(sender):
        return _bad_request("Invalid from phone number: it is not a number of this resource.")
    with state.lock:
        wait = state._throttle(sender, len(payload["smsRecipients"]), now)
        if wait is not None:
            state.request_counts["throttled"] += 1
    if wait is not None:
        return acs_error(429, "TooManyRequests", "Rate limit of the sending number exceeded; retry later.",
                         {"Retry-After": str(wait)})
    items, deliveries = state._send_batch(sender, payload, now)
    for delivery in deliveries:
        _schedule_report(state, delivery)
    return JSONResponse({"value": items}, status_code=202)


def _optouts_problem(state: AcsState, payload: dict[str, Any] | None) -> str | None:
    if payload is None or not isinstance(payload.get("recipients"), list):
        return "'from' and 'recipients' are required."
    if not 1 <= len(payload["recipients"]) <= MAX_RECIPIENTS:
        return f"'recipients' must hold 1 to {MAX_RECIPIENTS} recipients."
    if not state.owns(payload.get("from")):
        return "Invalid from phone number: it is not a number of this resource."
    return None


def _optouts_route(action: str) -> ApiHandler:
    async def optouts(request: Request, state: AcsState) -> Response:
        payload = await _json_object(request)
        problem = _optouts_problem(state, payload)
        if problem or payload is None:
            return _bad_request(problem or "")
        items = [_optout_item(state, action, payload["from"], r) for r in payload["recipients"]]
        return JSONResponse({"value": items})

    return optouts


def _optout_item(state: AcsState, action: str, sender: str, recipient: Any) -> dict[str, Any]:
    to = recipient.get("to") if isinstance(recipient, dict) else None
    if not is_e164(to):
        return {"to": to, "httpStatusCode": 400, "errorMessage": "Invalid recipient phone number format"}
    with state.lock:
        if action == "add":
            state.opted_out.add((sender, to))
        elif action == "remove":
            state.opted_out.discard((sender, to))
        opted_out = (sender, to) in state.opted_out
    return {"to": to, "isOptedOut": opted_out, "httpStatusCode": 200} if action == "check" else {
        "to": to, "httpStatusCode": 200}


async def get_delivery_report(request: Request, state: AcsState) -> Response:
    """GET /deliveryReports/{messageId} (api-version 2026-01-23): the last known report, camelCase."""
    with state.lock:
        report = state.reports.get(request.path_params["message_id"])
    if report is None:
        return JSONResponse({"type": "about:blank", "title": "Not Found", "status": 404,
                             "detail": "No delivery report for this message id."}, status_code=404,
                            media_type="application/problem+json")
    return JSONResponse(_camel_case(report))


def _camel_case(value: Any) -> Any:
    if isinstance(value, dict):
        return {key[:1].lower() + key[1:]: _camel_case(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel_case(item) for item in value]
    return value


# --- phone-number routes --------------------------------------------------------------------------------------


def _lro_headers(request: Request, state: AcsState, operation: Operation, extra: dict[str, str]) -> dict[str, str]:
    api_version = request.query_params.get("api-version", "")
    return {
        "Operation-Location": f"/phoneNumbers/operations/{operation.id}?api-version={api_version}",
        "operation-id": operation.id, "Retry-After": f"{state.lro_retry_after_seconds:g}", **extra,
    }


def _search_request_problem(payload: dict[str, Any] | None) -> str | None:
    if payload is None:
        return "The request body must be a JSON object."
    if payload.get("phoneNumberType") not in ("tollFree", "geographic"):
        return "phoneNumberType must be tollFree or geographic."
    if payload.get("assignmentType") not in ("application", "person", "user"):
        return "assignmentType must be application or person."
    capabilities = payload.get("capabilities")
    allowed = ("none", "inbound", "outbound", "inbound+outbound")
    if not isinstance(capabilities, dict) or any(capabilities.get(k) not in allowed for k in ("sms", "calling")):
        return "capabilities.sms and capabilities.calling are required."
    area_code = payload.get("areaCode")
    if area_code is not None and not (isinstance(area_code, str) and re.fullmatch(r"[2-9]\d\d", area_code)):
        return "areaCode must be three digits."
    quantity = payload.get("quantity", 1)
    if not isinstance(quantity, int) or not 1 <= quantity <= 10:
        return "quantity must be between 1 and 10."
    return None


async def search_numbers(request: Request, state: AcsState) -> Response:
    """POST /availablePhoneNumbers/countries/{cc}/:search: 202 and an operation to poll."""
    payload = await _json_object(request)
    problem = _search_request_problem(payload)
    if problem or payload is None:
        return _bad_request(problem or "")
    country_code = request.path_params["country_code"].upper()
    operation = state._start_search(country_code, payload, state.now())
    api_version = request.query_params["api-version"]
    headers = _lro_headers(request, state, operation, {
        "Location": f"/availablePhoneNumbers/searchResults/{operation.search_id}?api-version={api_version}",
        "search-id": operation.search_id,
    })
    return Response(status_code=202, headers=headers)


async def purchase_numbers(request: Request, state: AcsState) -> Response:
    """POST /availablePhoneNumbers/:purchase {searchId}: 202 and an operation to poll."""
    payload = await _json_object(request)
    search = state.searches.get(str((payload or {}).get("searchId")))
    if search is None or not search.phone_numbers:
        return acs_error(404, "NotFound", "No search with this searchId.")
    operation = state._start_purchase(search, state.now())
    return Response(status_code=202, headers=_lro_headers(request, state, operation, {"purchase-id": search.search_id}))


async def get_operation(request: Request, state: AcsState) -> Response:
    """GET /phoneNumbers/operations/{id}: notStarted, running, then succeeded or failed."""
    operation = state.operations.get(request.path_params["operation_id"])
    if operation is None:
        return acs_error(404, "NotFound", "Operation not found.")
    body = operation.to_json(state.now())
    running = body["status"] in ("notStarted", "running")
    headers = {"Retry-After": f"{state.lro_retry_after_seconds:g}"} if running else None
    return JSONResponse(body, headers=headers)


async def get_search_result(request: Request, state: AcsState) -> Response:
    """GET /availablePhoneNumbers/searchResults/{searchId}: the reserved numbers once the search finished."""
    search = state.searches.get(request.path_params["search_id"])
    operation = state.operations.get(f"search_{request.path_params['search_id']}")
    if search is None or operation is None or operation.status_at(state.now()) != "succeeded":
        return acs_error(404, "NotFound", "Search result not found.")
    return JSONResponse(search.to_json())


async def list_numbers(request: Request, state: AcsState) -> Response:
    """GET /phoneNumbers: the numbers the resource owns."""
    with state.lock:
        numbers = [number.to_json() for number in state.numbers.values()]
    return JSONResponse({"phoneNumbers": numbers, "nextLink": None})


async def get_number(request: Request, state: AcsState) -> Response:
    """GET /phoneNumbers/{number}."""
    number = state.numbers.get(normalize_phone(request.path_params["phone_number"]))
    if number is None:
        return acs_error(404, "PhoneNumberNotFound", "The phone number is not owned by this resource.")
    return JSONResponse(number.to_json())


# --- sandbox-only routes (no HMAC): the patient's phone and the portal's view ---------------------------------


def _linkify(text: str) -> str:
    pieces, last = [], 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)")  # sentence punctuation after a link is not part of it
        pieces += [html.escape(text[last:match.start()]), f'<a href="{html.escape(url)}">{html.escape(url)}</a>']
        last = match.start() + len(url)
    pieces.append(html.escape(text[last:]))
    return "".join(pieces).replace("\n", "<br>")


_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;background:#eef0f3;margin:0}
.phone{max-width:420px;margin:1.5rem auto;background:#fff;border-radius:28px;box-shadow:0 4px 24px #0002;
 overflow:hidden}
header{background:#f7f7f9;padding:1rem;text-align:center;border-bottom:1px solid #ddd}
header h1{font-size:1.05rem;margin:0} header p{margin:.2rem 0 0;color:#666;font-size:.8rem}
ol{list-style:none;margin:0;padding:1rem;display:flex;flex-direction:column;gap:.6rem;min-height:50vh}
li{max-width:80%;padding:.55rem .8rem;border-radius:18px;line-height:1.35;overflow-wrap:anywhere}
li.in{background:#e5e5ea;align-self:flex-start} li.out{background:#0b84ff;color:#fff;align-self:flex-end}
li.out a{color:#fff} small{display:block;font-size:.7rem;opacity:.7;margin-top:.25rem}
.empty{color:#888;text-align:center}
"""


def _page(title: str, body: str, refresh: str | None) -> HTMLResponse:
    meta = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh and refresh.isdigit() else ""
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">{meta}'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head><body>{body}</body></html>"
    )


async def home(request: Request) -> Response:
    """GET /: the outbox is what a person opening the stand-in wants to see."""
    return RedirectResponse("/outbox")


async def outbox_index(request: Request) -> Response:
    """GET /outbox: every phone that received a message."""
    state: AcsState = request.app.state.acs
    rows = "".join(
        f'<li class="in"><a href="/outbox/{html.escape(phone)}">{html.escape(phone)}</a>'
        f"<small>{len(state.outbox(phone))} received</small></li>"
        for phone in state.phones()
    ) or '<li class="empty">No messages yet.</li>'
    body = f'<div class="phone"><header><h1>Sandbox phones</h1><p>SMS sent by ACS</p></header><ol>{rows}</ol></div>'
    return _page("Sandbox phones", body, request.query_params.get("refresh"))


def _conversation(state: AcsState, phone: str) -> list[tuple[datetime, str]]:
    received = [
        (m.sent_at, f'<li class="in" data-message-id="{html.escape(m.message_id)}">{_linkify(m.message)}'
                    f"<small>from {html.escape(m.from_)} · {m.sent_at:%H:%M:%S} UTC</small></li>")
        for m in state.outbox(phone)
    ]
    sent = [
        (m.received_at, f'<li class="out">{_linkify(m.message)}<small>to {html.escape(m.to)} · '
                        f"{m.received_at:%H:%M:%S} UTC</small></li>")
        for m in state.inbox(phone)
    ]
    return sorted(received + sent, key=lambda pair: pair[0])


async def outbox_phone(request: Request) -> Response:
    """GET /outbox/{phone}: the phone's message list (HTML, or JSON with ?format=json)."""
    state: AcsState = request.app.state.acs
    phone = normalize_phone(request.path_params["phone"])
    if request.query_params.get("format") == "json":
        return outbox_json_for(state, phone)
    bubbles = "".join(bubble for _, bubble in _conversation(state, phone)) or '<li class="empty">No messages.</li>'
    body = (f'<div class="phone"><header><h1>{html.escape(phone)}</h1><p>Messages</p></header>'
            f'<ol id="messages">{bubbles}</ol></div>')
    return _page(f"Messages · {phone}", body, request.query_params.get("refresh"))


def outbox_json_for(state: AcsState, phone: str) -> JSONResponse:
    """The phone's received messages as JSON."""
    return JSONResponse({"phone": phone, "messages": [m.to_json() for m in state.outbox(phone)]})


async def outbox_json(request: Request) -> Response:
    """GET /outbox/{phone}.json."""
    return outbox_json_for(request.app.state.acs, normalize_phone(request.path_params["phone"]))


async def sandbox_reply(request: Request) -> Response:
    """POST /_sandbox/reply {from, to, message}: the patient texts back (STOP / START change the opt-out)."""
    state: AcsState = request.app.state.acs
    payload = await _json_object(request)
    if payload is None or not isinstance(payload.get("message"), str):
        return _bad_request("'from', 'to' and 'message' are required.")
    if not (is_e164(payload.get("from")) and is_e164(payload.get("to"))):
        return _bad_request("'from' and 'to' must be E.164 phone numbers.")
    if not state.owns(payload.get("to")):
        return acs_error(404, "NotFound", "'to' is not a number of this resource.")
    inbound = state._receive(payload["from"], payload["to"], payload["message"], state.now())
    _schedule_received(state, inbound)
    opted_out = state.is_opted_out(payload["to"], payload["from"])
    return JSONResponse({"messageId": inbound.message_id, "optedOut": opted_out}, status_code=202)


async def sandbox_numbers(request: Request) -> Response:
    """GET /_sandbox/numbers: owned numbers with their toll-free verification status."""
    state: AcsState = request.app.state.acs
    state._settle(state.now())
    with state.lock:
        value = [
            {**number.to_json(), "verificationStatus": state.verification.get(number.phone_number)}
            for number in state.numbers.values()
        ]
    return JSONResponse({"value": value})


async def sandbox_verification(request: Request) -> Response:
    """POST /_sandbox/verification {phoneNumber, status}: move a toll-free number through verification."""
    state: AcsState = request.app.state.acs
    payload = await _json_object(request) or {}
    number, status = payload.get("phoneNumber"), payload.get("status")
    if not state.owns(number) or status not in ("unverified", "pending", "verified"):
        return _bad_request("'phoneNumber' must be owned; 'status' unverified, pending or verified.")
    with state.lock:
        state.verification[number] = status
    return JSONResponse({"phoneNumber": number, "verificationStatus": status})


def build_app(state: AcsState) -> Starlette:
    """The ACS stand-in as an ASGI app bound to `state`."""

    def api(path: str, name: str, handler: ApiHandler, method: str, needs_api_version: bool = True) -> Route:
        return Route(path, _signed(state, name, handler, needs_api_version), methods=[method], name=name)

    routes = [
        api("/sms", "sms.send", send_sms, "POST"),
        api("/sms/optouts:check", "sms.optouts.check", _optouts_route("check"), "POST"),
        api("/sms/optouts:add", "sms.optouts.add", _optouts_route("add"), "POST"),
        api("/sms/optouts:remove", "sms.optouts.remove", _optouts_route("remove"), "POST"),
        api("/deliveryReports/{message_id}", "sms.deliveryReport", get_delivery_report, "GET"),
        api("/availablePhoneNumbers/countries/{country_code}/:search", "numbers.search", search_numbers, "POST"),
        api("/availablePhoneNumbers/:purchase", "numbers.purchase", purchase_numbers, "POST"),
        api("/availablePhoneNumbers/searchResults/{search_id}", "numbers.searchResult", get_search_result, "GET",
            needs_api_version=False),
        api("/phoneNumbers/operations/{operation_id}", "numbers.operation", get_operation, "GET",
            needs_api_version=False),
        api("/phoneNumbers", "numbers.list", list_numbers, "GET"),
        api("/phoneNumbers/{phone_number}", "numbers.get", get_number, "GET"),
        Route("/", home, methods=["GET"]),
        Route("/outbox", outbox_index, methods=["GET"]),
        Route("/outbox/{phone}.json", outbox_json, methods=["GET"]),
        Route("/outbox/{phone}", outbox_phone, methods=["GET"]),
        Route("/_sandbox/reply", sandbox_reply, methods=["POST"]),
        Route("/_sandbox/numbers", sandbox_numbers, methods=["GET"]),
        Route("/_sandbox/verification", sandbox_verification, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.acs = state
    return app
