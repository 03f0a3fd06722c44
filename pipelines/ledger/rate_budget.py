"""One rate budget per target, shared by every worker whose runs use this ledger.

A token bucket in a ledger table, one row per target. Taking tokens is one atomic
``UPDATE`` (the row lock orders concurrent workers on PostgreSQL and MariaDB; SQLite's
write lock does, for the workers of its one host):

    rate   := R × min(1, scale + RECOVER × (now − cut_at))
    tokens := min(burst, tokens + max(0, now − stamp) × rate) − k;  stamp := max(stamp, now)

The tokens may go below zero: a worker that takes k tokens owes the debt and waits until it
is paid (``-tokens / rate`` seconds), so the workers' requests queue at 1/rate intervals in
the order they asked, without a retry loop. ``now`` is the database's clock, so hosts whose
clocks differ still share one schedule. A worker leases several tokens per round trip when
the rate is high, and spaces its own uses of them at 1/rate.

A 429 that any worker gets slows them all (``pushback``, one more UPDATE): its
``Retry-After`` moves ``stamp`` that far ahead, so nothing refills and every lease waits for
it (a pause, on the database's clock), and the shared rate is cut to ``BETA`` of what it
was, recovering by ``RECOVER`` of R a second (multiplicative decrease, additive increase).
Refusals within ``CUT_GAP_S`` of a cut are the same overload: they extend the pause, and
cut nothing more. Leased tokens are scheduled ahead (a worker's lease holds 1/20 s of the
rate, so N workers' leases reach N/20 s ahead), so a worker that has not heard from the
budget for ``FRESH_S`` asks it whether a pause began before it uses one (one read, at most
every ``FRESH_S`` a worker), and a token leased during a pause asks again at its end (a
request refused just before the pause began may have extended it). Another worker's 429 thus
stops a worker within ``FRESH_S`` of its report: the price of not asking for every request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pipelines.ledger.side_tables import ensure_table

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["BETA", "FRESH_S", "RECOVER", "RateBudget", "lease_size"]

# Double, not Float: MariaDB's FLOAT is single precision, which rounds an epoch to ~128 s (the
# first version's ``rate_budgets`` table did, and paced 50/s at 2/s there). That table is left
# alone: workers of that version keep their own budget during an upgrade.
_meta = sa.MetaData()
rate_budgets = sa.Table(
    "nymble_rate_budgets",
    _meta,
    sa.Column("target_id", sa.String(200), primary_key=True),
    sa.Column("tokens", sa.Double, nullable=False),
    # Seconds since the epoch on the database's clock: tokens are counted up to here. Ahead
    # of now while a 429's Retry-After pauses every worker.
    sa.Column("stamp", sa.Double, nullable=False),
    sa.Column("scale", sa.Double, nullable=False),  # share of R allowed right after the last cut
    sa.Column("cut_at", sa.Double, nullable=False),  # when a 429 last cut it (database clock)
)

_ROUND_TRIPS_PER_S = 20  # a lease holds about 1/20 s of the rate: few trips, small bursts
BETA = 0.7  # share of the shared rate kept after a 429
RECOVER = 0.05  # share of R regained each second after a cut: back to R within 6 s
_FLOOR = 0.05  # the shared rate never falls below this share of R
CUT_GAP_S = 1.0  # refusals this soon after a cut are the same overload
FRESH_S = 0.1  # how old a worker's news of a pause may be when it uses a token
_MAX_PAUSE_S = 600.0  # an absurd Retry-After pauses no longer than the sender would wait


def lease_size(rate: float) -> int:
    """Tokens taken per round trip to the ledger."""
    return max(1, min(50, int(rate / _ROUND_TRIPS_PER_S)))


class RateBudget:
    """``take()`` blocks until one more request to ``target_id`` fits ``rate`` requests/s
    counted over every worker of the ledger; ``pushback()`` reports a 429. Thread-safe; one
    per run."""

    def __init__(
        self,
        ledger: Ledger,
        target_id: str,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.ledger, self.target_id, self.rate = ledger, target_id, float(rate)
        self.lease = lease_size(self.rate)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        # when each leased token may be used (local clock), and whether a pause set it
        self._ready: list[tuple[float, bool]] = []
        self._resume_at = 0.0  # the end of the last pause this worker knows of (local clock)
        self._heard = float("-inf")  # when this worker last read the budget's row
        self.waited_s = 0.0
        self.pauses = 0  # 429s this worker reported
        ensure_table(ledger, rate_budgets)
        self._ensure_row()

    def take(self) -> None:
        with self._lock:
            if not self._ready:
                self._ready = self._lease()
            ready, after_pause = self._ready.pop(0)
        self._wait(ready)
        while after_pause or self._clock() - self._heard > FRESH_S:
            after_pause = False
            longer = self._paused_for()  # a pause begun, or extended, meanwhile
            if longer <= 0:
                break
            self._resume_at = max(self._resume_at, self._clock() + longer)
            self._wait(self._resume_at)

    def _wait(self, ready: float) -> None:
        # a pause learned while waiting (this worker's own 429) moves the start again
        while (wait := max(ready, self._resume_at) - self._clock()) > 0:
            self.waited_s += wait
            self._sleep(wait)

    def pushback(self, retry_after: float | None) -> None:
        """A request got 429: every worker waits ``retry_after`` seconds (when the server
        said), and the shared rate is cut."""
        pause = min(max(0.0, retry_after or 0.0), _MAX_PAUSE_S)
        self.pauses += 1
        self._cut(pause)
        if pause:
            with self._lock:
                self._resume_at = max(self._resume_at, self._clock() + pause)

    def _lease(self) -> list[tuple[float, bool]]:
        """Take ``lease`` tokens; the moment each becomes usable, spaced at the shared rate
        and after any pause (then flagged: the pause may grow before it ends)."""
        k = self.lease
        left, delay, rate = self._update(k)
        asked = self._heard = self._clock()
        paused = delay > 0
        start = asked + max(0.0, delay)
        if paused:
            self._resume_at = max(self._resume_at, start)
        available = left + k  # tokens there before this lease
        return [(start + max(0.0, j + 1 - available) / rate, paused) for j in range(k)]

    def _paused_for(self) -> float:
        """Seconds until the shared pause ends (0 or less: none)."""
        t, now = rate_budgets.c, _now(self._dialect)
        query = sa.select(t.stamp - now).where(t.target_id == self.target_id)
        with self.ledger._begin() as conn:  # noqa: SLF001
            found = float(conn.scalar(query))
        self._heard = self._clock()
        return found

    def _update(self, k: int) -> tuple[float, float, float]:
        """(tokens left, seconds until the pause ends, shared rate now) after taking k."""
        t, now = rate_budgets.c, _now(self._dialect)
        smaller, larger = _min_max(self._dialect)
        rate = self._shared_rate(now)
        refill = t.tokens + larger(0.0, now - t.stamp) * rate
        burst = float(k)  # an idle budget holds one lease: no burst above the rate
        # tokens before stamp: MariaDB assigns left to right, each seeing the ones before.
        values = {"tokens": smaller(burst, refill) - k, "stamp": larger(t.stamp, now)}
        answer = (t.tokens, t.stamp - now, rate)
        return self._write(values, answer)

    def _cut(self, pause: float) -> None:
        """One UPDATE: pause every worker until now + ``pause`` (keeping the debt of tokens
        already leased), and cut the shared rate once per overload."""
        t, now = rate_budgets.c, _now(self._dialect)
        smaller, larger = _min_max(self._dialect)
        fresh = now - t.cut_at >= CUT_GAP_S
        cut = larger(_FLOOR, self._scale_now(now) * BETA)
        # scale before cut_at: MariaDB's scale must see the cut_at it replaces
        values = {
            "tokens": smaller(t.tokens, 0.0),
            "stamp": larger(t.stamp, now + pause),
            "scale": sa.case((fresh, cut), else_=t.scale),
            "cut_at": sa.case((fresh, now), else_=t.cut_at),
        }
        self._write(values, (t.tokens, t.stamp, t.scale))

    def _scale_now(self, now: sa.ColumnElement) -> sa.ColumnElement:
        smaller, larger = _min_max(self._dialect)
        c = rate_budgets.c
        return smaller(1.0, c.scale + RECOVER * larger(0.0, now - c.cut_at))

    def _shared_rate(self, now: sa.ColumnElement) -> sa.ColumnElement:
        return self._scale_now(now) * self.rate

    def _write(self, values: dict, answer: tuple) -> tuple[float, ...]:
        """Apply ``values`` to this target's row; ``answer`` read from the row as written."""
        mine = rate_budgets.c.target_id == self.target_id
        update = sa.update(rate_budgets).where(mine).values(values)
        with self.ledger._begin() as conn:  # noqa: SLF001 - ledger/ talks to its database
            if self._dialect in ("mysql", "mariadb"):  # no UPDATE ... RETURNING there
                conn.execute(update)  # the row stays locked until the commit
                row = conn.execute(sa.select(*answer).where(mine)).one()
            else:
                if self._dialect == "postgresql":  # a lost budget update costs nothing: no fsync
                    conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
                row = conn.execute(update.returning(*answer)).one()
        return tuple(float(v) for v in row)

    def _ensure_row(self) -> None:
        t = rate_budgets.c
        with self.ledger._begin() as conn:  # noqa: SLF001
            found = conn.scalar(sa.select(t.target_id).where(t.target_id == self.target_id))
        if found is not None:
            return
        # stamp and cut_at long ago on any clock: a full bucket (of one lease), no cut
        row = {"target_id": self.target_id, "tokens": 1.0, "stamp": 0.0, "scale": 1.0}
        try:
            with self.ledger._engine.begin() as conn:  # noqa: SLF001
                conn.execute(sa.insert(rate_budgets).values(**row, cut_at=0.0))
        except sa.exc.IntegrityError:
            pass  # another worker made it a moment ago: the same budget

    @property
    def _dialect(self) -> str:
        return self.ledger._engine.dialect.name  # noqa: SLF001


def _now(dialect: str) -> sa.ColumnElement:
    """The database's clock in seconds since the epoch, as a float."""
    if dialect == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Double)
    if dialect in ("mysql", "mariadb"):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Double)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def _min_max(dialect: str) -> tuple[Callable, Callable]:
    if dialect == "sqlite":  # SQLite's two-argument min/max are scalar functions
        return sa.func.min, sa.func.max
    return sa.func.least, sa.func.greatest
