"""Queue triggers on Azure Storage queues (Azurite locally), as the host's queue listener runs them.

What the real host does, and this one too: poll the queue (backing off to `maxPollingInterval` while it is empty),
take up to `batchSize` messages at once, fetch more when no more than `newBatchThreshold` are still running, keep a
message invisible while its function runs, delete it when the function succeeds, make it visible again after
`visibilityTimeout` when it fails, and after `maxDequeueCount` failed attempts move it to `<queue>-poison`.
Message bodies are base64 unless host.json says `"messageEncoding": "none"`. Settings: `extensions.queues` in
host.json; the connection is the app setting the binding names (a connection string, or `<name>__queueServiceUri`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError
from azure.functions import meta
from azure.functions.queue import QueueMessageInConverter
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from sandbox.config import AZURITE_KEY
from sandbox.functions_host.functions import FunctionEntry, FunctionFailedError
from sandbox.functions_host.loading import logger, resolve_setting_refs

MIN_POLLING_INTERVAL = 0.1  # the real host starts at 100 ms and doubles up to maxPollingInterval while empty
INVISIBLE_WHILE_RUNNING = 600  # seconds; the real host keeps a running message invisible (10 minutes, renewed)
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")


def timespan_seconds(value: str) -> float:
    """A host.json timespan ("00:00:30", "1.00:00:00") in seconds."""
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"'{value}' is not a timespan (hh:mm:ss)")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, with the host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    base64: bool = True

    @classmethod
    def from_host_json(cls, app_root: Path) -> QueueOptions:
        host_json = app_root / "host.json"
        document = json.loads(host_json.read_text(encoding="utf-8")) if host_json.is_file() else {}
        queues = document.get("extensions", {}).get("queues", {})
        batch_size = int(queues.get("batchSize", 16))
        return cls(
            batch_size=batch_size,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            visibility_timeout=timespan_seconds(queues.get("visibilityTimeout", "00:00:00")),
            max_polling_interval=timespan_seconds(queues.get("maxPollingInterval", "00:01:00")),
            base64=str(queues.get("messageEncoding", "base64")).lower() != "none",
        )


def queue_service(connection: str, settings_env: Mapping[str, str]) -> QueueServiceClient:
    """The storage account a binding's `connection` names: a connection string, or `<connection>__queueServiceUri`."""
    def setting(name: str) -> str | None:
        return next((value for key, value in settings_env.items() if key.lower() == name.lower() and value), None)

    connection_string = setting(connection)
    if connection_string:
        return QueueServiceClient.from_connection_string(connection_string)
    uri = setting(f"{connection}__queueServiceUri")
    if uri and (urlsplit(uri).hostname or "") in ("127.0.0.1", "localhost"):
        account = urlsplit(uri).path.strip("/").split("/")[0]
        return QueueServiceClient(uri, credential=AzureNamedKeyCredential(account, AZURITE_KEY))
    if uri:
        from azure.identity import DefaultAzureCredential

        return QueueServiceClient(uri, credential=DefaultAzureCredential())
    raise ValueError(f"Storage account connection string '{connection}' does not exist. Make sure that it is a "
                     "defined App Setting.")


@dataclass
class QueueTrigger:
    """A queue-triggered function: its queue (name resolved from %settings%) and where failures go."""

    entry: FunctionEntry
    queue: QueueClient
    poison: QueueClient
    options: QueueOptions

    @classmethod
    def for_entry(cls, entry: FunctionEntry, settings_env: Mapping[str, str], app_root: Path) -> QueueTrigger:
        name = resolve_setting_refs(entry.binding["queueName"], settings_env).lower()
        service = queue_service(entry.binding.get("connection") or "AzureWebJobsStorage", settings_env)
        # Bodies are read raw: this listener decodes them as the host does (and poisons what does not decode).
        queue = service.get_queue_client(name, message_decode_policy=None, message_encode_policy=None)
        poison = service.get_queue_client(f"{name}-poison", message_decode_policy=None, message_encode_policy=None)
        return cls(entry, queue, poison, QueueOptions.from_host_json(app_root))

    @property
    def queue_name(self) -> str:
        return self.queue.queue_name


