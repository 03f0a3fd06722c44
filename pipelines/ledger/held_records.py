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


def held_records(
    ledger: Ledger, *, job: str | None = None, target_id: str | None = None
) -> list[HeldRecord]:
    """Held records, oldest first; of one job and target when given."""
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
    read: np.ndarray,
) -> None:
    """After a run that read ``read`` (key hashes): the records it held are held one run
    more (or from now); those it read and did not hold are no longer held (sent, unchanged,
    given up or rejected for another reason). Records it did not read stay as they were."""
    now = datetime.now(UTC)
    waiting = {w.key_hash: w for w in waiting}
    scope = (held.c.job == job) & (held.c.target_id == target_id)
    with ledger._begin() as conn:
        # A job holds few records (they wait for a reference), so all of them are read.
        before = {
            int(k): int(n)
            for k, n in conn.execute(sa.select(held.c.key_hash, held.c.runs).where(scope))
        }
        read_held = np.intersect1d(np.asarray(read, np.int64), np.fromiter(before, np.int64))
        gone = [int(k) for k in read_held if int(k) not in waiting]
        for lo in range(0, len(gone), _IN_CHUNK):
            conn.execute(
                sa.delete(held).where(scope, held.c.key_hash.in_(gone[lo : lo + _IN_CHUNK]))
            )
        for key, w in waiting.items():
            values = {
                "external_id": w.external_id[:255],
                "rule": w.rule,
                "value": None if w.value is None else str(w.value)[:1024],
                "watermark": w.watermark,
                "last_held_at": now,
                "last_run_id": run_id,
            }
            if key in before:
                conn.execute(
                    sa.update(held)
                    .where(scope, held.c.key_hash == key)
                    .values(**values, runs=held.c.runs + 1)
                )
            else:
                row = {"job": job, "target_id": target_id, "key_hash": key, "first_held_at": now}
                conn.execute(sa.insert(held).values(**row, **values, runs=1))
