"""Loading the function app and its settings as the host does: the FunctionApp, host.json's route prefix, %settings%."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import weakref
from collections.abc import Mapping
from importlib import import_module
from pathlib import Path
from typing import Any

import azure.functions as func

logger = logging.getLogger("sandbox.functions_host")  # the same name when run with -m

DEFAULT_ROUTE_PREFIX = "api"
MAX_BODY_BYTES = 4 * 1024 * 1024
HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
EVENT_GRID_TRIGGER = "eventGridTrigger"
QUEUE_TRIGGER = "queueTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, TIMER_TRIGGER, EVENT_GRID_TRIGGER, QUEUE_TRIGGER)
HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]

APP_ROOTS: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()
_FUNCTIONS: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
_FUNCTIONS_GUARD = threading.Lock()


def load_app(spec: str = "function_app:app") -> func.FunctionApp:
    """Import `module:attribute` and return the FunctionApp it names."""
    module_name, _, attribute = spec.partition(":")
    module = import_module(module_name)
    function_app = getattr(module, attribute or "app")
    if getattr(module, "__file__", None):
        APP_ROOTS[function_app] = Path(module.__file__).resolve().parent
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