def trigger_value(message: QueueMessage, base64_encoded: bool) -> Any:
    """The azure.functions.QueueMessage the worker builds; ValueError when the body is not valid base64."""
    content = message.content or ""
    if base64_encoded:
        try:
            body: bytes = base64.b64decode(content, validate=True)
        except binascii.Error:
            raise ValueError("the message is not valid base64") from None
    else:
        body = content.encode("utf-8")

    def moment(value: datetime | None) -> meta.Datum | None:
        return meta.Datum(value.isoformat(), "string") if value else None

    metadata = {"Id": meta.Datum(message.id, "string"), "DequeueCount": meta.Datum(message.dequeue_count, "int"),
                "PopReceipt": meta.Datum(message.pop_receipt, "string"),
                "InsertionTime": moment(message.inserted_on), "ExpirationTime": moment(message.expires_on),
                "NextVisibleTime": moment(message.next_visible_on)}
    return QueueMessageInConverter.decode(meta.Datum(body, "bytes"),
                                          trigger_metadata={k: v for k, v in metadata.items() if v is not None})


class QueueListener:
    """Polls one queue and runs its function per message (a task on the worker loop, like the timer scheduler)."""

    def __init__(self, trigger: QueueTrigger, execute: Any) -> None:
        self.trigger, self.execute = trigger, execute  # execute(entry, value): the host's invocation

    async def run(self) -> None:
        options, loop = self.trigger.options, asyncio.get_running_loop()
        running: set[asyncio.Task[None]] = set()
        delay = MIN_POLLING_INTERVAL
        try:
            await loop.run_in_executor(None, self._create_queues)
        except Exception as error:  # not reachable yet: polling below keeps trying
            logger.warning("Queue '%s' could not be created: %s", self.trigger.queue_name, type(error).__name__)
        while True:
            if len(running) > options.new_batch_threshold:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await loop.run_in_executor(None, self._receive)
            except Exception as error:  # storage unreachable: the real host logs and keeps polling
                logger.warning("Queue '%s' could not be read: %s", self.trigger.queue_name, type(error).__name__)
                messages = []
            if not messages:
                await asyncio.sleep(delay)
                delay = min(delay * 2, options.max_polling_interval)
                continue
            delay = MIN_POLLING_INTERVAL
            for message in messages:
                task = asyncio.create_task(self._process(message))
                running.add(task)
                task.add_done_callback(running.discard)

    def _create_queues(self) -> None:
        """The queue and its poison queue, as the host creates them at start (when it may)."""
        for client in (self.trigger.queue, self.trigger.poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()

    def _receive(self) -> list[QueueMessage]:
        size = self.trigger.options.batch_size
        return list(self.trigger.queue.receive_messages(messages_per_page=size, max_messages=size,
                                                        visibility_timeout=INVISIBLE_WHILE_RUNNING))

    async def _process(self, message: QueueMessage) -> None:
        entry, loop = self.trigger.entry, asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            await self.execute(entry, trigger_value(message, self.trigger.options.base64))
        except (FunctionFailedError, ValueError) as failure:
            if isinstance(failure, ValueError):
                logger.error("Executed 'Functions.%s' (Failed, Id=%s): %s", entry.name, message.id, failure)
            await loop.run_in_executor(None, self._failed, message)
            return
        logger.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", entry.name, message.id,
                    (time.perf_counter() - started) * 1000)
        await loop.run_in_executor(None, self.trigger.queue.delete_message, message)

    def _failed(self, message: QueueMessage) -> None:
        """Visible again after visibilityTimeout, or moved to the poison queue after maxDequeueCount attempts."""
        trigger = self.trigger
        if message.dequeue_count >= trigger.options.max_dequeue_count:
            logger.warning("Message %s has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
                           message.id, trigger.options.max_dequeue_count, trigger.poison.queue_name)
            trigger.poison.send_message(message.content)
            trigger.queue.delete_message(message)
            return
        trigger.queue.update_message(message, visibility_timeout=int(trigger.options.visibility_timeout))
