"""Waiting on an event (a state a test can observe) instead of on the clock.

The cap is only a safety net for a broken build: a test passes as soon as its event happens, however slow or busy
the machine is, and never asserts how long something took (speed is measured in bench/).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
PATIENCE = 120.0  # seconds before a wait gives up: far beyond any healthy run, even on a loaded 2-core machine


def wait_until(observe: Callable[[], T], timeout: float = PATIENCE, interval: float = 0.05) -> T:
    """Call `observe` until it returns something truthy and return that; after `timeout`, return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
