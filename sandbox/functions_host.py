"""A local stand-in for the Azure Functions host: serves a FunctionApp's HTTP routes, timers and Event Grid triggers.

Core Tools cannot be installed here, so this host reads the same decorator metadata the real host reads
(`get_functions()` → `get_function_json()`), builds the real `azure.functions` trigger objects with the library's own
converters, runs every invocation on one worker event loop plus a thread pool (like the Python worker process), and
answers on the routes `func start` answers on: `/api/...`, `/admin/functions[/{name}]`, `/runtime/webhooks/eventgrid`.

    python -m sandbox.functions_host --app function_app:app --port 7071 --settings local.settings.json
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import inspect
import json
import logging
import math
import os
import re
import signal
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path
from typing import Any

import azure.functions as func
import uvicorn
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.http import HttpResponseConverter
from azure.functions.timer import TimerRequestConverter
from croniter import croniter
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.config import STATE_DIR
from sandbox.servers import RunningServer, serve

logger = logging.getLogger("sandbox.functions_host")  # the same name when run with -m

DEFAULT_ROUTE_PREFIX = "api"
MAX_BODY_BYTES = 4 * 1024 * 1024
HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, TIMER_TRIGGER, EVENT_GRID_TRIGGER)
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
# .NET's default(DateTime): what the host reports as "Last" before a timer's first run.
NEVER = datetime(1, 1, 1, tzinfo=UTC)

_APP_ROOTS: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()
_FUNCTIONS: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
_FUNCTIONS_GUARD = threading.Lock()


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- loading the app -------------------------------------------------------------------------------------------


def load_app(spec: str = "function_app:app") -> func.FunctionApp:
    """Import `module:attribute` and return the FunctionApp it names."""
    module_name, _, attribute = spec.partition(":")
    module = import_module(module_name)
    function_app = getattr(module, attribute or "app")
    if getattr(module, "__file__", None):
        _APP_ROOTS[function_app] = Path(module.__file__).resolve().parent
    return function_app


def registered_functions(function_app: Any) -> list[Any]:
    """The app's functions; `get_functions()` raises on a second call for the same app, so the answer is kept."""
    with _FUNCTIONS_GUARD:
        if function_app not in _FUNCTIONS:
            _FUNCTIONS[function_app] = list(function_app.get_functions())
        return _FUNCTIONS[function_app]


def read_route_prefix(app_root: Path) -> str:
    """`extensions.http.routePrefix` from host.json in the app root, else "api"."""
    host_json = app_root / "host.json"
    if not host_json.is_file():
        return DEFAULT_ROUTE_PREFIX
    prefix = json.loads(host_json.read_text(encoding="utf-8")).get("extensions", {}).get("http", {}).get("routePrefix")
    return DEFAULT_ROUTE_PREFIX if prefix is None else str(prefix).strip("/")


