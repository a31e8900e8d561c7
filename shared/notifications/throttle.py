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
    reach ACS a little later than their token was taken: burst + 60 s * refill = per_minute - margin. A long
    run then uses 96 % of the allowed rate (with a tenth as burst it was 90 %).

    Same definition as ACS: a token is taken right before each request goes out (retries included; see `Pace`),
    and at most `per_minute` requests fall in any half-open minute [t, t + 60 s). A producer that queues a send
    first `reserve`s a token, which holds it back from other reservations but not from the send itself.
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
        self._reserved = 0  # sends queued by `reserve` that have not taken their token yet
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.refill_per_second)
            self._updated = now

    def _wait_for(self, spoken_for: int, take: bool) -> float:
        """0 (taking a token, or reserving one) when one is free beyond `spoken_for`, else seconds until one is."""
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            if now < self._paused_until:
                return self._paused_until - now
            free = self._tokens - spoken_for
            if free >= 1 - 1e-9:  # float refill lands a hair under 1 after waiting exactly long enough
                if take:
                    self._tokens = max(0.0, self._tokens - 1)
                else:
                    self._reserved += 1
                return 0.0
            return max((1 - free) / self.refill_per_second, 0.001)

    def try_acquire(self) -> float:
        """Take a token and return 0, or return how many seconds until one is free."""
        return self._wait_for(0, take=True)

    def _wait(self, attempt: Callable[[], float], deadline: float) -> bool:
        while True:
            wait = attempt()
            if wait <= 0:
                return True
            if self._monotonic() + wait > deadline:
                return False
            self._sleep(wait)

    def acquire(self, deadline: float, reserved: bool = False) -> bool:
        """Wait for a token until the monotonic deadline; False when none came in time. `reserved`: this send
        holds a reservation, which it gives up now (kept or not, its token is taken from the bucket itself)."""
        if reserved:
            self.release()
        return self._wait(self.try_acquire, deadline)

    def reserve(self, deadline: float) -> bool:
        """Wait until a token is free that no queued send has reserved, and reserve it; False at the deadline."""
        return self._wait(lambda: self._wait_for(self._reserved, take=False), deadline)

    def release(self) -> None:
        """A reservation whose send will not take its token (it was not ours to send, or it failed first)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def pause(self, seconds: float) -> None:
        """After a 429: hand out nothing for a while, and start again from an empty bucket."""
        with self._lock:
            now = self._monotonic()
            self._paused_until = max(self._paused_until, now + seconds)
            self._tokens, self._updated = 0.0, self._paused_until


class Pace:
    """The requests of one message on its number's bucket: each takes a token right before it goes to ACS, so
    the bucket counts what ACS counts (the claim's table write and rendering come before, not after)."""

    def __init__(self, bucket: TokenBucket | None = None, deadline: float = float("inf"), reserved: bool = False):
        self.bucket, self.deadline, self._reserved = bucket, deadline, reserved and bucket is not None

    def ready(self) -> bool:
        """Take a token for the request about to go; False when none comes before the run's deadline."""
        if self.bucket is None:
            return True
        reserved, self._reserved = self._reserved, False
        return self.bucket.acquire(self.deadline, reserved=reserved)

    def pause(self, seconds: float) -> None:
        """ACS said 429: the whole number waits."""
        if self.bucket is not None:
            self.bucket.pause(seconds)

    def close(self) -> None:
        """Give back a reservation no request used."""
        if self._reserved and self.bucket is not None:
            self.bucket.release()
        self._reserved = False


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
