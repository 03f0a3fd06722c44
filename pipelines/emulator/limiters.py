"""The server-side rate limiters behind the `rate_limit` fault, one state per organization.

Three algorithms that real APIs use, each allowing `rate` requests per second on average:

- ``token_bucket``: a bucket of ``rate × window_s`` tokens (at least one), refilled at
  ``rate`` per second; a request takes a token. Bursts up to the bucket's size pass.
- ``fixed_window``: at most ``limit = round(rate × window_s)`` requests in each window
  ``[k·window_s, (k+1)·window_s)`` of the server's clock; the count starts again at each
  boundary, so two windows' worth can pass around one.
- ``sliding_log``: at most ``limit`` requests in any ``window_s`` seconds, checked against a
  log of the times of the requests admitted (the exact sliding window, not the two-counter
  approximation): the strictest of the three.

A refused request is not counted by any of them (it takes no token and no place in a window),
so a client that keeps asking is not locked out for longer.

Every verdict says what a server announces in its rate-limit headers: the limit, what remains
after this request, and ``reset_s``, the seconds until one more request fits (the end of the
window, the next token, or the moment the oldest logged request leaves the window); 0 when the
whole quota is available.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = ["Algorithm", "FixedWindow", "Limiter", "SlidingLog", "TokenBucket", "Verdict", "limiter"]

Algorithm = Literal["token_bucket", "fixed_window", "sliding_log"]


@dataclass(frozen=True, slots=True)
class Verdict:
    admitted: bool
    limit: int
    remaining: int
    reset_s: float


class Limiter(Protocol):
    limit: int

    def admit(self, org: str, now: float) -> Verdict: ...


class TokenBucket:
    def __init__(self, rate: float, window_s: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * window_s)
        self.limit = int(self.capacity)
        self._state: dict[str, tuple[float, float]] = {}  # org -> (tokens, last refill)

    def admit(self, org: str, now: float) -> Verdict:
        tokens, last = self._state.get(org, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - last) * self.rate)
        admitted = tokens >= 1
        if admitted:
            tokens -= 1
        self._state[org] = (tokens, now)
        # floor + 1 - tokens: the time until the whole-token count next grows by one
        whole = math.floor(tokens)
        reset = 0.0 if tokens >= self.capacity else (whole + 1 - tokens) / self.rate
        return Verdict(admitted, self.limit, whole, reset)


class FixedWindow:
    def __init__(self, rate: float, window_s: float) -> None:
        self.window_s = window_s
        self.limit = max(1, round(rate * window_s))
        self._state: dict[str, tuple[int, int]] = {}  # org -> (window index, requests in it)

    def admit(self, org: str, now: float) -> Verdict:
        index = math.floor(now / self.window_s)
        seen, count = self._state.get(org, (index, 0))
        count = count if seen == index else 0
        admitted = count < self.limit
        count += admitted
        self._state[org] = (index, count)
        reset = (index + 1) * self.window_s - now
        return Verdict(admitted, self.limit, self.limit - count, reset)


class SlidingLog:
    def __init__(self, rate: float, window_s: float) -> None:
        self.window_s = window_s
        self.limit = max(1, round(rate * window_s))
        self._logs: dict[str, deque[float]] = {}

    def admit(self, org: str, now: float) -> Verdict:
        log = self._logs.setdefault(org, deque())
        while log and log[0] <= now - self.window_s:
            log.popleft()
        admitted = len(log) < self.limit
        if admitted:
            log.append(now)
        reset = log[0] + self.window_s - now if log else 0.0
        return Verdict(admitted, self.limit, self.limit - len(log), reset)


_ALGORITHMS: dict[str, type[TokenBucket] | type[FixedWindow] | type[SlidingLog]] = {
    "token_bucket": TokenBucket,
    "fixed_window": FixedWindow,
    "sliding_log": SlidingLog,
}


def limiter(algorithm: Algorithm, rate: float, window_s: float) -> Limiter:
    """A fresh limiter (no request seen yet) of ``algorithm``."""
    return _ALGORITHMS[algorithm](rate, window_s)
