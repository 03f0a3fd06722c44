"""Adaptive politeness: how many requests may be in flight, and how fast they may start.

One ``Pacer`` is shared by every sender of a run, so all entities draw on one budget:

- **concurrency**: up to the configured maximum in flight; halved when the server pushes
  back, grown by one per round of successes, and held down while latency climbs well above
  its best value (queueing at the server is the first sign of overload);
- **request rate**: unlimited until the server first pushes back; from then on learned
  (:mod:`pipelines.load.limit_learning`): just under the rate it refused, probing slowly above
  it, or under the limit its headers announce;
- **the announced quota** (:mod:`pipelines.load.rate_headers`): when a response says how many
  requests remain until a reset, and our requests since then would spend them, new starts wait
  for the reset instead of collecting 429s. A reset given in whole seconds, and shorter than
  two, is too coarse to wait for: the learned rate does the work then. A policy of ``q``
  requests per ``w`` seconds also keeps our own last ``q`` starts more than ``w`` apart (with
  a margin for the way to the server), so even a sliding log refuses nothing, bursts sent
  before the policy was known included.

The first refusal also holds every start until its ``Retry-After``: the quota is spent then,
and every request sent before it would only be refused. Later 429s are single requests over
the limit: the one refused waits its ``Retry-After`` (see ``sender.RetryPolicy``), the others
keep going at the reduced rate. A 429 for a request that started before the last cut, or that
comes within a second of it, is the same overload, not a new one.

Each request's ``acquire`` and ``release`` happen on one thread; the pacer remembers which
request a thread started, to tell a late answer from a current one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from pipelines.load.limit_learning import LimitEstimate
from pipelines.load.rate_headers import Quota

__all__ = ["Pacer"]

_LATENCY_FACTOR = 3.0  # latency this many times the best seen counts as congestion
_LONG_WAIT_INTERVALS = 2.0  # a wait for the reset longer than this many intervals: too fast
_CUT_GAP_S = 1.0  # refusals this soon after a cut are the same overload
_FEW = 8  # accepted answers in a second too few to measure a rate by; then the last ...
_MEASURE_S = 5.0  # ... seconds are counted
_EVIDENCE = 3  # fewer accepted than this in those seconds say nothing of a rate
_OWN_STARTS = 1024  # starts remembered, to keep an announced policy over any window
_WINDOW_MARGIN = 1.03  # a request reaches the server a little after it starts, give or take


class Pacer:
    def __init__(
        self,
        max_in_flight: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ):
        """``clock`` and ``sleep`` are for tests; without ``sleep`` a request waiting for its
        start is woken by every answer, which may bring news (a spent quota) that moves it."""
        self.max_in_flight = max_in_flight
        self.limit = float(max_in_flight)
        self.estimate = LimitEstimate()
        self._clock, self._sleep = clock, sleep
        self._cond = threading.Condition()
        self._in_flight = 0
        self._next_start = 0.0
        self._hold_until = 0.0
        self._started = 0  # requests started so far; a request's number is its ticket
        self._open: set[int] = set()  # tickets of the requests in flight
        self._cut_ticket = 0  # requests started up to the last cut: their 429s are that overload
        self._cut_at = float("-inf")
        self._mine = threading.local()
        self._admitted: deque[float] = deque()  # answers accepted in the last seconds
        self._first_start: float | None = None
        self._best_latency: float | None = None
        self._budget: float | None = None  # announced remaining, less our starts since
        self._budget_ticket = 0
        self._reset_at: float | None = None  # when the announced quota grows again, if precise
        self._policy: tuple[int, float] | None = None  # announced (requests, per seconds)
        self._starts: deque[float] = deque(maxlen=_OWN_STARTS)
        self.throttled = 0

    @property
    def rate(self) -> float | None:
        """Requests per second now; None = not paced."""
        with self._cond:
            return self.estimate.rate(self._clock())

    def acquire(self) -> None:
        """Block until this request may start."""
        with self._cond:
            while self._in_flight >= max(1, int(self.limit)):
                self._cond.wait()
            self._in_flight += 1
            while (start := self._earliest(now := self._clock())) > now:
                self._pause(start - now)
            self._begin(now)

    def release(
        self,
        *,
        throttled: bool,
        latency_s: float,
        quota: Quota | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Report how the request went: refused with 429 (``throttled``, with the server's
        ``retry_after`` seconds if given) or not, and the ``quota`` its headers announced."""
        ticket = getattr(self._mine, "ticket", None)
        with self._cond:
            self._in_flight -= 1
            self._open.discard(ticket)
            now = self._clock()
            if quota is not None:
                self._learn(quota, ticket, now)
            if throttled:
                self.throttled += 1
                if self._new_overload(ticket, now):
                    self._pushback(now, ticket or self._started, retry_after)
            else:
                self._admit(now, latency_s)
            self._cond.notify_all()

    def _new_overload(self, ticket: int | None, now: float) -> bool:
        """A refusal is news unless its request started before the last cut, or it came
        within ``_CUT_GAP_S`` of that cut: what the server remembers (a window, a bucket)
        takes that long to show the cut."""
        late = ticket is not None and ticket <= self._cut_ticket
        return not late and now - self._cut_at >= _CUT_GAP_S

    def _pause(self, seconds: float) -> None:
        if self._sleep is None:
            self._cond.wait(seconds)
            return
        self._cond.release()
        try:
            self._sleep(seconds)
        finally:
            self._cond.acquire()

    def _earliest(self, now: float) -> float:
        """When the next request may start: its place in the pace, after any hold, and not
        before the announced reset when our requests have spent what remained."""
        start = max(now, self._next_start, self._hold_until, self._policy_allows())
        if self._budget is None or self._budget > 0:
            return start
        reset_at = self._reset_at
        if reset_at is None or reset_at <= start:
            self._budget = None  # a new quota: only the next answer says how much of it
            return start
        rate = self.estimate.rate(start)
        too_fast = rate is None or (reset_at - start) * rate > _LONG_WAIT_INTERVALS
        if too_fast and self._new_overload(self._budget_ticket, now):
            self._pushback(now, self._budget_ticket, None)  # spent long before its reset
        self._hold_until = reset_at
        return reset_at

    def _policy_allows(self) -> float:
        """The earliest start that keeps an announced policy of ``q`` requests per ``w``
        seconds over any ``w`` seconds of our own starts: the strictest server (a sliding
        log) then refuses nothing, whatever our bursts before the policy was known."""
        if self._policy is None or len(self._starts) < self._policy[0]:
            return 0.0
        return self._starts[0] + self._policy[1] * _WINDOW_MARGIN

    def _begin(self, now: float) -> None:
        if self._first_start is None:
            self._first_start = now
        self._started += 1
        self._starts.append(now)
        self._mine.ticket = self._started
        self._open.add(self._started)
        if self._budget is not None:
            self._budget -= 1
        rate = self.estimate.rate(now)
        if rate is not None:
            self._next_start = max(now, self._next_start) + 1.0 / rate

    def _learn(self, quota: Quota, ticket: int | None, now: float) -> None:
        if quota.limit and quota.window_s:
            self.estimate.announce(quota.limit, quota.window_s)
            policy = (max(1, int(quota.limit)), quota.window_s)
            if policy != self._policy:
                self._policy = policy
                # the last q starts are all the policy needs (a longer one: not checked)
                self._starts = deque(self._starts, maxlen=min(policy[0], _OWN_STARTS))
        if quota.remaining is None or (ticket is not None and ticket < self._budget_ticket):
            return  # an answer older than the one the budget came from
        self._budget_ticket = self._started if ticket is None else ticket
        self._budget = quota.remaining - (self._started - self._budget_ticket)
        precise = quota.reset_s is not None and not quota.coarse
        self._reset_at = now + quota.reset_s if precise else None

    def _pushback(self, now: float, ticket: int, retry_after: float | None) -> None:
        """The server refused request ``ticket``, or said its quota is spent: one overload,
        one cut. Requests still in flight that started before it were most likely admitted."""
        first = self.estimate.rate(now) is None
        self.estimate.refused(now, self._admitted_rate(now, ticket))
        self._cut_ticket, self._cut_at = self._started, now
        self.limit = max(1.0, self.limit / 2)
        if first and retry_after:
            self._hold_until = max(self._hold_until, now + retry_after)

    def _admitted_rate(self, now: float, ticket: int) -> float | None:
        """Requests/s the server accepted up to request ``ticket``: over the last second, or
        the last few when that second holds too few to tell; None when hardly any was accepted
        (the first requests refused say the quota is spent, not what it is)."""
        while self._admitted and self._admitted[0] < now - _MEASURE_S:
            self._admitted.popleft()
        in_flight = sum(t < ticket for t in self._open)
        last_second = sum(t >= now - 1.0 for t in self._admitted) + in_flight
        if last_second >= _FEW:
            return float(last_second)
        counted = len(self._admitted) + in_flight
        span = min(_MEASURE_S, now - (self._first_start or now))
        return counted / max(span, 1.0) if counted >= _EVIDENCE else None

    def _admit(self, now: float, latency_s: float) -> None:
        self._admitted.append(now)
        if self._admitted[0] < now - _MEASURE_S:
            self._admitted.popleft()  # bounded without a scan: one out for each one in
        best = self._best_latency
        self._best_latency = latency_s if best is None else min(best, latency_s)
        congested = best is not None and latency_s > _LATENCY_FACTOR * best + 0.05
        if not congested:
            self.limit = min(float(self.max_in_flight), self.limit + 1.0 / self.limit)
