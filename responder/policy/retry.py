"""How the reply sender retries, shared by the live outbox and the simulator's model of it.

Pure: no I/O, an injected clock and random source. ``responder.outbox`` drives it with
the wall clock; ``sim.model`` with SimPy's, so a simulated outage costs what a real one
would: the same backoff, the same circuit breaker.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
RETRY_AFTER_CAP_S = 3600.0


class Uniform(Protocol):
    """The injected random source: ``random.Random`` fits."""

    def uniform(self, a: float, b: float) -> float: ...


class CircuitBreaker:
    """closed -> open after ``threshold`` consecutive failures -> half-open after cool-down."""

    def __init__(self, threshold: int, cooldown_s: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.trips = 0

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self._clock() >= self.opened_at + self.cooldown_s else "open"

    def wait_s(self) -> float:
        """Seconds until a call may go out (0 when closed or half-open)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.cooldown_s - self._clock())

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = self._clock()  # (re)open: a failed probe restarts the cool-down
            self.trips += 1


def backoff_s(attempt: int, rng: Uniform, retry_after_s: float | None = None) -> float:
    """Exponential backoff with equal jitter; never shorter than the provider's Retry-After."""
    # The exponent is bounded: 2.0 ** 1024 overflows (RAIDSIM_SEND_MAX_ATTEMPTS may be large).
    ceiling: float = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(max(0, attempt - 1), 64))
    delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
    if retry_after_s is not None and math.isfinite(retry_after_s):
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return delay


__all__ = ["BACKOFF_BASE_S", "BACKOFF_CAP_S", "RETRY_AFTER_CAP_S", "CircuitBreaker",
           "backoff_s"]
