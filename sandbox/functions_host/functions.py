"""A function of the app as the host sees it, one run of it, and the trigger objects it is given."""

from __future__ import annotations

import inspect
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from sandbox.functions_host.loading import SUPPORTED_TRIGGERS, logger


@dataclass(frozen=True)
class FunctionEntry:
    """One registered function: its trigger binding (from the decorator metadata) and the user's callable."""

    name: str
    trigger: str
    binding: Mapping[str, Any]
    user_function: Callable[..., Any]

    @property
    def arg_name(self) -> str:
        return self.binding["name"]

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    @property
    def wants_context(self) -> bool:
        return "context" in inspect.signature(self.user_function).parameters

    @property
    def methods(self) -> list[str] | None:
        """Allowed HTTP methods, None for any."""
        methods = self.binding.get("methods")
        return [method.upper() for method in methods] if methods else None

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


def entry_for(registered: Any) -> FunctionEntry:
    """Read one function's trigger from its function.json; reject bindings this host cannot provide."""
    name = registered.get_function_name()
    bindings = json.loads(registered.get_function_json())["bindings"]
    triggers = [binding for binding in bindings if binding["type"].endswith("Trigger")]
    others = [binding for binding in bindings if binding not in triggers and binding["type"] != "http"]
    if len(triggers) != 1 or triggers[0]["type"] not in SUPPORTED_TRIGGERS:
        raise ValueError(f"trigger {[b['type'] for b in triggers]} is not supported by the sandbox host")
    if others:
        raise ValueError(f"binding types {[b['type'] for b in others]} are not supported by the sandbox host")
    return FunctionEntry(name, triggers[0]["type"], triggers[0], registered.get_user_function())


@dataclass(frozen=True)
class Invocation:
    """One run of a function as the host's log records it (no inputs, no outputs)."""

    function: str
    trigger: str
    started_at: datetime
    duration_ms: float
    succeeded: bool
    reference: str | None = None


class FunctionFailedError(Exception):
    """A user function raised; the traceback is logged under `reference`."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"the function failed (reference {reference})")
        self.reference = reference


def log_failure(function_name: str, error: BaseException) -> str:
    """Log a function's failure with its traceback (server side only) and return the reference id."""
    reference = uuid.uuid4().hex
    logger.error("Executed 'Functions.%s' (Failed, reference %s)", function_name, reference, exc_info=error)
    return reference


class InvocationContext(func.Context):
    """The `context` argument a function may declare."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local = threading.local()
        self._thread_local.invocation_id = self._invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def event_grid_event(event: Any) -> Any:
    """An EventGridEvent (or CloudEvent) the worker builds from one event of the posted array."""
    if isinstance(event, str):
        event = json.loads(event)
    if not isinstance(event, dict):
        raise ValueError("an Event Grid event must be a JSON object")
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})
