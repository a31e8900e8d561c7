"""A small thread-safe cache with expiry, for what is worth keeping in process (discovery, keys, tokens)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from shared.runtime import forgotten_on_reset

Value = TypeVar("Value")


class TtlCache(Generic[Value]):
    """Values kept for `seconds` (or for what `lifetime(value)` says), fetched again after that."""

    def __init__(self, seconds: float, lifetime: Callable[[Value], float] | None = None):
        self.seconds = seconds
        self.lifetime = lifetime
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Value]] = {}
        forgotten_on_reset(self.clear)

    def get(self, key: Hashable, fetch: Callable[[], Value], refresh: bool = False) -> Value:
        """The cached value, or a fresh one from `fetch` (fetched outside the lock: slow calls don't serialize)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry and not refresh and entry[0] > now:
            return entry[1]
        value = fetch()
        seconds = self.lifetime(value) if self.lifetime else self.seconds
        with self._lock:
            self._entries[key] = (time.monotonic() + seconds, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
