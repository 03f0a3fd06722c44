"""The request rate a run paces itself to, learned from the server's pushback.

Until the server first pushes back (a 429, or headers saying the quota is spent), nothing is
paced. From then on the rate climbs back after each refusal along the concave half of TCP
CUBIC's curve (RFC 9438), in requests per second rather than packets in flight, then probes
above it in a straight line:

    rate(t) = ceiling × (1 + c·(t − K)³)   for t < K,   c = (1 − BACKOFF) / K³
    rate(t) = ceiling × (1 + PROBE·(t − K))  after

where ``ceiling`` is the rate that was refused last and ``t`` the seconds since. Right after a
refusal the rate is ``BACKOFF`` (96%) of it; it climbs back quickly, flattens just under it,
and from ``K`` (3 s) on gains 1% of it a second, so a limit that rose is found again. Against
a fixed limit the run spends most of its time within a few percent under it, with about one
refusal per probe. The probe is slow and straight, not CUBIC's convex one: a token bucket
absorbs a probe above its rate until the bucket is empty, and a fast probe would be far above
the limit by then. A refusal while below the last ceiling means the limit fell: the new ceiling
is put halfway below (CUBIC's fast convergence).

Unless the server announces its limit, the ceiling is never above the rate it was admitting
when it refused (the requests it accepted in the second before, and those in flight that it had
most likely accepted): a probe may have run above the limit on a bucket's stored tokens, and
the first refusal comes while nothing is paced yet. A policy announced in the headers (``q``
requests per ``w`` seconds) caps the rate at ``HEADROOM`` (98%) of ``q / w`` outright.
"""

from __future__ import annotations

__all__ = ["BACKOFF", "HEADROOM", "LimitEstimate"]

BACKOFF = 0.96  # share of the refused rate kept after a refusal
HEADROOM = 0.98  # share of an announced limit used: jitter must not push a request over it
_K_S = 3.0  # seconds to climb back to the refused rate
_CUBE = (1 - BACKOFF) / _K_S**3
_PROBE = 0.01  # above the refused rate: 1% more of it each second


class LimitEstimate:
    """Not thread-safe: the Pacer calls it under its lock. Times are the Pacer's clock."""

    def __init__(self) -> None:
        self.ceiling: float | None = None  # requests/s last refused
        self.announced: float | None = None  # requests/s the server's policy allows
        self._since = 0.0  # clock of the last refusal

    def rate(self, now: float) -> float | None:
        """Requests per second to pace to at ``now``; None while nothing limits."""
        rate = None
        if self.ceiling is not None:
            t = now - self._since - _K_S
            rate = self.ceiling * (1 + (_CUBE * t**3 if t < 0 else _PROBE * t))
        if self.announced is not None:
            cap = HEADROOM * self.announced
            rate = cap if rate is None else min(rate, cap)
        return rate

    def refused(self, now: float, admitted_per_s: float | None) -> None:
        """The server refused a request (or said its quota is spent) at ``now``;
        ``admitted_per_s`` is what it accepted just before, None if nothing yet."""
        current = self.rate(now)
        if current is None:  # the first pushback: the server just showed what it admits
            if admitted_per_s is not None:  # (refusing the first request shows nothing)
                self.ceiling = max(0.1, admitted_per_s)
                self._since = now
            return
        fell = self.ceiling is not None and current < self.ceiling
        ceiling = current * (1 + BACKOFF) / 2 if fell else current
        if self.announced is None and admitted_per_s is not None:
            # What the server admitted is the better measure when it is lower: a token
            # bucket lets a probe run above its rate until the bucket is empty. (A limit
            # the server announced is better still than anything counted here.)
            ceiling = min(ceiling, max(admitted_per_s, current / 2))
        self.ceiling = ceiling
        self._since = now

    def announce(self, limit: float, window_s: float) -> None:
        """The server's policy: ``limit`` requests per ``window_s`` seconds."""
        self.announced = limit / window_s
