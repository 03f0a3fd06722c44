"""One rate budget per target, shared by every worker whose runs use this ledger.

A token bucket in a ledger table, one row per target. Taking tokens is one atomic
``UPDATE`` (the row lock orders concurrent workers on PostgreSQL and MariaDB; SQLite's
write lock does, for the workers of its one host):

    tokens := min(burst, tokens + (now - stamp) * rate) - k;  stamp := now

The tokens may go below zero: a worker that takes k tokens owes the debt and waits until it
is paid (``-tokens / rate`` seconds), so the workers' requests queue at 1/rate intervals in
the order they asked, without a retry loop. ``now`` is the database's clock, so hosts whose
clocks differ still share one schedule. A worker leases several tokens per round trip when
the rate is high, and spaces its own uses of them at 1/rate.
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

__all__ = ["RateBudget", "lease_size"]

_meta = sa.MetaData()
rate_budgets = sa.Table(
    "rate_budgets",
    _meta,
    sa.Column("target_id", sa.String(200), primary_key=True),
    sa.Column("tokens", sa.Float, nullable=False),
    sa.Column("stamp", sa.Float, nullable=False),  # seconds since the epoch, database clock
)

_ROUND_TRIPS_PER_S = 20  # a lease holds about 1/20 s of the rate: few trips, small bursts


def lease_size(rate: float) -> int:
    """Tokens taken per round trip to the ledger."""
    return max(1, min(50, int(rate / _ROUND_TRIPS_PER_S)))


class RateBudget:
    """``take()`` blocks until one more request to ``target_id`` fits ``rate`` requests/s
    counted over every worker of the ledger. Thread-safe; one per run."""

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
        self._ready: list[float] = []  # when each leased token may be used (local clock)
        self.waited_s = 0.0
        ensure_table(ledger, rate_budgets)
        self._ensure_row()

    def take(self) -> None:
        with self._lock:
            if not self._ready:
                self._ready = self._lease()
            ready = self._ready.pop(0)
        wait = ready - self._clock()
        if wait > 0:
            self.waited_s += wait
            self._sleep(wait)

    def _lease(self) -> list[float]:
        """Take ``lease`` tokens; the moment each becomes usable, spaced at 1/rate."""
        k = self.lease
        left = self._update(k)
        asked = self._clock()
        available = left + k  # tokens there before this lease
        return [asked + max(0.0, j + 1 - available) / self.rate for j in range(k)]

    def _update(self, k: int) -> float:
        t, now = rate_budgets.c, _now(self._dialect)
        smaller, larger = _min_max(self._dialect)
        refill = t.tokens + larger(0.0, now - t.stamp) * self.rate
        burst = float(k)  # an idle budget holds one lease: no burst above the rate
        # tokens before stamp: MariaDB assigns left to right, each seeing the ones before.
        values = {"tokens": smaller(burst, refill) - k, "stamp": larger(t.stamp, now)}
        mine = t.target_id == self.target_id
        update = sa.update(rate_budgets).where(mine).values(values)
        with self.ledger._begin() as conn:  # noqa: SLF001 - ledger/ talks to its database
            if self._dialect in ("mysql", "mariadb"):  # no UPDATE ... RETURNING there
                conn.execute(update)  # the row stays locked until the commit
                return float(conn.scalar(sa.select(t.tokens).where(mine)))
            if self._dialect == "postgresql":  # a lost budget update costs nothing: no fsync
                conn.execute(sa.text("SET LOCAL synchronous_commit = off"))
            return float(conn.scalar(update.returning(t.tokens)))

    def _ensure_row(self) -> None:
        t = rate_budgets.c
        with self.ledger._begin() as conn:  # noqa: SLF001
            found = conn.scalar(sa.select(t.target_id).where(t.target_id == self.target_id))
        if found is not None:
            return
        row = {"target_id": self.target_id, "tokens": 1.0, "stamp": time.time()}
        try:
            with self.ledger._engine.begin() as conn:  # noqa: SLF001
                conn.execute(sa.insert(rate_budgets).values(row))
        except sa.exc.IntegrityError:
            pass  # another worker made it a moment ago: the same budget

    @property
    def _dialect(self) -> str:
        return self.ledger._engine.dialect.name  # noqa: SLF001


def _now(dialect: str) -> sa.ColumnElement:
    """The database's clock in seconds since the epoch, as a float."""
    if dialect == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    if dialect in ("mysql", "mariadb"):
        return sa.cast(sa.func.unix_timestamp(sa.func.now(6)), sa.Float)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def _min_max(dialect: str) -> tuple[Callable, Callable]:
    if dialect == "sqlite":  # SQLite's two-argument min/max are scalar functions
        return sa.func.min, sa.func.max
    return sa.func.least, sa.func.greatest
