"""A local stand-in for the Azure Functions host: serves a FunctionApp's HTTP routes, timers and Event Grid triggers.

Core Tools cannot be installed here, so this host reads the same decorator metadata the real host reads
(`get_functions()` → `get_function_json()`), builds the real `azure.functions` trigger objects with the library's own
converters, runs every invocation on one worker event loop plus a thread pool (like the Python worker process), and
answers on the routes `func start` answers on: `/api/...`, `/admin/functions[/{name}]`, `/runtime/webhooks/eventgrid`.

    python -m sandbox.functions_host --app function_app:app --port 7071 --settings local.settings.json
"""

from sandbox.functions_host.functions import (
    FunctionEntry,
    FunctionFailedError,
    Invocation,
    InvocationContext,
    entry_for,
    event_grid_event,
    log_failure,
)
from sandbox.functions_host.host import FunctionsHost, HostKeys
from sandbox.functions_host.http import build_app, http_response_from
from sandbox.functions_host.loading import (
    DEFAULT_ROUTE_PREFIX,
    EVENT_GRID_TRIGGER,
    HTTP_METHODS,
    HTTP_TRIGGER,
    MAX_BODY_BYTES,
    SUPPORTED_TRIGGERS,
    TIMER_TRIGGER,
    apply_settings,
    load_app,
    logger,
    read_local_settings,
    read_route_prefix,
    registered_functions,
    resolve_setting_refs,
    restore_settings,
)
from sandbox.functions_host.routes import RouteParameter, RouteTemplate
from sandbox.functions_host.runner import HostHandle, main, start_host
from sandbox.functions_host.timers import (
    NEVER,
    CronSchedule,
    ScheduleStatus,
    TimerState,
    TimerStatusStore,
    timer_request,
)

__all__ = [
    "DEFAULT_ROUTE_PREFIX", "EVENT_GRID_TRIGGER", "HTTP_METHODS", "HTTP_TRIGGER", "MAX_BODY_BYTES", "NEVER",
    "SUPPORTED_TRIGGERS", "TIMER_TRIGGER", "CronSchedule", "FunctionEntry", "FunctionFailedError", "FunctionsHost",
    "HostHandle", "HostKeys", "Invocation", "InvocationContext", "RouteParameter", "RouteTemplate", "ScheduleStatus",
    "TimerState", "TimerStatusStore", "apply_settings", "build_app", "entry_for", "event_grid_event",
    "http_response_from", "load_app", "log_failure", "logger", "main", "read_local_settings", "read_route_prefix",
    "registered_functions", "resolve_setting_refs", "restore_settings", "start_host", "timer_request",
]
