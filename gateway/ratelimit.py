"""A token bucket for the dispatcher's ``rate_per_second``."""

from __future__ import annotations

import time


class RateLimiter:
    """Token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

    Kept as the time the next token is due, so high rates cost no sleeps until the
    caller is really ahead of the budget.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate_per_second must be positive, got {rate}")
        self.interval = 1.0 / rate
        # A small burst keeps a slow gateway's rate honest; a fast one gets 20 ms of slack
        # so the loop is not sleeping for microseconds.
        self.burst = burst if burst is not None else max(1.0, rate * 0.02)
        self._next = 0.0

    def reserve(self) -> float:
        """Take one token; return how long to wait before using it."""
        now = time.monotonic()
        start = max(self._next, now - (self.burst - 1) * self.interval)
        self._next = start + self.interval
        return max(0.0, start - now)
