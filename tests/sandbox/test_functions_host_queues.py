"""The sandbox host's queue triggers on Azurite: base64 bodies, one run per message, retries, the poison queue."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from sandbox.config import AZURITE_KEY
from sandbox.functions_host import FunctionsHost, HostHandle, start_host
from sandbox.servers import free_port
from tests.sandbox.sample_app import Recorder
from tests.waiting import wait_until

MAX_DEQUEUE_COUNT = 3


def make_queue_app() -> tuple[func.FunctionApp, Recorder]:
    """An app with one queue-triggered function that fails for the body "fail"."""
    app, recorder = func.FunctionApp(), Recorder()

    @app.queue_trigger(arg_name="message", queue_name="%SAMPLE_QUEUE%", connection="SampleStorage")
    def sample_queue(message: func.QueueMessage) -> None:
        body = message.get_body().decode()
        recorder.note("sample_queue", body=body, dequeue_count=message.dequeue_count, id=message.id)
        if body == "fail":
            raise RuntimeError("this message always fails")

    return app, recorder


def connection_string(queue_endpoint: str) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
            f"QueueEndpoint={queue_endpoint};")


@pytest.fixture(scope="module")
def queue_name() -> str:
    return f"sample-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def queue_host(azurite_settings, queue_name: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HostHandle, Recorder]]:
    app_root = tmp_path_factory.mktemp("queue-app")
    (app_root / "host.json").write_text(json.dumps({"version": "2.0", "extensions": {"queues": {
        "batchSize": 4, "maxDequeueCount": MAX_DEQUEUE_COUNT, "visibilityTimeout": "00:00:00",
        "maxPollingInterval": "00:00:00.500"}}}))
    function_app, recorder = make_queue_app()
    settings = {"SAMPLE_QUEUE": queue_name, "SampleStorage": connection_string(azurite_settings.sms_queue_endpoint)}
    handle = start_host(function_app, free_port(), settings, app_root=Path(app_root))
    yield handle, recorder
    handle.stop()


def queue_client(azurite_settings, name: str, encoded: bool = True) -> QueueClient:
    credential = AzureNamedKeyCredential("devstoreaccount1", AZURITE_KEY)
    return QueueClient(azurite_settings.sms_queue_endpoint, name, credential=credential,
                       message_encode_policy=TextBase64EncodePolicy() if encoded else None)


def messages_left(client: QueueClient) -> int:
    """Messages in the queue, invisible ones included (0: every message was deleted)."""
    return client.get_queue_properties().approximate_message_count


def test_a_message_runs_the_function_once_with_its_decoded_body_and_is_deleted(queue_host, azurite_settings,
                                                                               queue_name):
    _host, seen = queue_host
    queue = queue_client(azurite_settings, queue_name)
    wait_until(lambda: _exists(queue))
    sent = queue.send_message('{"hello": "queue"}')
    [run] = [call for call in seen.wait_for("sample_queue") if call["id"] == sent.id]
    assert run["body"] == '{"hello": "queue"}' and run["dequeue_count"] == 1
    assert wait_until(lambda: messages_left(queue) == 0)
    assert [call["id"] for call in seen.seen("sample_queue")].count(sent.id) == 1


def test_a_failing_message_is_retried_then_moved_to_the_poison_queue(queue_host, azurite_settings, queue_name):
    _host, seen = queue_host
    queue, poison = queue_client(azurite_settings, queue_name), queue_client(azurite_settings, f"{queue_name}-poison")
    wait_until(lambda: _exists(queue) and _exists(poison))
    sent = queue.send_message("fail")
    wait_until(lambda: messages_left(poison) == 1)
    attempts = [call["dequeue_count"] for call in seen.seen("sample_queue") if call["id"] == sent.id]
    assert attempts == list(range(1, MAX_DEQUEUE_COUNT + 1))
    [moved] = poison.receive_messages(max_messages=1)
    assert base64.b64decode(moved.content) == b"fail"  # moved as it was: still base64, as the host moves it
    poison.delete_message(moved)
    assert messages_left(queue) == 0


def test_a_message_that_is_not_base64_goes_to_the_poison_queue_without_running(queue_host, azurite_settings,
                                                                              queue_name):
    _host, seen = queue_host
    raw = queue_client(azurite_settings, queue_name, encoded=False)
    poison = queue_client(azurite_settings, f"{queue_name}-poison", encoded=False)
    wait_until(lambda: _exists(raw) and _exists(poison))
    sent = raw.send_message("not base64 at all!")
    assert wait_until(lambda: messages_left(poison) == 1)
    assert all(call["id"] != sent.id for call in seen.seen("sample_queue"))
    [moved] = poison.receive_messages(max_messages=1)
    assert moved.content == "not base64 at all!"
    poison.delete_message(moved)


def test_a_queue_trigger_without_its_connection_is_in_error_and_the_rest_loads(monkeypatch):
    monkeypatch.delenv("SampleStorage", raising=False)  # the module's host put it in the environment
    function_app, _ = make_queue_app()
    host = FunctionsHost(function_app, {"SAMPLE_QUEUE": "orphan"})
    assert "SampleStorage" in host.errors["sample_queue"]
    assert host.function("sample_queue") is None
    [listed] = host.describe_functions()
    assert listed["isDisabled"] is True


def _exists(client: QueueClient) -> bool:
    """Whether the host has created the queue (it does so when it starts listening)."""
    try:
        client.get_queue_properties()
    except Exception:
        return False
    return True
