"""The ACS stand-in's Email API: the real azure-communication-email SDK sends, polls and gets delivery events."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import requests
from azure.communication.email import EmailClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from starlette.applications import Starlette
from starlette.routing import Route

from sandbox.acs import AcsState, build_app
from sandbox.acs.mail import DEMO_SENDER
from sandbox.config import ACS_ACCESS_KEY
from sandbox.servers import free_port, serve
from tests.sandbox.test_acs import Acs, Receiver

EMAIL_REPORT = "Microsoft.Communication.EmailDeliveryReportReceived"
_people = itertools.count(1)


def new_address() -> str:
    return f"patient{next(_people)}@example.org"


@pytest.fixture(scope="module")
def acs(dev_ca) -> Iterator[Acs]:
    receiver = Receiver()
    hook = serve(Starlette(routes=[Route("/runtime/webhooks/eventgrid", receiver.handle, methods=["POST"])]),
                 free_port())
    state = AcsState()
    state.delivery_delay_seconds = 0.0
    state.mail.operation_seconds = 0.3
    state.event_webhook = f"http://127.0.0.1:{hook.port}/runtime/webhooks/eventgrid?functionName=sms_delivery_report"
    server = serve(build_app(state), free_port(), dev_ca)
    with requests.Session() as session:
        yield Acs(state, f"https://localhost:{server.port}", receiver, session)
    server.server.force_exit = True
    server.stop()
    hook.stop()


def client(acs: Acs, key: str = ACS_ACCESS_KEY) -> EmailClient:
    return EmailClient(acs.url, AzureKeyCredential(key), transport=acs.transport(), retry_total=0)


def message(to: str, subject: str = "Your virtual appointment", sender: str = DEMO_SENDER) -> dict:
    return {
        "senderAddress": sender, "recipients": {"to": [{"address": to}]},
        "content": {"subject": subject, "plainText": "Join: https://app.example/api/join/x",
                    "html": "<p>Join: <a href='https://app.example/api/join/x'>join</a></p>"},
        "headers": {"List-Unsubscribe": "<https://app.example/api/unsubscribe/t>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    }


def repeatable(request_id: str, first_sent: datetime) -> dict[str, str]:
    return {"Repeatability-Request-Id": request_id, "Repeatability-First-Sent": format_datetime(first_sent, True)}


def test_sdk_sends_polls_to_succeeded_and_the_mailbox_receives_it(acs: Acs) -> None:
    to = new_address()
    poller = client(acs).begin_send(message(to), polling_interval=0.05)
    result = poller.result()
    assert result["status"] == "Succeeded"
    [received] = acs.state.mail.mailbox(to)
    assert received.subject == "Your virtual appointment"
    assert received.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    listing = httpx.get(f"{acs.url}/inbox/{to}.json", verify=False).json()
    assert [m["messageId"] for m in listing["messages"]] == [result["id"]]
    page = httpx.get(f"{acs.url}/inbox/{to}", verify=False).text
    assert "https://app.example/api/join/x" in page and "Unsubscribe" in page
    assert to in httpx.get(f"{acs.url}/inbox", verify=False).text


def test_delivery_report_event_names_the_operation_and_recipient(acs: Acs) -> None:
    to = new_address()
    operation_id = str(uuid.uuid4())
    client(acs).begin_send(message(to), operation_id=operation_id, polling_interval=0.05).result()
    [(_headers, event)] = acs.receiver.wait(lambda e: e["eventType"] == EMAIL_REPORT
                                            and e["data"]["recipient"] == to)
    assert event["data"]["messageId"] == operation_id
    assert event["data"]["status"] == "Delivered"
    assert event["data"]["sender"] == DEMO_SENDER
    assert event["subject"] == f"sender/{DEMO_SENDER}/message/{operation_id}"


def test_a_bounce_is_reported_and_nothing_reaches_the_mailbox(acs: Acs) -> None:
    to = new_address()
    acs.state.mail.outcome[to] = "Bounced"
    client(acs).begin_send(message(to), polling_interval=0.05).result()
    [(_h, event)] = acs.receiver.wait(lambda e: e["eventType"] == EMAIL_REPORT and e["data"]["recipient"] == to)
    assert event["data"]["status"] == "Bounced"
    assert acs.state.mail.mailbox(to) == []


def test_a_repeat_while_running_is_409_and_after_it_replays_the_same_operation(acs: Acs) -> None:
    to, request_id, first_sent = new_address(), str(uuid.uuid4()), datetime.now(UTC)
    email = client(acs)
    first = email.begin_send(message(to), headers=repeatable(request_id, first_sent), polling=False)
    with pytest.raises(HttpResponseError) as running:
        email.begin_send(message(to), headers=repeatable(request_id, first_sent), polling=False)
    assert running.value.status_code == 409
    done = email.begin_send(message(to), operation_id=None, polling_interval=0.05).result()
    assert done["status"] == "Succeeded"  # another email, to let the first one finish
    replay = email.begin_send(message(to), headers=repeatable(request_id, first_sent), polling_interval=0.05)
    assert replay.result()["id"] == first.result()["id"]
    assert len(acs.state.mail.mailbox(to)) == 2


def test_the_same_request_id_with_another_body_is_400(acs: Acs) -> None:
    to, request_id, first_sent = new_address(), str(uuid.uuid4()), datetime.now(UTC)
    email = client(acs)
    email.begin_send(message(to), headers=repeatable(request_id, first_sent), polling=False)
    with pytest.raises(HttpResponseError) as other:
        email.begin_send(message(to, "Other"), headers=repeatable(request_id, first_sent), polling=False)
    assert other.value.status_code == 400


def test_a_first_sent_outside_the_window_is_412(acs: Acs) -> None:
    with pytest.raises(HttpResponseError) as old:
        client(acs).begin_send(message(new_address()),
                               headers=repeatable(str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=6)),
                               polling=False)
    assert old.value.status_code == 412


def test_too_many_emails_from_one_sender_get_429_with_retry_after(acs: Acs) -> None:
    acs.state.mail.rate_limit_per_minute = 2
    acs.state.mail.sent_at.clear()  # earlier tests' emails are in this minute too
    try:
        email = client(acs)
        for _ in range(2):
            email.begin_send(message(new_address()), polling=False)
        with pytest.raises(HttpResponseError) as throttled:
            email.begin_send(message(new_address()), polling=False)
    finally:
        acs.state.mail.rate_limit_per_minute = 30
        acs.state.mail.sent_at.clear()
    assert throttled.value.status_code == 429
    assert int(throttled.value.response.headers["Retry-After"]) >= 1


def test_a_sender_outside_the_linked_domains_is_refused(acs: Acs) -> None:
    to = new_address()
    with pytest.raises(HttpResponseError) as refused:
        client(acs).begin_send(message(to, sender="noreply@elsewhere.example"), polling=False)
    assert refused.value.status_code == 400
    assert acs.state.mail.mailbox(to) == []


def test_a_wrong_key_is_denied(acs: Acs) -> None:
    to = new_address()
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktMTIzNA=="
    with pytest.raises(HttpResponseError) as denied:
        client(acs, wrong).begin_send(message(to), polling=False)
    assert denied.value.status_code == 401
    assert acs.state.mail.mailbox(to) == []
