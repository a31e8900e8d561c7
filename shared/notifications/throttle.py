"""A token bucket per sending number, sized so ACS's per-minute limit is never reached by this process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.runtime import forgotten_on_reset


class TokenBucket:
    """At most `per_minute` sends in any 60 seconds: a small burst, then a steady refill.

    ACS counts requests per number over a sliding minute (toll-free: 200). A bucket holding `per_minute`
    tokens would allow twice that within one minute (a full burst, then a full minute of refill), so the burst
    is small (a fiftieth of the limit) and the refill makes up the rest, less a margin of 2 % for requests that
    reach ACS later than their token was taken (over a second on a busy machine): burst + 60 s * refill =
    per_minute - margin. A long run then uses 96 % of the allowed rate (with a tenth as burst it was 90 %).
    """

    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.capacity = max(1, per_minute // 50)
        margin = per_minute // 50
        self.refill_per_second = max(per_minute - self.capacity - margin, 1) / 60.0
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens = float(self.capacity)
        self._updated = monotonic()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.refill_per_second)
            self._updated = now

    def try_acquire(self) -> float:
        """Take a token and return 0, or return how many seconds until one is free."""
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            if now < self._paused_until:
                return self._paused_until - now
            if self._tokens >= 1 - 1e-9:  # float refill lands a hair under 1 after waiting exactly long enough
                self._tokens = max(0.0, self._tokens - 1)
                return 0.0
            return max((1 - self._tokens) / self.refill_per_second, 0.001)

    def acquire(self, deadline: float) -> bool:
        """Wait for a token until the monotonic deadline; False when none came in time."""
        while True:
            wait = self.try_acquire()
            if wait <= 0:
                return True
            if self._monotonic() + wait > deadline:
                return False
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        """After a 429: hand out nothing for a while, and start again from an empty bucket."""
        with self._lock:
            now = self._monotonic()
            self._paused_until = max(self._paused_until, now + seconds)
            self._tokens, self._updated = 0.0, self._paused_until


_lock = threading.Lock()
_buckets: dict[tuple[str, int], TokenBucket] = {}


@forgotten_on_reset
def _forget_buckets() -> None:
    with _lock:
        _buckets.clear()


def bucket_for(sender: str, per_minute: int) -> TokenBucket:
    """The process-wide bucket of a sending number (overlapping runs share it)."""
    with _lock:
        return _buckets.setdefault((sender, per_minute), TokenBucket(per_minute))
