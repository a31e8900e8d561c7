"""The ACS stand-in speaks ACS: the real SMS and phone-number SDKs work against it unchanged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import requests
from azure.communication.phonenumbers import (
    PhoneNumberAssignmentType,
    PhoneNumberCapabilities,
    PhoneNumberCapabilityType,
    PhoneNumbersClient,
    PhoneNumberType,
)
from azure.communication.sms import SmsClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.acs import DEMO_NUMBER, AcsState, build_app
from sandbox.config import ACS_ACCESS_KEY
from sandbox.servers import free_port, serve
from tests.waiting import PATIENCE, wait_until

DELIVERY_REPORT = "Microsoft.Communication.SMSDeliveryReportReceived"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"
_patients = itertools.count(1000)


def new_patient() -> str:
    """A fresh US mobile number, so tests sharing the stand-in never see each other's messages."""
    return f"+1206555{next(_patients):04d}"


class Receiver:
    """A tiny Event Grid webhook: records every POST; can refuse deliveries for a recipient."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[dict[str, str], list[dict]]] = []
        self.refuse_for: dict[str, int] = {}

    async def handle(self, request: Request) -> Response:
        events = await request.json()
        with self.lock:
            self.calls.append((dict(request.headers), events))
            phone = events[0]["data"].get("To") if events[0]["eventType"] == DELIVERY_REPORT else None
            if self.refuse_for.get(phone, 0) > 0:
                self.refuse_for[phone] -= 1
                return Response(status_code=500)
        return Response(status_code=200)

    def wait(self, predicate: Callable[[dict], bool], count: int = 1,
             timeout: float = PATIENCE) -> list[tuple[dict, dict]]:
        """(headers, event) pairs matching `predicate`, once at least `count` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [(headers, e) for headers, events in self.calls for e in events if predicate(e)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


@dataclass
class Acs:
    state: AcsState
    url: str
    receiver: Receiver
    session: requests.Session

    def transport(self) -> RequestsTransport:
        """SDK clients share one session the fixture closes, so no idle TLS connection delays the server's stop."""
        return RequestsTransport(session=self.session, session_owner=False)

    def sms(self, key: str = ACS_ACCESS_KEY) -> SmsClient:
        return SmsClient(self.url, AzureKeyCredential(key), transport=self.transport())

    def numbers(self) -> PhoneNumbersClient:
        return PhoneNumbersClient(self.url, AzureKeyCredential(ACS_ACCESS_KEY), transport=self.transport())

    def reports_to(self, phone: str, count: int = 1, timeout: float = PATIENCE) -> list[dict]:
        found = self.receiver.wait(
            lambda e: e["eventType"] == DELIVERY_REPORT and e["data"]["To"] == phone, count, timeout)
        return [event for _, event in found]


@pytest.fixture(scope="module")
def acs(dev_ca) -> Iterator[Acs]:
    receiver = Receiver()
    hook = serve(Starlette(routes=[Route("/runtime/webhooks/eventgrid", receiver.handle, methods=["POST"])]),
                 free_port())
    state = AcsState()
    state.lro_seconds = 0.2
    state.lro_retry_after_seconds = 0.05
    state.delivery_delay_seconds = 0.0
    state.event_retry_delays = (0.1, 0.2, 0.4)
    state.event_webhook = f"http://127.0.0.1:{hook.port}/runtime/webhooks/eventgrid?functionName=sms_delivery_report"
    server = serve(build_app(state), free_port(), dev_ca)
    with requests.Session() as session:
        yield Acs(state, f"https://localhost:{server.port}", receiver, session)
    # azure-core leaves the socket of a failed LRO poll unread; a graceful stop would wait for its TLS close.
    server.server.force_exit = True
    server.stop()
    hook.stop()


def signed(method: str, url: str, body: object = None, *, key: str = ACS_ACCESS_KEY, content_hash: str | None = None,
           date: datetime | None = None) -> httpx.Response:
    """A request signed the way ACS documents HMAC-SHA256 (independent of the stand-in's own code)."""
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    target = httpx.URL(url)
    x_ms_date = format_datetime(date or datetime.now(UTC), usegmt=True)
    content_hash = content_hash or base64.b64encode(hashlib.sha256(raw).digest()).decode()
    to_sign = f"{method}\n{target.raw_path.decode()}\n{x_ms_date};{target.netloc.decode()};{content_hash}"
    signature = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
    headers = {
        "x-ms-date": x_ms_date, "x-ms-content-sha256": content_hash, "Content-Type": "application/json",
        "Authorization": f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
    }
    return httpx.request(method, target, content=raw, headers=headers)


def send_body(to: str | list[dict], sender: str = DEMO_NUMBER, message: str = "Hello from the clinic") -> dict:
    recipients = [{"to": to}] if isinstance(to, str) else to
    return {"from": sender, "smsRecipients": recipients, "message": message,
            "smsSendOptions": {"enableDeliveryReport": True, "tag": "test"}}


def rfc1123(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


# --- sending with the real SDK --------------------------------------------------------------------------------


def test_sdk_send_lands_on_the_patients_phone(acs: Acs) -> None:
    patient = new_patient()
    text = "Your video visit is ready: https://clinic.example/api/join/abc123"

    [result] = acs.sms().send(DEMO_NUMBER, patient, text, enable_delivery_report=True, tag="confirmation")

    assert result.successful and result.http_status_code == 202
    assert result.message_id.startswith("Outgoing_")
    [received] = acs.state.outbox(patient)
    assert (received.message, received.from_, received.tag) == (text, DEMO_NUMBER, "confirmation")
    listing = httpx.get(f"{acs.url}/outbox/{patient}.json").json()
    assert [m["messageId"] for m in listing["messages"]] == [result.message_id]
    page = httpx.get(f"{acs.url}/outbox/{patient}")
    assert '<a href="https://clinic.example/api/join/abc123">' in page.text
    assert patient in httpx.get(f"{acs.url}/outbox").text


def test_client_from_connection_string_sends(acs: Acs) -> None:
    patient = new_patient()
    client = SmsClient.from_connection_string(f"endpoint={acs.url}/;accesskey={ACS_ACCESS_KEY}",
                                              transport=acs.transport())

    [result] = client.send(DEMO_NUMBER, patient, "Reminder: visit in 15 minutes")

    assert result.successful
    assert len(acs.state.outbox(patient)) == 1


def test_delivery_report_reaches_the_webhook_with_the_tag(acs: Acs) -> None:
    patient = new_patient()

    [result] = acs.sms().send(DEMO_NUMBER, patient, "See you soon", enable_delivery_report=True, tag="reminder-24h")

    [(headers, event)] = acs.receiver.wait(lambda e: e["id"] == result.message_id)
    assert headers["aeg-event-type"] == "Notification"
    assert event["eventType"] == DELIVERY_REPORT
    data = event["data"]
    assert (data["MessageId"], data["From"], data["To"]) == (result.message_id, DEMO_NUMBER, patient)
    assert (data["DeliveryStatus"], data["Tag"]) == ("Delivered", "reminder-24h")
    assert data["DeliveryAttempts"][0]["SegmentsSucceeded"] == 1


def test_delivery_report_can_be_read_back(acs: Acs) -> None:
    [result] = acs.sms().send(DEMO_NUMBER, new_patient(), "Read me back", enable_delivery_report=True, tag="t1")
    query = "?api-version=2026-01-23"

    report = signed("GET", f"{acs.url}/deliveryReports/{result.message_id}{query}")
    unknown = signed("GET", f"{acs.url}/deliveryReports/Outgoing_unknown{query}")

    assert report.status_code == 200
    assert (report.json()["messageId"], report.json()["deliveryStatus"], report.json()["tag"]) == (
        result.message_id, "Delivered", "t1")
    assert unknown.status_code == 404


def test_no_delivery_report_unless_asked(acs: Acs) -> None:
    patient, control = new_patient(), new_patient()

    acs.sms().send(DEMO_NUMBER, patient, "No report wanted")
    acs.sms().send(DEMO_NUMBER, control, "Report wanted", enable_delivery_report=True)

    assert acs.reports_to(control)
    assert acs.reports_to(patient, timeout=0.3) == []


def test_invalid_recipients_come_back_as_items_while_others_succeed(acs: Acs) -> None:
    good = new_patient()
    recipients = [good, "+112345678901", "+5511987654321", "+18765550123"]

    results = acs.sms().send(DEMO_NUMBER, recipients, "Mixed batch")

    assert [(r.to, r.http_status_code, r.successful) for r in results] == [
        (good, 202, True), ("+112345678901", 400, False), ("+5511987654321", 400, False),
        ("+18765550123", 400, False),
    ]
    assert results[1].error_message == "Invalid To phone number format."
    assert "toll-free" in results[2].error_message
    assert [len(acs.state.outbox(phone)) for phone in recipients] == [1, 0, 0, 0]


# --- authentication ---------------------------------------------------------------------------------------------


def test_wrong_key_is_denied_with_401(acs: Acs) -> None:
    patient = new_patient()
    wrong_key = base64.b64encode(b"not-the-resource-key").decode()

    with pytest.raises(HttpResponseError) as denied:
        acs.sms(wrong_key).send(DEMO_NUMBER, patient, "Should not arrive")

    assert denied.value.status_code == 401
    assert json.loads(denied.value.response.text())["error"]["code"] == "Denied"
    assert acs.state.outbox(patient) == []


def test_tampered_body_or_stale_date_is_denied(acs: Acs) -> None:
    patient = new_patient()
    url = f"{acs.url}/sms?api-version=2021-03-07"
    other_hash = base64.b64encode(hashlib.sha256(b"another body").digest()).decode()

    tampered = signed("POST", url, send_body(patient), content_hash=other_hash)
    stale = signed("POST", url, send_body(patient), date=datetime.now(UTC) - timedelta(minutes=16))
    genuine = signed("POST", url, send_body(patient))

    assert (tampered.status_code, tampered.json()["error"]["code"]) == (401, "Denied")
    assert stale.status_code == 401
    assert genuine.status_code == 202
    assert len(acs.state.outbox(patient)) == 1


def test_sandbox_pages_need_no_signature_but_the_api_does(acs: Acs) -> None:
    assert httpx.get(f"{acs.url}/phoneNumbers?api-version=2025-06-01").status_code == 401
    assert httpx.get(f"{acs.url}/_sandbox/numbers").status_code == 200


# --- repeatability ---------------------------------------------------------------------------------------------


def test_repeated_request_id_returns_the_original_result_and_delivers_once(acs: Acs) -> None:
    patient = new_patient()
    recipient = {"to": patient, "repeatabilityRequestId": "0b9f6f3e-4c36-4a55-9a3c-5a3c7e1e0001",
                 "repeatabilityFirstSent": rfc1123(datetime.now(UTC))}
    url = f"{acs.url}/sms?api-version=2021-03-07"

    first = signed("POST", url, send_body([recipient])).json()["value"][0]
    retry = signed("POST", url, send_body([recipient])).json()["value"][0]

    assert first["successful"] and first["repeatabilityResult"] == "accepted"
    assert retry == first
    assert len(acs.state.outbox(patient)) == 1


def test_repeatability_rejects_missing_or_stale_first_sent(acs: Acs) -> None:
    patient = new_patient()
    missing = {"to": patient, "repeatabilityRequestId": "0b9f6f3e-4c36-4a55-9a3c-5a3c7e1e0002"}
    stale = {"to": patient, "repeatabilityRequestId": "0b9f6f3e-4c36-4a55-9a3c-5a3c7e1e0003",
             "repeatabilityFirstSent": rfc1123(datetime.now(UTC) - timedelta(minutes=6))}

    response = signed("POST", f"{acs.url}/sms?api-version=2021-03-07", send_body([missing, stale]))

    assert response.status_code == 202
    items = response.json()["value"]
    assert [(i["httpStatusCode"], i["repeatabilityResult"], i["successful"]) for i in items] == [
        (400, "rejected", False), (412, "rejected", False)]
    assert acs.state.outbox(patient) == []


def test_request_id_reused_for_another_message_is_rejected(acs: Acs) -> None:
    patient = new_patient()
    recipient = {"to": patient, "repeatabilityRequestId": "0b9f6f3e-4c36-4a55-9a3c-5a3c7e1e0004",
                 "repeatabilityFirstSent": rfc1123(datetime.now(UTC))}
    url = f"{acs.url}/sms?api-version=2021-03-07"

    signed("POST", url, send_body([recipient], message="first"))
    reuse = signed("POST", url, send_body([recipient], message="second")).json()["value"][0]

    assert (reuse["httpStatusCode"], reuse["repeatabilityResult"]) == (400, "rejected")
    assert [m.message for m in acs.state.outbox(patient)] == ["first"]


# --- whole-request refusals: throttling, sender, size, faults ---------------------------------------------------


def test_throttling_counts_message_units_per_sending_number(acs: Acs, monkeypatch: pytest.MonkeyPatch) -> None:
    busy, quiet = "+18885550301", "+18885550302"
    acs.state.own_number(busy)
    acs.state.own_number(quiet)
    monkeypatch.setattr(acs.state, "rate_limit_per_minute", 3)
    url = f"{acs.url}/sms?api-version=2021-03-07"

    first_two = signed("POST", url, send_body([{"to": new_patient()}, {"to": new_patient()}], sender=busy))
    third = signed("POST", url, send_body(new_patient(), sender=busy))
    fourth = signed("POST", url, send_body(new_patient(), sender=busy))
    other_number = signed("POST", url, send_body(new_patient(), sender=quiet))

    assert (first_two.status_code, third.status_code) == (202, 202)
    assert fourth.status_code == 429
    assert 1 <= int(fourth.headers["Retry-After"]) <= 60
    assert fourth.json()["error"]["code"] == "TooManyRequests"
    assert other_number.status_code == 202


def test_unowned_sender_and_oversized_message_are_refused(acs: Acs) -> None:
    url = f"{acs.url}/sms?api-version=2021-03-07"

    unowned = signed("POST", url, send_body(new_patient(), sender="+18005559999"))
    too_long = signed("POST", url, send_body(new_patient(), message="x" * 2049))
    no_version = signed("POST", f"{acs.url}/sms", send_body(new_patient()))

    assert unowned.status_code == 400 and "Invalid from phone number" in unowned.json()["error"]["message"]
    assert too_long.status_code == 400
    assert no_version.status_code == 400


def test_malformed_requests_get_a_clear_400(acs: Acs) -> None:
    url = f"{acs.url}/sms?api-version=2021-03-07"
    odd_recipient = {"from": DEMO_NUMBER, "smsRecipients": [{"to": 5}], "message": "x"}
    odd_reply = {"from": new_patient(), "to": [DEMO_NUMBER], "message": "STOP"}

    responses = [
        signed("POST", url, b"{not json"),
        signed("POST", url, odd_recipient),
        signed("POST", url, send_body([{"to": new_patient(), "repeatabilityRequestId": "x",
                                         "repeatabilityFirstSent": 17}])),
        httpx.post(f"{acs.url}/_sandbox/reply", json=odd_reply),
    ]

    assert [r.status_code for r in responses] == [400, 400, 202, 400]
    assert responses[0].json()["error"]["code"] == "BadRequest"
    assert responses[2].json()["value"][0]["repeatabilityResult"] == "rejected"


def test_injected_fault_fails_the_next_request_only(acs: Acs) -> None:
    patient = new_patient()
    url = f"{acs.url}/sms?api-version=2021-03-07"
    pending = acs.state.faults_pending()
    acs.state.fail_next(503)
    assert acs.state.faults_pending() == pending + 1

    failed = signed("POST", url, send_body(patient))
    assert acs.state.faults_pending() == pending, "the fault met its request"
    retried = signed("POST", url, send_body(patient))

    assert failed.status_code == 503 and failed.headers["Retry-After"]
    assert retried.status_code == 202
    assert len(acs.state.outbox(patient)) == 1


def test_latency_slows_every_api_request(acs: Acs, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acs.state, "latency_seconds", 0.2)
    started = time.monotonic()

    acs.sms().send(DEMO_NUMBER, new_patient(), "slow")

    assert time.monotonic() - started >= 0.2


# --- opt-out and delivery outcomes -------------------------------------------------------------------------------


def test_stop_reply_blocks_delivery_and_start_resumes_it(acs: Acs) -> None:
    patient = new_patient()
    reply = httpx.post(f"{acs.url}/_sandbox/reply", json={"from": patient, "to": DEMO_NUMBER, "message": "Stop"})
    [(_, inbound)] = acs.receiver.wait(lambda e: e["eventType"] == SMS_RECEIVED and e["data"]["From"] == patient)

    [blocked] = acs.sms().send(DEMO_NUMBER, patient, "Reminder", enable_delivery_report=True)
    [report] = acs.reports_to(patient)
    httpx.post(f"{acs.url}/_sandbox/reply", json={"from": patient, "to": DEMO_NUMBER, "message": "START"})
    acs.sms().send(DEMO_NUMBER, patient, "Welcome back", enable_delivery_report=True)

    assert reply.status_code == 202 and reply.json()["optedOut"] is True
    assert (inbound["data"]["To"], inbound["data"]["Message"]) == (DEMO_NUMBER, "Stop")
    assert blocked.successful
    assert (report["data"]["DeliveryStatus"], report["data"]["DeliveryStatusDetails"]) == (
        "Failed", "Sender blocked for given recipient")
    assert [m.message for m in acs.state.outbox(patient)] == ["Welcome back"]


def test_steered_delivery_failure_is_reported_and_not_delivered(acs: Acs) -> None:
    patient = new_patient()
    acs.state.delivery_outcome[patient] = ("Failed", "Unreachable phone number")

    acs.sms().send(DEMO_NUMBER, patient, "Anyone there?", enable_delivery_report=True)

    [report] = acs.reports_to(patient)
    assert report["data"]["DeliveryStatusDetails"] == "Unreachable phone number"
    assert report["data"]["DeliveryAttempts"][0]["SegmentsFailed"] == 1
    assert acs.state.outbox(patient) == []


def test_refused_event_is_retried_like_event_grid(acs: Acs) -> None:
    patient = new_patient()
    acs.receiver.refuse_for[patient] = 1

    [result] = acs.sms().send(DEMO_NUMBER, patient, "Retry me", enable_delivery_report=True)

    attempts = acs.receiver.wait(lambda e: e["id"] == result.message_id, count=2)
    assert [headers["aeg-delivery-count"] for headers, _ in attempts] == ["0", "1"]
    # the stand-in records the event once the retried delivery returns
    assert wait_until(lambda: result.message_id in {e["id"] for e in acs.state.events_sent})


def test_optout_api_adds_checks_and_removes(acs: Acs) -> None:
    patient = new_patient()
    base = f"{acs.url}/sms/optouts"
    query = "?api-version=2026-01-23"
    body = {"from": DEMO_NUMBER, "recipients": [{"to": patient}, {"to": "+123"}]}

    added = signed("POST", f"{base}:add{query}", body)
    checked = signed("POST", f"{base}:check{query}", body).json()["value"]
    signed("POST", f"{base}:remove{query}", body)
    after_remove = signed("POST", f"{base}:check{query}", body).json()["value"]

    assert added.status_code == 200
    assert checked == [
        {"to": patient, "isOptedOut": True, "httpStatusCode": 200},
        {"to": "+123", "httpStatusCode": 400, "errorMessage": "Invalid recipient phone number format"},
    ]
    assert after_remove[0]["isOptedOut"] is False


# --- phone numbers ------------------------------------------------------------------------------------------------


def _sms_capabilities() -> PhoneNumberCapabilities:
    return PhoneNumberCapabilities(calling=PhoneNumberCapabilityType.NONE,
                                   sms=PhoneNumberCapabilityType.INBOUND_OUTBOUND)


def _search(client: PhoneNumbersClient, country: str = "US"):
    return client.begin_search_available_phone_numbers(
        country, PhoneNumberType.TOLL_FREE, PhoneNumberAssignmentType.APPLICATION, _sms_capabilities(),
        area_code="833", polling_interval=0.05,
    ).result()


def test_search_and_purchase_with_the_sdk_make_a_number_that_can_send(acs: Acs) -> None:
    client = acs.numbers()

    search = _search(client)
    [number] = search.phone_numbers
    owned_before = number in acs.state.numbers
    client.begin_purchase_phone_numbers(search.search_id, polling_interval=0.05).result()

    assert not owned_before and number.startswith("+1833")
    assert client.get_purchased_phone_number(number).phone_number_type == "tollFree"
    assert number in [n.phone_number for n in client.list_purchased_phone_numbers()]
    portal_view = httpx.get(f"{acs.url}/_sandbox/numbers").json()["value"]
    assert {n["phoneNumber"]: n["verificationStatus"] for n in portal_view}[number] == "unverified"
    [sent] = acs.sms().send(number, new_patient(), "From the new number")
    assert sent.successful


def test_search_answers_202_and_the_operation_progresses(acs: Acs, monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"phoneNumberType": "tollFree", "assignmentType": "application",
            "capabilities": {"sms": "inbound+outbound", "calling": "none"}, "quantity": 1}
    moment = [acs.state.now()]  # the stand-in's clock, moved by the test rather than by how fast it runs
    monkeypatch.setattr(acs.state, "clock", lambda: moment[0])

    started = signed("POST", f"{acs.url}/availablePhoneNumbers/countries/US/:search?api-version=2025-06-01", body)
    operation_url = acs.url + started.headers["operation-location"]
    early = signed("GET", operation_url).json()["status"]
    moment[0] += timedelta(seconds=acs.state.lro_seconds)
    done = signed("GET", operation_url).json()

    assert started.status_code == 202
    assert {"operation-id", "search-id", "location", "retry-after"} <= set(started.headers)
    assert early in ("notStarted", "running")
    assert (done["status"], done["operationType"]) == ("succeeded", "search")
    result = signed("GET", acs.url + started.headers["location"]).json()
    assert result["searchId"] == started.headers["search-id"] and len(result["phoneNumbers"]) == 1


def test_failed_purchase_surfaces_as_an_error(acs: Acs) -> None:
    client = acs.numbers()
    search = _search(client)
    acs.state.fail_next_purchase = True

    with pytest.raises(HttpResponseError):
        client.begin_purchase_phone_numbers(search.search_id, polling_interval=0.05).result()

    assert search.phone_numbers[0] not in acs.state.numbers


def test_search_without_toll_free_inventory_fails(acs: Acs) -> None:
    with pytest.raises(HttpResponseError):
        _search(acs.numbers(), country="BR")