def read_local_settings(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json-shaped file, as strings."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if document.get("IsEncrypted"):
        raise ValueError(f"{path} is encrypted; the sandbox host reads plain Values only")
    return {name: str(value) for name, value in (document.get("Values") or {}).items()}


def apply_settings(values: Mapping[str, str], *, override: bool = True) -> dict[str, str | None]:
    """Put app settings into os.environ; returns the values they replaced (for restore_settings)."""
    previous: dict[str, str | None] = {}
    for name, value in values.items():
        if not override and name in os.environ:
            # Core Tools' rule: a variable already in the environment wins over local.settings.json.
            logger.info("Skipping '%s' from local settings as it is already defined in the environment", name)
            continue
        previous[name] = os.environ.get(name)
        os.environ[name] = value
    return previous


def restore_settings(previous: Mapping[str, str | None]) -> None:
    """Undo apply_settings."""
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


def resolve_setting_refs(value: str, settings_env: Mapping[str, str] | None = None) -> str:
    """Replace each `%NAME%` with app setting NAME (settings_env first, then os.environ), as the host does."""

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        resolved = (settings_env or {}).get(name, os.environ.get(name))
        if resolved is None:
            raise ValueError(f"'%{name}%' does not resolve to a value.")
        return resolved

    return _SETTING_REFERENCE.sub(setting, value)


# --- route templates (ASP.NET Core syntax, as the Functions host uses) --------------------------------------------


def _fits_integer(value: str, bits: int) -> bool:
    return re.fullmatch(r"-?\d+", value) is not None and -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _length_within(value: str, argument: str) -> bool:
    bounds = [int(part) for part in argument.split(",")]
    low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else bounds
    return low <= len(value) <= high


def _int_within(value: str, low: float, high: float) -> bool:
    return _fits_integer(value, 64) and low <= int(value) <= high


_CONSTRAINTS: dict[str, Callable[[str, str], bool]] = {
    "int": lambda value, _: _fits_integer(value, 32),
    "long": lambda value, _: _fits_integer(value, 64),
    "bool": lambda value, _: value.lower() in ("true", "false"),
    "alpha": lambda value, _: re.fullmatch(r"[A-Za-z]+", value) is not None,
    "guid": lambda value, _: _is_guid(value),
    "decimal": lambda value, _: _is_number(value),
    "double": lambda value, _: _is_number(value),
    "float": lambda value, _: _is_number(value),
    "datetime": lambda value, _: _is_datetime(value),
    "required": lambda value, _: bool(value),
    "minlength": lambda value, arg: len(value) >= int(arg),
    "maxlength": lambda value, arg: len(value) <= int(arg),
    "length": _length_within,
    "min": lambda value, arg: _int_within(value, int(arg), math.inf),
    "max": lambda value, arg: _int_within(value, -math.inf, int(arg)),
    "range": lambda value, arg: _int_within(value, *(int(part) for part in arg.split(","))),
    "regex": lambda value, arg: re.search(arg, value, re.IGNORECASE) is not None,
}
_CONSTRAINT_CALL = re.compile(r"(\w+)(?:\((.*)\))?", re.DOTALL)


@dataclass(frozen=True)
class RouteParameter:
    """One `{name:constraint?}` of a route template."""

    name: str
    constraints: tuple[tuple[str, str], ...] = ()
    optional: bool = False
    catch_all: bool = False
    default: str | None = None

    @classmethod
    def parse(cls, text: str) -> RouteParameter:
        """Parse the text between the braces: `*rest`, `name?`, `id:int`, `id:int:min(1)`, `name=default`."""
        catch_all = text.startswith("*")
        text = text.lstrip("*")
        optional = text.endswith("?")
        text = text.rstrip("?")
        text, has_default, default = text.partition("=")
        name, *constraint_texts = text.split(":")
        constraints = tuple(_parse_constraint(constraint) for constraint in constraint_texts)
        return cls(name, constraints, optional, catch_all, default if has_default else None)

    def accepts(self, value: str) -> bool:
        """Whether every constraint holds for the value."""
        return all(_CONSTRAINTS[name](value, argument) for name, argument in self.constraints)


def _parse_constraint(text: str) -> tuple[str, str]:
    call = _CONSTRAINT_CALL.fullmatch(text)
    if call is None or call.group(1).lower() not in _CONSTRAINTS:
        raise ValueError(f"unknown route constraint '{text}'")
    return call.group(1).lower(), call.group(2) or ""


_PARAMETER = re.compile(r"\{([^{}]+)\}")
_LITERAL, _COMPLEX, _CONSTRAINED, _PLAIN, _CATCH_ALL = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template: literals match case-insensitively, parameters capture path segments."""

    template: str
    pattern: re.Pattern[str]
    parameters: Mapping[str, RouteParameter]
    precedence: tuple[int, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        """Compile a template such as `api/items/{id:int}/{*rest}`."""
        template = template.strip("/")
        parameters: dict[str, RouteParameter] = {}
        pieces, precedence = [], []
        for segment in filter(None, template.split("/")):
            piece, rank = _segment_pattern(segment, parameters)
            pieces.append(piece)
            precedence.append(rank)
        pattern = re.compile("^" + "".join(pieces) + "/?$", re.IGNORECASE | re.DOTALL)
        return cls(template, pattern, parameters, tuple(precedence))

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a decoded request path, or None when the path (or a constraint) does not match."""
        found = self.pattern.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for group, parameter in self.parameters.items():
            value = found.group(group)
            if not value:
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not parameter.accepts(value):
                return None
            values[parameter.name] = value
        return values


def _segment_pattern(segment: str, parameters: dict[str, RouteParameter]) -> tuple[str, int]:
    whole = _PARAMETER.fullmatch(segment)
    if whole is not None:
        parameter = RouteParameter.parse(whole.group(1))
        group = _add_parameter(parameters, parameter)
        rank = _CONSTRAINED if parameter.constraints else _PLAIN
        if parameter.catch_all:
            return rf"(?:/(?P<{group}>.*))?", _CATCH_ALL
        if parameter.optional or parameter.default is not None:
            return rf"(?:/(?P<{group}>[^/]+))?", rank
        return rf"/(?P<{group}>[^/]+)", rank
    if "{" not in segment:
        return "/" + re.escape(segment), _LITERAL
    pieces, end = [], 0
    for match in _PARAMETER.finditer(segment):
        group = _add_parameter(parameters, RouteParameter.parse(match.group(1)))
        pieces += [re.escape(segment[end : match.start()]), rf"(?P<{group}>[^/]+)"]
        end = match.end()
    return "/" + "".join([*pieces, re.escape(segment[end:])]), _COMPLEX


def _add_parameter(parameters: dict[str, RouteParameter], parameter: RouteParameter) -> str:
    group = f"p{len(parameters)}"
    parameters[group] = parameter
    return group


# --- functions and timers ----------------------------------------------------------------------------------------


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
class CronSchedule:
    """An NCRONTAB expression: 6 fields with seconds first (5-field cron accepted), evaluated in UTC."""

    expression: str

    def __post_init__(self) -> None:
        fields = len(self.expression.split())
        if fields not in (5, 6) or not croniter.is_valid(self.expression, second_at_beginning=fields == 6):
            raise ValueError(f"'{self.expression}' is not a valid NCRONTAB schedule")

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment`."""
        seconds_first = len(self.expression.split()) == 6
        return croniter(self.expression, moment, second_at_beginning=seconds_first).get_next(datetime)

    def is_frequent(self) -> bool:
        """Whether occurrences are less than a minute apart (then useMonitor defaults to off)."""
        first = self.next_after(_utc_now())
        return self.next_after(first) - first < timedelta(minutes=1)


@dataclass(frozen=True)
class ScheduleStatus:
    """What the host records per timer: last run, next occurrence, when the record changed."""

    last_run: datetime
    next_run: datetime
    last_updated: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "Last": self.last_run.isoformat(),
            "Next": self.next_run.isoformat(),
            "LastUpdated": self.last_updated.isoformat(),
        }

    @classmethod
    def from_json(cls, document: Mapping[str, str]) -> ScheduleStatus:
        return cls(*(datetime.fromisoformat(document[key]) for key in ("Last", "Next", "LastUpdated")))


class TimerStatusStore:
    """Schedule status per timer function: one JSON file each in a directory (in memory without one)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, ScheduleStatus] = {}

    def _path(self, function_name: str) -> Path:
        assert self.directory is not None
        return self.directory / (re.sub(r"[^A-Za-z0-9_.-]", "_", function_name).lower() + ".json")

    def load(self, function_name: str) -> ScheduleStatus | None:
        """The recorded status, or None before the first record."""
        if self.directory is None:
            return self._memory.get(function_name)
        path = self._path(function_name)
        return ScheduleStatus.from_json(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None

    def save(self, function_name: str, status: ScheduleStatus) -> None:
        """Record the status (atomically, so a crash never leaves half a file)."""
        if self.directory is None:
            self._memory[function_name] = status
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(function_name)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(status.to_json()), encoding="utf-8")
        temporary.replace(path)


@dataclass
class TimerState:
    """A timer function's schedule and where it stands."""

    entry: FunctionEntry
    schedule: CronSchedule
    use_monitor: bool
    run_on_startup: bool
    status: ScheduleStatus
    next_due: datetime


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


def timer_request(status: ScheduleStatus, past_due: bool) -> func.TimerRequest:
    """The TimerRequest the worker builds from the host's JSON payload."""
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status.to_json(), "IsPastDue": past_due}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata={})


def event_grid_event(event: Any) -> Any:
    """An EventGridEvent (or CloudEvent) the worker builds from one event of the posted array."""
    if isinstance(event, str):
        event = json.loads(event)
    if not isinstance(event, dict):
        raise ValueError("an Event Grid event must be a JSON object")
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(event), "json"), trigger_metadata={})


# --- the worker: one event loop and a thread pool, like the Python worker process --------------------------------


class _WorkerLoop:
    """An event loop in its own thread; async functions run on it, sync ones in its default thread pool."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._guard:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._pool = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="functions-worker")
                self._loop.set_default_executor(self._pool)
                self._thread = threading.Thread(target=self._loop.run_forever, name="functions-worker", daemon=True)
                self._thread.start()
            return self._loop

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.ensure_started())

    def stop(self, timeout: float) -> bool:
        """Let running invocations finish (cancel them after `timeout`); True when none was left behind."""
        with self._guard:
            loop, thread, pool = self._loop, self._thread, self._pool
            self._loop = self._thread = self._pool = None
        if loop is None or thread is None or pool is None:
            return True
        clean = asyncio.run_coroutine_threadsafe(_drain(timeout), loop).result(timeout + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        pool.shutdown(wait=clean, cancel_futures=True)
        if not thread.is_alive():
            loop.close()
        return clean


async def _drain(timeout: float) -> bool:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    if not others:
        return True
    _, pending = await asyncio.wait(others, timeout=timeout)
    for task in pending:
        task.cancel()
    return not pending


async def _cancel_and_wait(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# --- the host ----------------------------------------------------------------------------------------------------


class FunctionsHost:
    """The host's state: the app's functions by trigger, timer schedules and statuses, recent invocations."""

    def __init__(
        self,
        function_app: Any,
        settings_env: Mapping[str, str] | None = None,
        *,
        state_dir: Path | str | None = None,
        app_root: Path | None = None,
        route_prefix: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        past_due_tolerance: float = 1.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings_env = dict(settings_env or {})
        self.app_root = app_root or _APP_ROOTS.get(function_app) or Path.cwd()
        self.route_prefix = read_route_prefix(self.app_root) if route_prefix is None else route_prefix.strip("/")
        self.max_body_bytes = max_body_bytes
        self.past_due_tolerance = timedelta(seconds=past_due_tolerance)
        self.clock = clock  # the scheduler re-reads it at least twice a second
        self.functions: dict[str, FunctionEntry] = {}  # by lower-case name: function names are case-insensitive
        self.errors: dict[str, str] = {}  # functions the host could not load, as the real host lists them
        self.http_routes: dict[str, RouteTemplate] = {}
        self.timers: dict[str, TimerState] = {}
        self.status_store = TimerStatusStore(Path(state_dir) if state_dir is not None else None)
        self._invocations: deque[Invocation] = deque(maxlen=1000)
        self._guard = threading.Lock()
        self._worker = _WorkerLoop()
        self._scheduler: asyncio.Task[None] | None = None
        self._timer_locks: dict[str, asyncio.Lock] = {}  # only touched on the worker loop
        self._tasks: set[asyncio.Task[Any]] = set()
        for registered in registered_functions(function_app):
            self._load(registered)
        self._routes_by_precedence = sorted(self.http_routes.items(), key=lambda item: item[1].precedence)

    def _load(self, registered: Any) -> None:
        name = registered.get_function_name()
        try:
            entry = entry_for(registered)
            if entry.trigger == HTTP_TRIGGER:
                self.http_routes[name.lower()] = RouteTemplate.parse(self._full_route(entry))
            elif entry.trigger == TIMER_TRIGGER:
                self.timers[name.lower()] = self._timer_for(entry)
        except ValueError as error:
            self.errors[name] = str(error)
            logger.error("The '%s' function is in error: %s", name, error)
            return
        self.functions[name.lower()] = entry

    def _full_route(self, entry: FunctionEntry) -> str:
        route = (entry.binding.get("route") or entry.name).strip("/")
        return f"{self.route_prefix}/{route}" if self.route_prefix else route

    def _timer_for(self, entry: FunctionEntry) -> TimerState:
        schedule = CronSchedule(resolve_setting_refs(entry.binding["schedule"], self.settings_env))
        use_monitor = entry.binding.get("useMonitor")
        now = self.clock()
        first = schedule.next_after(now)
        return TimerState(
            entry=entry,
            schedule=schedule,
            use_monitor=(not schedule.is_frequent()) if use_monitor is None else bool(use_monitor),
            run_on_startup=bool(entry.binding.get("runOnStartup", False)),
            status=ScheduleStatus(NEVER, first, now),
            next_due=first,
        )

    # inspection

    def function(self, name: str) -> FunctionEntry | None:
        """The loaded function of that name (any case), or None."""
        return self.functions.get(name.lower())

    def invocations(self, name: str | None = None) -> list[Invocation]:
        """Recent invocations, oldest first, of one function or all."""
        with self._guard:
            return [run for run in self._invocations if name is None or run.function.lower() == name.lower()]

    def match_http(self, path: str) -> list[tuple[FunctionEntry, RouteTemplate, dict[str, str]]]:
        """HTTP functions whose route matches a decoded path, best match first (ASP.NET route precedence)."""
        matches = []
        for name, route in self._routes_by_precedence:
            values = route.match(path)
            if values is not None:
                matches.append((self.functions[name], route, values))
        return matches

    def describe_functions(self, base_url: str = "") -> list[dict[str, Any]]:
        """What GET /admin/functions answers: each function with its trigger, route or schedule."""
        described = [self._describe(entry, base_url) for entry in self.functions.values()]
        described += [{"name": name, "isDisabled": True, "error": error} for name, error in self.errors.items()]
        return sorted(described, key=lambda info: info["name"].lower())

    def _describe(self, entry: FunctionEntry, base_url: str) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": entry.name,
            "language": "python",
            "trigger": entry.trigger,
            "isDisabled": False,
            "config": {"bindings": [dict(entry.binding)]},
        }
        if entry.trigger == HTTP_TRIGGER:
            route = self.http_routes[entry.name.lower()]
            info |= {"route": route.template, "methods": entry.methods, "authLevel": entry.binding.get("authLevel")}
            info["invoke_url_template"] = f"{base_url}/{route.template}"
        elif entry.trigger == TIMER_TRIGGER:
            info |= self._describe_timer(self.timers[entry.name.lower()])
        else:
            info["invoke_url_template"] = f"{base_url}/runtime/webhooks/eventgrid?functionName={entry.name}"
        return info

    def _describe_timer(self, timer: TimerState) -> dict[str, Any]:
        next_occurrence = timer.next_due if self._scheduler else timer.schedule.next_after(self.clock())
        return {
            "schedule": timer.schedule.expression,
            "useMonitor": timer.use_monitor,
            "runOnStartup": timer.run_on_startup,
            "nextOccurrence": next_occurrence.isoformat(),
            "scheduleStatus": timer.status.to_json(),
        }

    # invoking

    async def invoke_async(self, entry: FunctionEntry, trigger_value: Any) -> Any:
        """Run one invocation on the worker loop and await it from another loop (the web server's)."""
        future = self._worker.submit(self._execute(entry, trigger_value))
        # A client that goes away does not cancel the function, as on the real host.
        return await asyncio.shield(asyncio.wrap_future(future))

    async def deliver_events(self, entry: FunctionEntry, events: list[Any]) -> None:
        """Run an Event Grid function once per event, all at once; FunctionFailedError if any run failed."""
        future = self._worker.submit(self._deliver(entry, events))
        await asyncio.shield(asyncio.wrap_future(future))

    def start_invocation(self, entry: FunctionEntry, input_value: Any = None) -> None:
        """What POST /admin/functions/{name} does: start the function now and return (timers: past_due False)."""
        future = self._worker.submit(self._admin_run(entry, input_value))
        future.add_done_callback(_log_unexpected)

    def run_function(self, name: str, input: Any = None, timeout: float = 30.0) -> Any:
        """Run a function now and wait for its result (for tests); raises FunctionFailedError when it raised.

        `input` is ignored for timers (they run with past_due False), is one event (dict or JSON) for Event Grid
        functions, and must be an azure.functions.HttpRequest for HTTP functions.
        """
        entry = self.function(name)
        if entry is None:
            raise LookupError(f"no function named '{name}'")
        if entry.trigger == HTTP_TRIGGER and not isinstance(input, func.HttpRequest):
            raise ValueError("an HTTP function needs an azure.functions.HttpRequest as input")
        return self._worker.submit(self._admin_run(entry, input)).result(timeout)

    async def _admin_run(self, entry: FunctionEntry, input_value: Any) -> Any:
        if entry.trigger == TIMER_TRIGGER:
            return await self._run_timer_now(self.timers[entry.name.lower()])
        if entry.trigger == EVENT_GRID_TRIGGER:
            return await self._execute(entry, event_grid_event(input_value))
        return await self._execute(entry, input_value)

    async def _deliver(self, entry: FunctionEntry, events: list[Any]) -> None:
        outcomes = await asyncio.gather(*(self._execute(entry, event) for event in events), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _execute(self, entry: FunctionEntry, trigger_value: Any) -> Any:
        kwargs = {entry.arg_name: trigger_value}
        if entry.wants_context:
            kwargs["context"] = InvocationContext(entry.name, str(self.app_root))
        started_at, started = self.clock(), time.perf_counter()
        try:
            if entry.is_async:
                result = await entry.user_function(**kwargs)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(None, functools.partial(entry.user_function, **kwargs))
        except Exception as error:
            reference = log_failure(entry.name, error)
            self._record(entry, started_at, started, reference)
            raise FunctionFailedError(reference) from error
        self._record(entry, started_at, started, None)
        return result

    def _record(self, entry: FunctionEntry, started_at: datetime, started: float, reference: str | None) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        run = Invocation(entry.name, entry.trigger, started_at, duration_ms, reference is None, reference)
        with self._guard:
            self._invocations.append(run)

    # timers

    def start_timers(self) -> None:
        """Start firing timers on their schedules (a missed occurrence or runOnStartup first)."""
        if self._scheduler is None:
            self._scheduler = self._worker.submit(self._create_scheduler()).result()

    def stop_timers(self) -> None:
        """Stop scheduling; runs already started finish."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            self._worker.submit(_cancel_and_wait(scheduler)).result()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop timers and the worker; True when every running invocation finished within the timeout."""
        self.stop_timers()
        clean = self._worker.stop(timeout)
        self._timer_locks.clear()
        self._tasks.clear()
        return clean

    async def _create_scheduler(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._schedule(), name="timer-scheduler")

    async def _schedule(self) -> None:
        try:
            for timer in self.timers.values():
                await self._start_timer(timer)
            while True:
                now = self.clock()
                for timer in self.timers.values():
                    if timer.next_due <= now:
                        await self._fire_scheduled(timer, now)
                await asyncio.sleep(self._seconds_to_next_due(self.clock()))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("The timer scheduler stopped")
            raise

    def _seconds_to_next_due(self, now: datetime) -> float:
        if not self.timers:
            return 0.5
        wait = (min(timer.next_due for timer in self.timers.values()) - now).total_seconds()
        return min(max(wait, 0.005), 0.5)

    async def _start_timer(self, timer: TimerState) -> None:
        now = self.clock()
        if self._check_past_due(timer, now):
            logger.info("Timer '%s' is past due on startup; running it now", timer.entry.name)
            await self._fire(timer, scheduled=timer.status.next_run, past_due=True, records_status=True)
        elif timer.run_on_startup:
            await self._fire(timer, scheduled=now, past_due=False, records_status=False)
        timer.next_due = timer.schedule.next_after(now)

    def _check_past_due(self, timer: TimerState, now: datetime) -> bool:
        """The host's schedule-monitor rule: past due when the recorded next occurrence has gone by."""
        name = timer.entry.name
        stored = self.status_store.load(name) if timer.use_monitor else None
        if stored is None:
            timer.status = ScheduleStatus(NEVER, timer.schedule.next_after(now), now)
            if timer.use_monitor:
                self.status_store.save(name, timer.status)
            return False
        basis = stored.last_run if stored.last_run != NEVER else stored.last_updated
        expected = timer.schedule.next_after(basis)
        if stored.next_run != expected:  # the schedule changed since the record was written
            stored = replace(stored, next_run=expected, last_updated=now)
            self.status_store.save(name, stored)
        timer.status = stored
        return now > stored.next_run

    async def _fire_scheduled(self, timer: TimerState, now: datetime) -> None:
        scheduled, timer.next_due = timer.next_due, timer.schedule.next_after(now)
        past_due = now - scheduled > self.past_due_tolerance
        await self._fire(timer, scheduled=scheduled, past_due=past_due, records_status=True)

    async def _fire(self, timer: TimerState, *, scheduled: datetime, past_due: bool, records_status: bool) -> None:
        lock = self._timer_lock(timer)
        if lock.locked():  # singleton: an occurrence that comes while the last run still runs is skipped
            logger.info("Timer '%s' skipped an occurrence: its previous run is still running", timer.entry.name)
            return
        await lock.acquire()
        run = self._run_timer_locked(timer, lock, scheduled=scheduled, past_due=past_due, records_status=records_status)
        task = asyncio.create_task(run)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and not isinstance(task.exception(), FunctionFailedError | None):
            logger.error("Timer run failed in the host", exc_info=task.exception())

    async def _run_timer_now(self, timer: TimerState) -> Any:
        lock = self._timer_lock(timer)
        await lock.acquire()  # waits for a running occurrence, as the host's singleton lock does
        return await self._run_timer_locked(timer, lock, scheduled=self.clock(), past_due=False, records_status=False)

    async def _run_timer_locked(
        self, timer: TimerState, lock: asyncio.Lock, *, scheduled: datetime, past_due: bool, records_status: bool
    ) -> Any:
        started = self.clock()
        try:
            return await self._execute(timer.entry, timer_request(timer.status, past_due))
        finally:
            if records_status:
                self._advance_status(timer, scheduled, started)
            lock.release()

    def _advance_status(self, timer: TimerState, scheduled: datetime, started: datetime) -> None:
        timer.status = ScheduleStatus(scheduled, timer.schedule.next_after(started), self.clock())
        if timer.use_monitor:
            self.status_store.save(timer.entry.name, timer.status)

    def _timer_lock(self, timer: TimerState) -> asyncio.Lock:
        return self._timer_locks.setdefault(timer.entry.name.lower(), asyncio.Lock())


def _log_unexpected(future: concurrent.futures.Future[Any]) -> None:
    error = None if future.cancelled() else future.exception()
    if error is not None and not isinstance(error, FunctionFailedError):
        logger.error("An admin invocation failed in the host", exc_info=error)


# --- HTTP: requests in, azure.functions objects through, responses out ----------------------------------------------


def _joined(values: Headers | QueryParams) -> dict[str, str]:
    """Multi-valued headers or query parameters as one comma-joined string each, as the host passes them."""
    return {key: ",".join(values.getlist(key)) for key in values}


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it exceeds the limit (the rest is read and dropped so the 413 arrives)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


def http_response_from(result: Any) -> Response:
    """Turn a function's return value into the response the host sends, through the library's own converter."""
    if result is None:
        return Response(status_code=204)
    datum = HttpResponseConverter.encode(result, expected_type=None)  # NotImplementedError for other types
    if datum.type == "string":
        return PlainTextResponse(datum.value)
    value = datum.value
    headers = {name: header.value for name, header in value["headers"].items()}
    response = Response(value["body"].value, status_code=int(value["status_code"].value), headers=headers)
    # The converter parses every Set-Cookie header into its own SimpleCookie; the host sends each one back.
    for cookie in value["cookies"] or []:
        if not cookie:
            logger.warning("A Set-Cookie header could not be parsed and was dropped (as on Azure)")
        for morsel in cookie.values():
            response.raw_headers.append((b"set-cookie", morsel.OutputString().encode("latin-1")))
    return response


def _error(status_code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status_code)


def _failure_response(reference: str) -> JSONResponse:
    return _error(500, "The function failed.", reference=reference)


def _log_label(request: Request, label: str) -> None:
    request.state.log_label = label


_HOME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Functions host (sandbox)</title>
</head><body><h1>Your Functions app is up and running</h1><p>Sandbox host. Functions: <a href="/admin/functions">
/admin/functions</a></p></body></html>"""


class _Endpoints:
    """The host's HTTP surface over one FunctionsHost."""

    def __init__(self, host: FunctionsHost) -> None:
        self.host = host

    async def list_functions(self, request: Request) -> Response:
        _log_label(request, request.url.path)
        return JSONResponse(self.host.describe_functions(str(request.base_url).rstrip("/")))

    async def invoke(self, request: Request) -> Response:
        _log_label(request, request.url.path)
        entry = self.host.function(request.path_params["name"])
        if entry is None:
            return _error(404, "No function of that name.")
        if entry.trigger == HTTP_TRIGGER:
            return _error(400, "HTTP functions are invoked through their route.")
        try:
            body = await request.body()
            input_value = json.loads(body).get("input") if body.strip() else None
            if entry.trigger == EVENT_GRID_TRIGGER:
                event_grid_event(input_value)  # reject a bad event here, not later in the background
        except (ValueError, AttributeError, TypeError):
            return _error(400, 'The body must be JSON: {"input": ...}.')
        self.host.start_invocation(entry, input_value)
        return Response(status_code=202)

    async def event_grid(self, request: Request) -> Response:
        _log_label(request, request.url.path)
        name = request.query_params.get("functionName", "")
        entry = self.host.function(name)
        if entry is None or entry.trigger != EVENT_GRID_TRIGGER:
            return PlainTextResponse(f"cannot find function: '{name}'", status_code=404)
        body = await _read_body(request, self.host.max_body_bytes)
        if body is None:
            return _error(413, "Request body too large.", limit=self.host.max_body_bytes)
        try:
            events = _event_list(json.loads(body))
            kind = _aeg_event_type(request.headers.get("aeg-event-type"), events)
            if kind == "subscriptionvalidation":
                return JSONResponse({"validationResponse": events[0]["data"]["validationCode"]})
            triggers = [event_grid_event(event) for event in events]
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return _error(400, "The body must be a JSON array of Event Grid events.")
        if kind == "unsubscribe":
            return Response(status_code=202)
        if kind != "notification":
            return Response(status_code=400)
        try:
            await self.host.deliver_events(entry, triggers)
        except FunctionFailedError as failed:
            return _failure_response(failed.reference)
        return Response(status_code=202)  # what the Event Grid extension answers for delivered events

    async def http(self, request: Request) -> Response:
        path, method = request.scope["path"], request.method
        matches = self.host.match_http(path)
        if not matches:
            if path == "/" and method == "GET":
                _log_label(request, "/")
                return HTMLResponse(_HOME_PAGE)
            _log_label(request, "(no matching route)")
            return _error(404, "Not Found")
        allowed = [match for match in matches if match[0].allows(method)]
        if not allowed:
            _log_label(request, "/" + matches[0][1].template)
            allow = sorted({allowed_method for entry, _, _ in matches for allowed_method in entry.methods or []})
            return JSONResponse({"error": "Method Not Allowed"}, status_code=405, headers={"Allow": ", ".join(allow)})
        entry, route, route_params = allowed[0]
        _log_label(request, "/" + route.template)
        return await self._call_http(request, entry, route_params)

    async def _call_http(self, request: Request, entry: FunctionEntry, route_params: dict[str, str]) -> Response:
        body = await _read_body(request, self.host.max_body_bytes)
        if body is None:
            return _error(413, "Request body too large.", limit=self.host.max_body_bytes)
        # authLevel is not enforced: like Core Tools running locally, the sandbox host asks for no function keys.
        http_request = func.HttpRequest(
            request.method,
            str(request.url),
            headers=_joined(request.headers),
            params=_joined(request.query_params),
            route_params=route_params,
            body=body,
        )
        try:
            result = await self.host.invoke_async(entry, http_request)
        except FunctionFailedError as failed:
            return _failure_response(failed.reference)
        try:
            return http_response_from(result)
        except Exception as error:
            return _failure_response(log_failure(entry.name, error))


def _event_list(document: Any) -> list[Any]:
    events = [document] if isinstance(document, dict) else document
    if not isinstance(events, list) or not events:
        raise ValueError("expected a non-empty JSON array")
    return events


def _aeg_event_type(header: str | None, events: list[Any]) -> str:
    """The delivery kind from the aeg-event-type header (Event Grid always sends it); guessed when a test omits it."""
    if header:
        return header.lower()
    validation = "Microsoft.EventGrid.SubscriptionValidationEvent"
    return "subscriptionvalidation" if events[0].get("eventType") == validation else "notification"


class _RequestLog:
    """One log line per request: method, route template (never the query string or route values), status, time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        started, status = time.perf_counter(), 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            label = state.get("log_label", "(unrouted)")
            logger.info("%s %s -> %d (%.0f ms)", scope["method"], label, status, elapsed_ms)


def build_app(function_app: Any, settings_env: Mapping[str, str] | None = None) -> Starlette:
    """The host's ASGI app for a FunctionApp (or a ready FunctionsHost); the host is at `app.state.functions_host`."""
    is_host = isinstance(function_app, FunctionsHost)
    host = function_app if is_host else FunctionsHost(function_app, settings_env)
    endpoints = _Endpoints(host)
    app = Starlette(
        routes=[
            Route("/admin/functions", endpoints.list_functions, methods=["GET"]),
            Route("/admin/functions/{name}", endpoints.invoke, methods=["POST"]),
            Route("/runtime/webhooks/eventgrid", endpoints.event_grid, methods=["POST"]),
            Route("/{path:path}", endpoints.http, methods=HTTP_METHODS),
        ],
        middleware=[Middleware(_RequestLog)],
    )
    app.state.functions_host = host
    return app


# --- running it ----------------------------------------------------------------------------------------------------


@dataclass
class HostHandle:
    """A host serving plain http in this process; stop() ends the server, the timers and the worker."""

    host: FunctionsHost
    server: RunningServer
    url: str
    replaced_settings: dict[str, str | None]

    def run_function(self, name: str, input: Any = None, timeout: float = 30.0) -> Any:
        """Run a function now and return its result (see FunctionsHost.run_function)."""
        return self.host.run_function(name, input, timeout)

    def stop(self) -> None:
        self.server.stop()
        self.host.stop()
        restore_settings(self.replaced_settings)


def start_host(
    function_app: Any,
    port: int,
    settings_env: Mapping[str, str] | None = None,
    state_dir: Path | str | None = None,
    **host_options: Any,
) -> HostHandle:
    """Serve the app on http://127.0.0.1:port with timers running; settings go to os.environ until stop()."""
    replaced = apply_settings(settings_env or {})
    try:
        host = FunctionsHost(function_app, settings_env, state_dir=state_dir, **host_options)
        server = serve(build_app(host), port, ca=None)
    except BaseException:
        restore_settings(replaced)
        raise
    host.start_timers()
    return HostHandle(host, server, f"http://127.0.0.1:{port}", replaced)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.functions_host", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", type=Path, help="a local.settings.json-shaped file whose Values are applied")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR / "timers", help="where timer statuses persist")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the host like `func start`: settings first, then the app, then http on 127.0.0.1 and the timers."""
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    values = read_local_settings(args.settings) if args.settings else {}
    apply_settings(values, override=False)
    host = FunctionsHost(load_app(args.app), {name: os.environ[name] for name in values}, state_dir=args.state_dir)
    server = uvicorn.Server(
        uvicorn.Config(build_app(host), host="127.0.0.1", port=args.port, access_log=False, lifespan="off")
    )

    def request_exit(signum: int, _frame: Any) -> None:
        server.should_exit = True

    # uvicorn re-raises the signal it caught after shutting down; these handlers make that a no-op.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_exit)
    logger.info("Functions host on http://127.0.0.1:%d (routes under /%s)", args.port, host.route_prefix)
    host.start_timers()
    try:
        server.run()
    finally:
        clean = host.stop()
    logger.info("Functions host stopped")
    if not clean:
        os._exit(1)  # a function is still running in a worker thread; the real host would kill the worker
    return 0


if __name__ == "__main__":
    # Run the importable module's main, so the app and this CLI share one copy of this module (not "__main__").
    from sandbox.functions_host import main as _main

    raise SystemExit(_main())
