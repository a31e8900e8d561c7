"""A token bucket per sending number, sized so ACS's per-minute limit is never reached by this process."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from shared.runtime import forgotten_on_reset

WINDOW_SECONDS = 60.0
IN_FLIGHT_POLL_SECONDS = 0.05


class Request:
    """One request a token was taken for: when it left, and when its answer came (None: still in flight)."""

    __slots__ = ("answered_at", "sent_at")

    def __init__(self, sent_at: float, answered_at: float | None) -> None:
        self.sent_at, self.answered_at = sent_at, answered_at


class TokenBucket:
    """At most `per_minute` sends in any 60 seconds: a small burst, then a steady refill.

    ACS counts requests per number over a sliding minute (toll-free: 200): a request is refused when, at its
    arrival, `per_minute` others arrived in the 60 s before. A bucket holding `per_minute` tokens would allow
    twice that within one minute (a full burst, then a full minute of refill), so the burst is small (a fiftieth
    of the limit) and the refill makes up the rest, less a margin of 2 %: burst + 60 s * refill = per_minute -
    margin. A long run then uses 96 % of the allowed rate.

    The bucket paces by the moment a request leaves; ACS counts the moment it arrives, which on a busy machine
    can be over a second later. So each request is also logged until its answer is a minute old: a request
    arrived before its answer came, so one that still counts at ACS when a new one arrives must have been answered
    less than 60 s before the new one leaves (or be in flight). A token is handed out only while fewer than
    `per_minute` logged requests are in that state, whatever the delays: the same definition as ACS's.
    A producer that queues a send first `reserve`s a token, which holds it back from other reservations but not
    from the send itself (taken right before the request; see `Pace`).
    """

    def __init__(self, per_minute: int, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_minute = per_minute
        self.capacity = max(1, per_minute // 50)
        margin = per_minute // 50
        self.refill_per_second = max(per_minute - self.capacity - margin, 1) / 60.0
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens = float(self.capacity)
        self._updated = monotonic()
        self._paused_until = 0.0
        self._reserved = 0  # sends queued by `reserve` that have not taken their token yet
        self._requests: deque[Request] = deque()  # oldest first; dropped once answered a minute ago
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.refill_per_second)
            self._updated = now

    def _window_wait(self, now: float) -> float:
        """0 when fewer than `per_minute` requests may still count at ACS, else seconds until one stops."""
        since = now - WINDOW_SECONDS
        while self._requests and self._requests[0].answered_at is not None and self._requests[0].answered_at <= since:
            self._requests.popleft()
        if len(self._requests) < self.per_minute:
            return 0.0  # fewer logged than the limit: no need to count (a run with pacing off logs thousands)
        counting = [r.answered_at for r in self._requests if r.answered_at is None or r.answered_at > since]
        excess = len(counting) - self.per_minute + 1
        if excess <= 0:
            return 0.0
        answered = sorted(at for at in counting if at is not None)
        if len(answered) < excess:
            return IN_FLIGHT_POLL_SECONDS  # answers still to come free the window
        return max(answered[excess - 1] - since, 0.001)

    def _wait_for(self, spoken_for: int, take: bool, answered: bool = True) -> float | Request:
        """A Request (taking a token) or 0 (reserving one) when one is free beyond `spoken_for`, else the seconds
        until one is. `answered`: the caller will not report the answer, count the request as answered now."""
        with self._lock:
            now = self._monotonic()
            self._refill(now)
            if now < self._paused_until:
                return self._paused_until - now
            free = self._tokens - spoken_for
            if free < 1 - 1e-9:  # float refill lands a hair under 1 after waiting exactly long enough
                return max((1 - free) / self.refill_per_second, 0.001)
            if not take:
                self._reserved += 1
                return 0.0
            wait = self._window_wait(now)
            if wait > 0:
                return wait
            self._tokens = max(0.0, self._tokens - 1)
            request = Request(now, now if answered else None)
            self._requests.append(request)
            return request

    def try_acquire(self) -> float:
        """Take a token and return 0, or return how many seconds until one is free."""
        taken = self._wait_for(0, take=True)
        return 0.0 if isinstance(taken, Request) else taken

    def take(self, deadline: float, reserved: bool = False) -> Request | None:
        """Wait for a token until the monotonic deadline, for a request whose answer the caller reports with
        `answered`; None when none came in time. `reserved`: the send gives up its reservation now."""
        if reserved:
            self.release()
        while True:
            taken = self._wait_for(0, take=True, answered=False)
            if isinstance(taken, Request):
                return taken
            if self._monotonic() + taken > deadline:
                return None
            self._sleep(taken)

    def answered(self, request: Request) -> None:
        """The request's answer came (or it was given up): it counts at ACS for at most 60 s from now."""
        with self._lock:
            request.answered_at = self._monotonic()

    def acquire(self, deadline: float, reserved: bool = False) -> bool:
        """Wait for a token until the monotonic deadline (the request counted as answered at once); False when
        none came in time."""
        request = self.take(deadline, reserved)
        if request is not None:
            self.answered(request)
        return request is not None

    def reserve(self, deadline: float) -> bool:
        """Wait until a token is free that no queued send has reserved, and reserve it; False at the deadline."""
        while True:
            wait = self._wait_for(self._reserved, take=False)
            if not wait:
                return True
            if self._monotonic() + wait > deadline:
                return False
            self._sleep(wait)

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
    """The requests of one message on its number's bucket: each takes a token right before it goes to ACS and
    reports its answer, so the bucket counts what ACS counts (the claim's table write comes before, not after)."""

    def __init__(self, bucket: TokenBucket | None = None, deadline: float = float("inf"), reserved: bool = False):
        self.bucket, self.deadline, self._reserved = bucket, deadline, reserved and bucket is not None
        self._request: Request | None = None

    def ready(self) -> bool:
        """Take a token for the request about to go; False when none comes before the run's deadline."""
        if self.bucket is None:
            return True
        self.answered()
        reserved, self._reserved = self._reserved, False
        self._request = self.bucket.take(self.deadline, reserved=reserved)
        return self._request is not None

    def answered(self) -> None:
        """The request's answer (or error) came back."""
        if self.bucket is not None and self._request is not None:
            self.bucket.answered(self._request)
        self._request = None

    def pause(self, seconds: float) -> None:
        """ACS said 429: the whole number waits."""
        if self.bucket is not None:
            self.bucket.pause(seconds)

    def close(self) -> None:
        """Give back a reservation no request used; a request whose answer was not reported ends now."""
        self.answered()
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
