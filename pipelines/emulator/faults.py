"""Seeded, reproducible fault decisions for `/api/...` requests."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .limit_headers import limit_headers
from .limiters import Verdict, limiter
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
    headers: Mapping[str, str] = field(default_factory=dict)  # rate-limit headers, if announced


class FaultInjector:
    """Decides faults for one FaultConfig; replaced (not mutated) when the config changes."""

    def __init__(self, config: FaultConfig, wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()
        self._wall = wall  # only for a reset announced as a Unix time
        rate, algorithm = config.rate_limit, config.rate_limit_algorithm
        window = config.rate_limit_window_s
        self._limiter = None if rate is None else limiter(algorithm, rate, window)

    def _draws(self) -> list[float]:
        # Always the same number of draws per request, so the n-th request of a run sees the
        # same faults whatever the earlier requests got.
        with self._lock:
            return [self._rng.random() for _ in range(6)]

    def _rate_limited(self, org: str, now: float) -> tuple[Verdict | None, dict[str, str]]:
        """The limiter's verdict on this request (None without a rate limit) and its headers."""
        if self._limiter is None:
            return None, {}
        with self._lock:
            verdict = self._limiter.admit(org, now)
        cfg = self.config
        headers = limit_headers(
            cfg.rate_limit_headers,
            verdict,
            cfg.rate_limit_window_s,
            cfg.rate_limit_reset,
            self._wall(),
        )
        return verdict, headers

    def decide(self, org: str, is_write: bool, now: float) -> Decision:
        """The fault (or none) for one authenticated `/api/...` request arriving at `now`."""
        cfg = self.config
        throttle, drop, error, kind, jitter, ctf = self._draws()
        delay = (cfg.latency_ms + jitter * cfg.jitter_ms) / 1000.0
        verdict, headers = self._rate_limited(org, now)
        if verdict is not None and not verdict.admitted:
            retry_after = max(1, math.ceil(verdict.reset_s))  # whole seconds, as most servers
            return Decision("rate_limit", 429, retry_after, delay, headers=headers)
        if throttle < cfg.throttle_rate:
            return Decision("throttle", 429, 1, delay, headers=headers)
        if drop < cfg.drop_rate:
            return Decision("drop", 0, None, delay)
        if error < cfg.error_rate:
            status = _ERROR_STATUSES[min(int(kind * 3), 2)]
            return Decision("error", status, None, delay, headers=headers)
        ctf_now = is_write and ctf < cfg.commit_then_fail_rate
        return Decision(None, 0, None, delay, ctf_now, headers)
