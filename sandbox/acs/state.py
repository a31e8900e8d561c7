"""State of the ACS stand-in: numbers, outbox, opt-outs, operations, repeatability and Event Grid subscriptions."""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from sandbox.acs.mail import MailState
from sandbox.acs.phones import (
    DELIVERED_DETAIL,
    DEMO_NUMBER,
    OPTED_OUT_DETAIL,
    REPEATABILITY_DATE_ERROR,
    SEARCH_HOLD,
    START_WORDS,
    STOP_WORDS,
    TOLL_FREE_AREA_CODES,
    is_e164,
    new_message_id,
    segment_count,
    toll_free_reaches,
    utc_now,
)
from sandbox.acs.records import Delivery, InboundMessage, NumberSearch, Operation, OutboxMessage, OwnedNumber, Repeat
from sandbox.acs.shapes import failed_item, inventory_problem, parse_http_date, report_json
from sandbox.config import ACS_ACCESS_KEY


class AcsState:
    """Everything the ACS stand-in knows; tests read and steer it (faults, limits, outcomes, clock)."""

    def __init__(self, access_key: str = ACS_ACCESS_KEY, owned_numbers: tuple[str, ...] = (DEMO_NUMBER,)) -> None:
        self.lock = threading.RLock()
        self.access_key = access_key
        self.clock: Callable[[], datetime] = utc_now
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
        # Per (sender, recipient): every send asked for, repeats of a repeatability id included (the outbox has
        # each text once, so only this shows a client that asked twice).
        self.send_requests: Counter[tuple[str, str]] = Counter()
        self.auth_failures: list[str] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.searches: dict[str, NumberSearch] = {}
        self.operations: dict[str, Operation] = {}
        self._faults: deque[tuple[int, str]] = deque()
        self._outbox: list[OutboxMessage] = []
        self._inbox: list[InboundMessage] = []
        self._repeats: dict[str, Repeat] = {}
        self._units_sent: dict[str, deque[tuple[datetime, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_number = 200
        self.mail = MailState()  # the Email half: sender domains, operations, inbox
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

    def faults_pending(self) -> int:
        """How many injected faults no request has met yet."""
        with self.lock:
            return len(self._faults)

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
        self.send_requests[(sender, to)] += 1
        if not request_id:
            return self._accept(sender, to, payload, now)
        problem = self._repeatability_problem(recipient, now)
        if problem or not isinstance(request_id, str):
            return problem or failed_item(to, 400, "repeatabilityRequestId must be a string.", "rejected"), None
        fingerprint = (sender, to, payload["message"])
        earlier = self._repeats.get(request_id)
        if earlier and earlier.fingerprint != fingerprint:
            message = "repeatabilityRequestId was already used for a different request."
            return failed_item(to, 400, message, repeatability="rejected"), None
        if earlier:
            return dict(earlier.item), None
        item, delivery = self._accept(sender, to, payload, now)
        item["repeatabilityResult"] = "accepted"
        if item["successful"]:
            self._repeats[request_id] = Repeat(fingerprint, dict(item))
        return item, delivery

    def _repeatability_problem(self, recipient: dict, now: datetime) -> dict | None:
        """The rejected item when repeatabilityFirstSent is missing, malformed or outside the window."""
        first_sent = parse_http_date(recipient.get("repeatabilityFirstSent"))
        if first_sent is None:
            return failed_item(recipient["to"], 400, REPEATABILITY_DATE_ERROR, repeatability="rejected")
        if (now - first_sent).total_seconds() > self.repeatability_window_seconds:
            message = "repeatabilityFirstSent is older than the repeatability window; send a new request."
            return failed_item(recipient["to"], 412, message, repeatability="rejected")
        return None

    def _accept(self, sender: str, to: str, payload: dict, now: datetime) -> tuple[dict, Delivery | None]:
        if not is_e164(to):
            return failed_item(to, 400, "Invalid To phone number format."), None
        if self.numbers[sender].phone_number_type == "tollFree" and not toll_free_reaches(to):
            message = "Destination not reachable from a toll-free number; toll-free numbers only reach US, CA and PR."
            return failed_item(to, 400, message), None
        options = payload["smsSendOptions"] if isinstance(payload.get("smsSendOptions"), dict) else {}
        message_id = new_message_id("Outgoing", now)
        status, detail = self._outcome(sender, to)
        if status == "Delivered":
            self._outbox.append(OutboxMessage(to, sender, payload["message"], message_id, options.get("tag"), now))
        delivery = Delivery(
            message_id, sender, to, status, detail, options.get("tag"), segment_count(payload["message"]),
            bool(options.get("enableDeliveryReport")),
        )
        self.reports[message_id] = report_json(delivery, now)
        return {"to": to, "messageId": message_id, "httpStatusCode": 202, "successful": True}, delivery

    def _outcome(self, sender: str, to: str) -> tuple[str, str]:
        if (sender, to) in self.opted_out:
            return "Failed", OPTED_OUT_DETAIL
        return self.delivery_outcome.get(to, ("Delivered", DELIVERED_DETAIL))

    def _receive(self, sender: str, recipient: str, message: str, now: datetime) -> InboundMessage:
        """Record a patient's reply; STOP and START keywords change the opt-out list as carriers do."""
        keyword = message.strip().upper()
        inbound = InboundMessage(sender, recipient, message, new_message_id("Incoming", now), now)
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
            error = inventory_problem(country_code, request)
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
