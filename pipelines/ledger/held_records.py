"""Records held back because the target lacks what they reference (an order's customer or
SKU): kept per job and target across runs, so that a job's ``hold`` policy can give up on
them after a number of runs or an age, and an operator can list them (``nymble-sync held``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from pipelines.ledger.schema import held

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["HeldRecord", "Waiting", "held_records", "record_held"]

_IN_CHUNK = 500  # bound the number of values in one IN (...) list


@dataclass(frozen=True)
class Waiting:
    """A record a run held back: its key, what it waits for, its watermark value."""

    key_hash: int
    external_id: str
    rule: str  # unknown_customer, unknown_sku
    value: str | None  # the customer number, or "line N: SKU"
    watermark: str | None = None


@dataclass(frozen=True)
class HeldRecord:
    job: str
    target_id: str
    key_hash: int
    external_id: str
    rule: str
    value: str | None
    watermark: str | None
    first_held_at: datetime
    last_held_at: datetime
    runs: int
    last_run_id: int | None
    given_up_at: datetime | None = None  # the hold policy gave up: no longer waited for

    @property
    def waiting(self) -> bool:
        return self.given_up_at is None


def held_records(
    ledger: Ledger, *, job: str | None = None, target_id: str | None = None
) -> list[HeldRecord]:
    """Held records (waiting, or given up by the job's hold policy), oldest first; of one job
    and target when given."""
    stmt = sa.select(held).order_by(held.c.first_held_at, held.c.external_id)
    if job is not None:
        stmt = stmt.where(held.c.job == job)
    if target_id is not None:
        stmt = stmt.where(held.c.target_id == target_id)
    with ledger._begin() as conn:  # the ledger's transaction and error translation
        if not sa.inspect(conn).has_table(held.name):  # a ledger no run of this version wrote
            return []
        return [HeldRecord(**row._mapping) for row in conn.execute(stmt)]


def record_held(
    ledger: Ledger,
    *,
    job: str,
    target_id: str,
    run_id: int,
    waiting: Iterable[Waiting],
    given_up: Iterable[Waiting],
    read: np.ndarray,
) -> None:
    """After a run that read ``read`` (key hashes): the records it held are held one run
    more (or from now); those it gave up on are marked so, and stay given up when read
    again; those it read and neither held nor gave up on are no longer held (sent,
    unchanged or rejected for another reason). Records it did not read stay as they were."""
    now = datetime.now(UTC)
    waiting = {w.key_hash: w for w in waiting}
    given_up = {w.key_hash for w in given_up}
    scope = (held.c.job == job) & (held.c.target_id == target_id)
    with ledger._begin() as conn:
        # A job holds few records (they wait for a reference), so all of them are read.
        query = sa.select(held.c.key_hash, held.c.runs).where(scope)
        before = {int(k): int(n) for k, n in conn.execute(query)}
        read_held = np.intersect1d(np.asarray(read, np.int64), np.fromiter(before, np.int64))
        gone = [int(k) for k in read_held if int(k) not in waiting and int(k) not in given_up]
        for lo in range(0, len(gone), _IN_CHUNK):
            part = gone[lo : lo + _IN_CHUNK]
            conn.execute(sa.delete(held).where(scope, held.c.key_hash.in_(part)))
        mark = sorted(k for k in given_up if k in before)
        for lo in range(0, len(mark), _IN_CHUNK):
            part = mark[lo : lo + _IN_CHUNK]
            conn.execute(
                sa.update(held)
                .where(scope, held.c.key_hash.in_(part), held.c.given_up_at.is_(None))
                .values(given_up_at=now, last_run_id=run_id)
            )
        for key, w in waiting.items():
            _hold(conn, scope, job, target_id, run_id, w, now, known=key in before)


def _hold(conn, scope, job, target_id, run_id, w: Waiting, now: datetime, *, known: bool):
    values = {
        "external_id": w.external_id[:255],
        "rule": w.rule,
        "value": None if w.value is None else str(w.value)[:1024],
        "watermark": w.watermark,
        "last_held_at": now,
        "last_run_id": run_id,
    }
    if known:
        stmt = sa.update(held).where(scope, held.c.key_hash == w.key_hash)
        conn.execute(stmt.values(**values, runs=held.c.runs + 1))
    else:
        row = {"job": job, "target_id": target_id, "key_hash": w.key_hash, "first_held_at": now}
        conn.execute(sa.insert(held).values(**row, **values, runs=1))
