"""Send a run's messages concurrently, paced per sending number; what does not fit carries over to the next run."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from shared.notifications.courier import Courier, Outbound
from shared.notifications.report import RunReport
from shared.notifications.throttle import TokenBucket, bucket_for

logger = logging.getLogger("connector.notifications")


def queues_by_sender(outbounds: list[Outbound]) -> dict[str, list[Outbound]]:
    """Each sending number's messages, earliest appointment first (the order carry-over preserves)."""
    queues: dict[str, list[Outbound]] = defaultdict(list)
    for outbound in sorted(outbounds, key=lambda o: o.order):
        queues[outbound.sender].append(outbound)
    return dict(queues)


class Dispatcher:
    """One producer per sending number feeds a shared pool of sending threads, as fast as its bucket allows."""

    def __init__(self, courier: Courier, report: RunReport, per_minute: int, deadline: float, workers: int = 8,
                 buckets: Callable[[str, int], TokenBucket] = bucket_for,
                 monotonic: Callable[[], float] = time.monotonic, rate_for: Callable[[str], int] | None = None):
        self.courier, self.report, self.per_minute, self.deadline = courier, report, per_minute, deadline
        self.workers, self.buckets, self.monotonic = workers, buckets, monotonic
        self.rate_for = rate_for or (lambda _sender: per_minute)  # the email sender has its own limit
        # A free worker is taken before a token, so tokens are spent when sends start, not when they queue.
        self._slots = threading.BoundedSemaphore(workers)

    def run(self, outbounds: list[Outbound]) -> None:
        """Send until everything went or the deadline came; count what carries over."""
        if not outbounds:
            return
        # Outcomes go in one transaction per ledger partition; the pool's exit waits for the sends first.
        with self.courier.batched_outcomes(), \
                ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sms-send") as pool:
            producers = [threading.Thread(target=self._produce, args=(pool, sender, queue), daemon=True)
                         for sender, queue in queues_by_sender(outbounds).items()]
            for producer in producers:
                producer.start()
            for producer in producers:
                producer.join()

    def _produce(self, pool: ThreadPoolExecutor, sender: str, queue: list[Outbound]) -> None:
        bucket = self.buckets(sender, self.rate_for(sender))
        for index, outbound in enumerate(queue):
            if not self._slots.acquire(timeout=max(0.0, self.deadline - self.monotonic())):
                self._carry_over(queue[index:])
                return
            if not bucket.acquire(self.deadline):
                self._slots.release()
                self._carry_over(queue[index:])
                return
            pool.submit(self._deliver, outbound, bucket)

    def _carry_over(self, left: list[Outbound]) -> None:
        """Messages this run has no time for: the next run sends them (counted per endpoint)."""
        for outbound in left:
            self.report.add("carried_over", endpoint=outbound.endpoint.id)

    def _deliver(self, outbound: Outbound, bucket: TokenBucket) -> None:
        try:
            self.courier.deliver(outbound, bucket)
        except Exception as error:  # storage down mid-send: the row stays claimed and is retried after its lease
            self.report.add("failed", endpoint=outbound.endpoint.id)
            self.report.record_error(outbound.endpoint.id, type(error).__name__)
            logger.warning("SMS send could not be recorded: %s", type(error).__name__)
        finally:
            self._slots.release()
