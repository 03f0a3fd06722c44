"""Adaptive politeness: how many requests may be in flight, and how fast they may start.

One ``Pacer`` is shared by every sender of a run, so all entities draw on one budget. It is
additive-increase / multiplicative-decrease twice over:

- **concurrency**: up to the configured maximum in flight; halved on a 429, grown by one
  per round of successes, and held down while latency climbs well above its best value
  (queueing at the server is the first sign of overload);
- **request rate**: unlimited until the first 429; then the rate observed over the last
  second, cut by a tenth, grown by about one request per second for every second without a
  429, and cut again on the next one. Against a server limit this settles just under it.

A 429's ``Retry-After`` is honoured by the request that got it (see ``load.RetryPolicy``);
the others keep going at the reduced pace rather than all stopping for a whole second.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Pacer"]

_DECREASE = 0.9  # rate kept after a 429: small cuts keep the average near the limit
_LATENCY_FACTOR = 3.0  # latency this many times the best seen counts as congestion


class Pacer:
    def __init__(
        self,
        max_in_flight: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.max_in_flight = max_in_flight
        self.limit = float(max_in_flight)
        self.rate: float | None = None  # requests per second; None = not paced
        self._clock, self._sleep = clock, sleep
        self._cond = threading.Condition()
        self._in_flight = 0
        self._next_start = 0.0
        self._starts: deque[float] = deque()
        self._best_latency: float | None = None
        self.throttled = 0

    def acquire(self) -> None:
        """Block until this request may start."""
        with self._cond:
            while self._in_flight >= max(1, int(self.limit)):
                self._cond.wait()
            self._in_flight += 1
            now = self._clock()
            start = max(now, self._next_start)
            if self.rate is not None:
                self._next_start = start + 1.0 / self.rate
            self._starts.append(start)
        if start > now:
            self._sleep(start - now)

    def release(self, *, throttled: bool, latency_s: float) -> None:
        """Report how the request went; adjusts concurrency and rate for those that follow."""
        with self._cond:
            self._in_flight -= 1
            if throttled:
                self._decrease()
            else:
                self._increase(latency_s)
            self._cond.notify_all()

    def _decrease(self) -> None:
        self.throttled += 1
        self.limit = max(1.0, self.limit / 2)
        observed = self._observed_rate()
        base = observed if self.rate is None else min(self.rate, observed or self.rate)
        self.rate = max(0.5, (base or 1.0) * _DECREASE)

    def _increase(self, latency_s: float) -> None:
        best = self._best_latency
        self._best_latency = latency_s if best is None else min(best, latency_s)
        congested = best is not None and latency_s > _LATENCY_FACTOR * best + 0.05
        if not congested:
            self.limit = min(float(self.max_in_flight), self.limit + 1.0 / self.limit)
        if self.rate is not None:
            self.rate += 1.0 / self.rate  # about +1 request/s per second

    def _observed_rate(self) -> float | None:
        now = self._clock()
        while self._starts and self._starts[0] < now - 1.0:
            self._starts.popleft()
        return float(len(self._starts)) if self._starts else None
