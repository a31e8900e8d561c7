"""One outbound HTTP client per external system, each with a timeout, all calls counted."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from shared.errors import DependencyFailed, DependencyTimeout
from shared.runtime import forgotten_on_reset
from shared.settings import get_settings

SYSTEM_NAMES = {
    "fhir": "Oracle Health FHIR",
    "smart": "Oracle Health authorization",
    "entra": "Microsoft Entra ID",
    "graph": "Microsoft Graph",
    "acs": "Azure Communication Services",
}

# HTTP client libraries log full request URLs at INFO, and FHIR URLs carry patient and appointment ids:
# keep them to warnings so no id reaches the logs (or Application Insights).
for _noisy in ("httpx", "httpcore", "azure", "msal", "urllib3"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

_lock = threading.Lock()
_clients: dict[str, httpx.Client] = {}
_counts: Counter[str] = Counter()


@forgotten_on_reset
def _close_clients() -> None:
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
        _counts.clear()
    for existing in clients:
        existing.close()


def count_call(system: str) -> None:
    """Count one outbound call (SDKs with their own transport report here too)."""
    with _lock:
        _counts[system] += 1


def _counter(system: str):
    def count(_request: httpx.Request) -> None:
        count_call(system)

    return count


def client(system: str) -> httpx.Client:
    """The shared client of an external system (created on first use, reused across invocations)."""
    with _lock:
        existing = _clients.get(system)
        if existing is None:
            existing = httpx.Client(
                timeout=get_settings().http_timeout_seconds,
                event_hooks={"request": [_counter(system)]},
                headers={"User-Agent": "teams-ehr-connector/0.1"},
            )
            _clients[system] = existing
        return existing


def call_counts() -> dict[str, int]:
    """Outbound calls made so far, per system (benchmarks read these)."""
    with _lock:
        return dict(_counts)


def reset_call_counts() -> None:
    with _lock:
        _counts.clear()


@contextmanager
def dependency(system: str) -> Iterator[None]:
    """Turn transport failures of a system into typed, user-safe errors naming that system."""
    name = SYSTEM_NAMES.get(system, system)
    try:
        yield
    except httpx.TimeoutException as exc:
        raise DependencyTimeout(
            f"{name} did not answer in time.", next_step="Try again in a minute. If it keeps happening, tell IT."
        ) from exc
    except httpx.HTTPError as exc:
        raise DependencyFailed(
            f"{name} could not be reached.", next_step="Try again in a minute. If it keeps happening, tell IT."
        ) from exc
