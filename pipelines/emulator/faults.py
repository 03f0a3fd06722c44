"""Seeded, reproducible fault decisions for `/api/...` requests."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

from .settings import FaultConfig

__all__ = ["Decision", "FaultInjector"]

_ERROR_STATUSES = (500, 502, 503)


@dataclass(frozen=True)
class Decision:
    """What to do with one request. `kind` names the fault that answers it, if any."""

    kind: str | None = None  # "rate_limit" | "throttle" | "drop" | "error"
    status: int = 0
    retry_after: int | None = None
    delay_s: float = 0.0
    commit_then_fail: bool = False


class FaultInjector:
    """Decides faults for one FaultConfig; replaced (not mutated) when the config changes."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # org -> (tokens, last refill)

    def _draws(self) -> list[float]:
        # Always the same number of draws per request, so the n-th request of a run sees the
        # same faults whatever the earlier requests got.
        with self._lock:
            return [self._rng.random() for _ in range(6)]

    def _rate_limited(self, org: str, now: float) -> int | None:
        """Token bucket with a one-second burst; returns Retry-After seconds when empty."""
        rate = self.config.rate_limit
        if rate is None:
            return None
        capacity = max(rate, 1.0)
        with self._lock:
            tokens, last = self._buckets.get(org, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1:
                self._buckets[org] = (tokens - 1, now)
                return None
            self._buckets[org] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / rate))

    def decide(self, org: str, is_write: bool, now: float) -> Decision:
        """The fault (or none) for one authenticated `/api/...` request arriving at `now`."""
        cfg = self.config
        throttle, drop, error, kind, jitter, ctf = self._draws()
        delay = (cfg.latency_ms + jitter * cfg.jitter_ms) / 1000.0
        retry_after = self._rate_limited(org, now)
        if retry_after is not None:
            return Decision("rate_limit", 429, retry_after, delay)
        if throttle < cfg.throttle_rate:
            return Decision("throttle", 429, 1, delay)
        if drop < cfg.drop_rate:
            return Decision("drop", 0, None, delay)
        if error < cfg.error_rate:
            status = _ERROR_STATUSES[min(int(kind * 3), 2)]
            return Decision("error", status, None, delay)
        return Decision(None, 0, None, delay, is_write and ctf < cfg.commit_then_fail_rate)
