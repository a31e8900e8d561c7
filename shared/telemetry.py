"""Custom metrics and request spans for Azure Monitor, through OpenTelemetry: count(), record() and span().

Nothing is exported unless APPLICATIONINSIGHTS_CONNECTION_STRING is set (Azure) or TELEMETRY_CONSOLE is true
(local). OpenTelemetry is imported on first use, never at import time, so cold starts pay nothing for it.
Attributes are a fixed set of keys per metric, and every value must be a short lower-case word: an identifier,
phone number, date, URL or query string cannot be one, so none can reach Application Insights.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# name: (instrument, unit, description, attribute keys). The README's telemetry section lists the same.
METRICS: dict[str, tuple[str, str, str, frozenset[str]]] = {
    "connector.launches": ("counter", "1", "Provider launches finished, by outcome", frozenset({"outcome"})),
    "connector.launch.duration": ("histogram", "ms", "Time from Cerner's callback to the visit page redirect",
                                  frozenset({"outcome"})),
    "connector.joins": ("counter", "1", "Patient join link openings, by outcome", frozenset({"outcome"})),
    "connector.sms.sent": ("counter", "1", "SMS accepted by ACS, by message kind", frozenset({"kind"})),
    "connector.sms.delivered": ("counter", "1", "SMS delivery reports saying delivered", frozenset({"kind"})),
    "connector.sms.failed": ("counter", "1", "SMS refused by ACS or reported undelivered, by kind",
                             frozenset({"kind", "stage"})),
    "connector.sms.throttled": ("counter", "1", "SMS that ACS throttled (429), left for a later try, by kind",
                                frozenset({"kind"})),
    "connector.email.sent": ("counter", "1", "Emails accepted by ACS, by message kind", frozenset({"kind"})),
    "connector.email.delivered": ("counter", "1", "Email delivery reports saying delivered",
                                  frozenset({"kind"})),
    "connector.email.failed": ("counter", "1", "Emails refused by ACS or reported undelivered, by kind",
                               frozenset({"kind", "stage"})),
    "connector.email.throttled": ("counter", "1", "Emails that ACS throttled (429), left for a later try, by kind",
                                  frozenset({"kind"})),
    "connector.reminders.duration": ("histogram", "ms", "Duration of one reminder job run",
                                     frozenset({"outcome"})),
    "connector.reminders.carried_over": ("counter", "1", "Messages left for the next run (time or rate ran out)",
                                         frozenset()),
    "connector.reminders.runs": ("counter", "1", "Reminder job runs, by outcome", frozenset({"outcome"})),
    "connector.dependency.failures": ("counter", "1", "Failed calls to an external system, by system and reason",
                                      frozenset({"system", "reason"})),
}
WORD = re.compile(r"[a-z][a-z_]{0,31}")
METER_NAME = "teams-ehr-connector"

_lock = threading.Lock()
_configured = False
_target = ""
_meter: Any = None
_tracer: Any = None
_instruments: dict[str, Any] = {}


class UnsafeAttribute(ValueError):
    """A metric attribute that is not one of the metric's keys, or whose value is not a short word."""


def safe_attributes(name: str, attributes: dict[str, str]) -> dict[str, str]:
    """The attributes, checked: only the metric's own keys, each value a short lower-case word."""
    allowed = METRICS[name][3]
    for key, value in attributes.items():
        if key not in allowed or not isinstance(value, str) or not WORD.fullmatch(value):
            raise UnsafeAttribute(f"{name}: attribute {key!r} is not allowed or not a short word")
    return attributes


def word(value: str, default: str = "other") -> str:
    """The value when it is a safe attribute word (an error code), else the default."""
    return value if WORD.fullmatch(value) else default


def _exporting() -> str:
    """Where telemetry goes: 'azure', 'console' or '' (nowhere)."""
    from shared.settings import get_settings

    if os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return "azure"
    return "console" if get_settings().telemetry_console else ""


def _configure_once() -> None:
    """Set up the exporter the environment asks for, the first time telemetry is used."""
    global _configured, _target
    if _configured:
        return
    _configured = True
    from shared.settings import get_settings

    target = _target = _exporting()
    if target == "azure":
        from azure.monitor.opentelemetry import configure_azure_monitor

        # Outbound HTTP spans would carry FHIR URLs with patient ids, so those libraries are not instrumented;
        # the connector's own spans (span()) and the dependency-failure metric stand in for them.
        off = {"enabled": False}
        options: dict[str, Any] = {"logger_name": "connector", "instrumentation_options": {name: off for name in (
            "azure_sdk", "django", "fastapi", "flask", "psycopg2", "requests", "urllib", "urllib3", "httpx", "httpx2")}}
        client_id = get_settings().azure_client_id
        if client_id:  # Bicep turns off local auth on Application Insights: send with the managed identity
            from azure.identity import ManagedIdentityCredential

            options["credential"] = ManagedIdentityCredential(client_id=client_id)
        configure_azure_monitor(**options)
    elif target == "console":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        metrics.set_meter_provider(MeterProvider([PeriodicExportingMetricReader(ConsoleMetricExporter())]))
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(tracer_provider)


def use_providers(meter_provider: Any = None, tracer_provider: Any = None) -> None:
    """Send telemetry to these providers instead of the global ones (tests read them in memory)."""
    global _configured, _meter, _tracer, _target
    with _lock:
        _configured, _target = True, "given"
        _instruments.clear()
        if meter_provider is None and tracer_provider is None:
            _configured, _target = False, ""
        _meter = meter_provider.get_meter(METER_NAME) if meter_provider is not None else None
        _tracer = tracer_provider.get_tracer(METER_NAME) if tracer_provider is not None else None


def _instrument(name: str) -> Any:
    global _meter
    with _lock:
        existing = _instruments.get(name)
        if existing is not None:
            return existing
        _configure_once()
        if _meter is None:
            if not _target:
                return None  # nothing exports (a local run): no OpenTelemetry import, no cost
            from opentelemetry import metrics

            _meter = metrics.get_meter(METER_NAME)
        kind, unit, description, _keys = METRICS[name]
        make = _meter.create_counter if kind == "counter" else _meter.create_histogram
        existing = _instruments[name] = make(name, unit=unit, description=description)
        return existing


def count(name: str, amount: int = 1, **attributes: str) -> None:
    """Add to a counter."""
    checked = safe_attributes(name, attributes)
    instrument = _instrument(name)
    if amount and instrument is not None:
        instrument.add(amount, checked)


def record(name: str, value: float, **attributes: str) -> None:
    """Record one value of a histogram (a duration in ms)."""
    checked = safe_attributes(name, attributes)
    instrument = _instrument(name)
    if instrument is not None:
        instrument.record(value, checked)


@contextmanager
def span(route: str, **attributes: str | int) -> Iterator[dict[str, str | int]]:
    """A server span named by the route template (never the URL: no path token, no query string)."""
    global _tracer
    with _lock:
        _configure_once()
        if _tracer is None and not _target:
            tracer = None
        elif _tracer is None:
            from opentelemetry import trace

            tracer = _tracer = trace.get_tracer(METER_NAME)
        else:
            tracer = _tracer
    found: dict[str, str | int] = dict(attributes)
    if tracer is None:
        yield found
        return
    from opentelemetry.trace import SpanKind

    with tracer.start_as_current_span(route, kind=SpanKind.SERVER, attributes={"http.route": route}) as current:
        yield found
        current.set_attributes(found)
