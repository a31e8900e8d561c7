"""What one run of the job did, in counts only (the timer logs these; nothing in them identifies anyone)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

COUNTS = ("endpoints", "searched", "sent", "skipped", "carried_over", "deferred", "in_flight", "retrying",
          "failed", "endpoint_errors", "purged", "queued")


@dataclass
class RunReport:
    """Counters of one run; safe to update from the sending threads."""

    counts: Counter[str] = field(default_factory=Counter)
    sent_by_kind: Counter[str] = field(default_factory=Counter)
    # Per endpoint id: its own counters and the codes of what failed there (for the status page's run record).
    by_endpoint: dict[str, Counter[str]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, amount: int = 1, endpoint: str = "") -> None:
        if name not in COUNTS:
            raise ValueError(f"unknown counter {name!r}")
        with self._lock:
            self.counts[name] += amount
            if endpoint:
                self.by_endpoint.setdefault(endpoint, Counter())[name] += amount

    def record_sent(self, kind: str, endpoint: str = "") -> None:
        with self._lock:
            self.counts["sent"] += 1
            self.sent_by_kind[kind] += 1
            if endpoint:
                self.by_endpoint.setdefault(endpoint, Counter())["sent"] += 1

    def record_error(self, endpoint: str, code: str) -> None:
        """An error code (never a message text) of a failure at this endpoint, each code listed once."""
        with self._lock:
            codes = self.errors.setdefault(endpoint, [])
            if code and code not in codes:
                codes.append(code)

    def for_endpoint(self, endpoint: str) -> Counter[str]:
        with self._lock:
            return Counter(self.by_endpoint.get(endpoint, Counter()))

    def __getattr__(self, name: str) -> int:
        if name in COUNTS:
            return self.counts[name]
        raise AttributeError(name)

    def summary(self) -> str:
        """One log line: every counter, then sends per kind."""
        parts = [f"{name}={self.counts[name]}" for name in COUNTS]
        parts += [f"sent.{kind}={count}" for kind, count in sorted(self.sent_by_kind.items())]
        return " ".join(parts)
