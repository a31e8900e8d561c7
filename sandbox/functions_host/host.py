"""The host's state: the app's functions by trigger, timer schedules and statuses, recent invocations."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hmac
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func

from sandbox.functions_host.functions import (
    FunctionEntry,
    FunctionFailedError,
    Invocation,
    InvocationContext,
    entry_for,
    event_grid_event,
    log_failure,
)
from sandbox.functions_host.loading import (
    APP_ROOTS,
    EVENT_GRID_TRIGGER,
    HTTP_TRIGGER,
    MAX_BODY_BYTES,
    QUEUE_TRIGGER,
    TIMER_TRIGGER,
    logger,
    read_route_prefix,
    registered_functions,
    resolve_setting_refs,
)
from sandbox.functions_host.queues import QueueListener, QueueTrigger
from sandbox.functions_host.routes import RouteTemplate
from sandbox.functions_host.timers import (
    NEVER,
    CronSchedule,
    ScheduleStatus,
    TimerState,
    TimerStatusStore,
    timer_request,
    utc_now,
)
from sandbox.functions_host.worker import WorkerLoop, cancel_and_wait


@dataclass(frozen=True)
class HostKeys:
    """The host's keys, as the real host keeps them: the master key (admin API) and the system keys of extensions."""

    master: str
    event_grid: str  # the `eventgrid_extension` system key, for /runtime/webhooks/eventgrid

    @classmethod
    def generate(cls) -> HostKeys:
        return cls(master=secrets.token_urlsafe(32), event_grid=secrets.token_urlsafe(32))

    def admits(self, presented: str | None, *, system: bool = False) -> bool:
        """Whether a presented key opens the admin API (master key) or a system endpoint (its key or the master)."""
        candidates = (self.master, self.event_grid) if system else (self.master,)
        return bool(presented) and any(hmac.compare_digest(presented, key) for key in candidates)


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
        clock: Callable[[], datetime] = utc_now,
        keys: HostKeys | None = None,
    ) -> None:
        self.settings_env = dict(settings_env or {})
        self.keys = keys or HostKeys.generate()
        self.app_root = app_root or APP_ROOTS.get(function_app) or Path.cwd()
        self.route_prefix = read_route_prefix(self.app_root) if route_prefix is None else route_prefix.strip("/")
        self.max_body_bytes = max_body_bytes
        self.past_due_tolerance = timedelta(seconds=past_due_tolerance)
        self.clock = clock  # the scheduler re-reads it at least twice a second
        self.functions: dict[str, FunctionEntry] = {}  # by lower-case name: function names are case-insensitive
        self.errors: dict[str, str] = {}  # functions the host could not load, as the real host lists them
        self.http_routes: dict[str, RouteTemplate] = {}
        self.timers: dict[str, TimerState] = {}
        self.queues: dict[str, QueueTrigger] = {}
        self._listeners: list[asyncio.Task[None]] = []
        self.status_store = TimerStatusStore(Path(state_dir) if state_dir is not None else None)
        self._invocations: deque[Invocation] = deque(maxlen=1000)
        self._guard = threading.Lock()
        self._worker = WorkerLoop()
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
            elif entry.trigger == QUEUE_TRIGGER:
                self.queues[name.lower()] = QueueTrigger.for_entry(entry, {**os.environ, **self.settings_env},
                                                                   self.app_root)
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
        elif entry.trigger == QUEUE_TRIGGER:
            info["queueName"] = self.queues[entry.name.lower()].queue_name
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
        """Start firing timers on their schedules (a missed occurrence or runOnStartup first) and listening to the
        queue triggers' queues."""
        if self._scheduler is None:
            self._scheduler = self._worker.submit(self._create_scheduler()).result()
            self._listeners = [self._worker.submit(self._create_listener(trigger)).result()
                               for trigger in self.queues.values()]

    def stop_timers(self) -> None:
        """Stop scheduling and listening; runs already started finish."""
        scheduler, self._scheduler = self._scheduler, None
        listeners, self._listeners = self._listeners, []
        for task in ([scheduler] if scheduler is not None else []) + listeners:
            self._worker.submit(cancel_and_wait(task)).result()

    async def _create_listener(self, trigger: QueueTrigger) -> asyncio.Task[None]:
        return asyncio.create_task(QueueListener(trigger, self._execute).run(), name=f"queue-{trigger.queue_name}")

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
