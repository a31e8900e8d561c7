"""What a worker process builds once and keeps (clients, keys, caches, settings), and the one way to start afresh."""

from __future__ import annotations

import threading
from collections.abc import Callable

from shared.settings import get_settings

_lock = threading.Lock()
_forgetters: list[Callable[[], None]] = []


def forgotten_on_reset(forget: Callable[[], None]) -> Callable[[], None]:
    """Register how a module forgets its per-process state; used as a decorator next to that state."""
    with _lock:
        _forgetters.append(forget)
    return forget


def reset_process_state() -> None:
    """Forget every client, key, cache and the settings built so far, as a fresh worker process starts.

    Tests call this after changing app settings in os.environ; the next use rebuilds everything from them.
    """
    with _lock:
        forgetters = list(_forgetters)
    for forget in forgetters:
        forget()
    get_settings.cache_clear()
