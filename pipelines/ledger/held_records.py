"""Records held back because the target lacks what they reference (an order's customer or
SKU): kept per job and target across runs, so that a job's ``hold`` policy can give up on
them after a number of runs or an age, and an operator can list them (``nymble-sync held``).

A run may hold millions (a migration before its customers are loaded), so a run's path is
columnar: what it held comes as :class:`~pipelines.ledger.held_columns.HeldColumns`, the
keys the ledger holds are read as a sorted array, and the writes go in batches of a few
thousand rows per driver ``executemany``, all in one transaction at the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from pipelines.ledger.bulk import DriverStatement, executemany, fetch_chunks
from pipelines.ledger.held_columns import HeldColumns
from pipelines.ledger.key_sets import in_sorted
from pipelines.ledger.schema import held

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["HeldRecord", "held_count", "held_key_hashes", "held_records", "record_held"]

_ROWS = 5000  # rows per executemany: bounds the Python rows alive at once
_FETCH = 65536  # key hashes read per fetch


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
    ledger: Ledger,
    *,
    job: str | None = None,
    target_id: str | None = None,
    waiting: bool = False,
    last_run_id: int | None = None,
    limit: int | None = None,
) -> list[HeldRecord]:
    """Held records (waiting, or given up by the job's hold policy), oldest first; of one job
    and target when given; with ``waiting``, only those still waited for; with
    ``last_run_id``, only those that run held; at most ``limit``."""
    stmt = sa.select(held).where(*_filters(job, target_id, waiting, last_run_id))
    stmt = stmt.order_by(held.c.first_held_at, held.c.external_id).limit(limit)
    with ledger._begin() as conn:  # the ledger's transaction and error translation
        if not sa.inspect(conn).has_table(held.name):  # a ledger no run of this version wrote
            return []
        return [HeldRecord(**row._mapping) for row in conn.execute(stmt)]


def held_count(
    ledger: Ledger, *, job: str, waiting: bool = False, last_run_id: int | None = None
) -> int:
    """How many records :func:`held_records` would list without a limit."""
    stmt = sa.select(sa.func.count()).select_from(held)
    stmt = stmt.where(*_filters(job, None, waiting, last_run_id))
    with ledger._begin() as conn:
        if not sa.inspect(conn).has_table(held.name):
            return 0
        return int(conn.scalar(stmt) or 0)


def _filters(
    job: str | None, target_id: str | None, waiting: bool, last_run_id: int | None
) -> list[sa.ColumnElement[bool]]:
    found = [] if job is None else [held.c.job == job]
    found += [] if target_id is None else [held.c.target_id == target_id]
    found += [held.c.given_up_at.is_(None)] if waiting else []
    found += [] if last_run_id is None else [held.c.last_run_id == last_run_id]
    return found


def held_key_hashes(
    ledger: Ledger,
    *,
    job: str,
    target_id: str,
    max_runs: int | None = None,
    max_age: timedelta | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Key hashes (sorted) of the records held for ``job`` at ``target_id``, and those of
    them no longer waited for: given up on, or held past ``max_runs`` runs or ``max_age``
    (a job's hold policy, as :meth:`HoldPolicy.expired` decides it)."""
    scope = (held.c.job == job) & (held.c.target_id == target_id)
    past = [held.c.given_up_at.is_not(None)]
    if max_runs is not None:
        past.append(held.c.runs >= max_runs)
    if max_age is not None:
        since = datetime.now(UTC) - max_age
        past.append(held.c.first_held_at <= sa.bindparam("since", since, held.c.first_held_at.type))
    with ledger._begin() as conn:
        if not sa.inspect(conn).has_table(held.name):
            return np.empty(0, np.int64), np.empty(0, np.int64)
        every = _key_array(conn, sa.select(held.c.key_hash).where(scope))
        expired = _key_array(conn, sa.select(held.c.key_hash).where(scope, sa.or_(*past)))
    return every, expired


def record_held(
    ledger: Ledger,
    *,
    job: str,
    target_id: str,
    run_id: int,
    waiting: HeldColumns,
    given_up: np.ndarray,
    read: np.ndarray,
) -> None:
    """After a run that read ``read`` (key hashes): the records it held (``waiting``) are
    held one run more (or from now); those it gave up on (``given_up``, key hashes) are
    marked so, and stay given up when read again; those it read and neither held nor gave
    up on are no longer held (sent, unchanged or rejected for another reason). Records it
    did not read stay as they were. One record held twice keeps its last hold."""
    now = datetime.now(UTC)
    keys = waiting.keys()
    held_now = np.sort(keys)  # one copy (np.unique makes three): repeats do no harm here
    last = _last_of_each(keys, held_now)
    given_up = np.unique(np.asarray(given_up, np.int64))
    fixed = {"b_job": job, "b_target": target_id, "b_now": now, "b_run": run_id}
    with ledger._begin() as conn:
        statements = _Statements(conn.dialect)
        scope = (held.c.job == job) & (held.c.target_id == target_id)
        before = _key_array(conn, sa.select(held.c.key_hash).where(scope))
        # Binary searches against sorted arrays: no copy of the keys to sort (intersect1d's).
        read = np.asarray(read, np.int64)
        read_held = np.unique(read[in_sorted(before, read)])
        gone = read_held[~in_sorted(held_now, read_held) & ~in_sorted(given_up, read_held)]
        _each_key(conn, statements.delete, gone, fixed)
        _each_key(conn, statements.give_up, np.intersect1d(given_up, before), fixed)
        start = 0
        for batch in waiting.batches(_ROWS):
            stop = start + batch.num_rows
            batch_keys = keys[start:stop]
            pick = last[start:stop] if last is not None else np.ones(len(batch_keys), bool)
            known = in_sorted(before, batch_keys)
            rows = _rows(batch)
            for statement, where in ((statements.again, known), (statements.new, ~known)):
                chosen = [rows[i] for i in np.flatnonzero(pick & where).tolist()]
                if chosen:
                    executemany(conn, statement, chosen, fixed)
            start = stop


_TEXTS = ("external_id", "rule", "value", "watermark")  # a held record's columns, in rows
_ROW = ("b_key", *(f"b_{name}" for name in _TEXTS))  # the parameters each row supplies
_FIXED = ("b_job", "b_target", "b_now", "b_run")  # those each statement takes once


class _Statements:
    """The statements of :func:`record_held`, compiled for one dialect and run at the driver
    (SQLAlchemy's per-row work would cost more than the database at a million rows)."""

    def __init__(self, dialect: sa.Dialect):
        def bind(name: str, column: str) -> sa.BindParameter:
            return sa.bindparam(name, type_=held.c[column].type)

        one = (
            (held.c.job == bind("b_job", "job"))
            & (held.c.target_id == bind("b_target", "target_id"))
            & (held.c.key_hash == bind("b_key", "key_hash"))
        )
        texts = {name: bind(f"b_{name}", name) for name in _TEXTS}
        run = bind("b_run", "last_run_id")
        delete = sa.delete(held).where(one)
        give_up = (
            sa.update(held)
            .where(one, held.c.given_up_at.is_(None))  # given up once: its time stays
            .values(given_up_at=bind("b_now", "given_up_at"), last_run_id=run)
        )
        again = (
            sa.update(held)
            .where(one)
            .values(**texts, last_held_at=bind("b_now", "last_held_at"), last_run_id=run)
            .values(runs=held.c.runs + 1)
        )
        new = sa.insert(held).values(
            job=bind("b_job", "job"),
            target_id=bind("b_target", "target_id"),
            key_hash=bind("b_key", "key_hash"),
            first_held_at=bind("b_now", "first_held_at"),
            last_held_at=bind("b_now", "last_held_at"),
            last_run_id=run,
            runs=1,
            **texts,
        )
        compile = DriverStatement.compile
        self.delete = compile(dialect, delete, ("b_key",), ("b_job", "b_target"))
        self.give_up = compile(dialect, give_up, ("b_key",), _FIXED)
        self.again = compile(dialect, again, _ROW, _FIXED)
        self.new = compile(dialect, new, _ROW, _FIXED)


def _rows(batch) -> list[tuple]:
    """A batch of held records as parameter rows (``_ROW``), cut to the columns' sizes."""
    keys, ids, rules, values, marks = (batch.column(i).to_pylist() for i in range(5))
    ids = [i[:255] for i in ids]
    values = [None if v is None else v[:1024] for v in values]
    return list(zip(keys, ids, rules, values, marks, strict=True))


def _each_key(conn: sa.Connection, statement: DriverStatement, keys: np.ndarray, fixed) -> None:
    for lo in range(0, len(keys), _ROWS):
        executemany(conn, statement, [(k,) for k in keys[lo : lo + _ROWS].tolist()], fixed)


def _key_array(conn: sa.Connection, stmt: sa.Select) -> np.ndarray:
    """The key hashes ``stmt`` selects, sorted, as one array (no Python object per key)."""
    parts = [
        np.array([row[0] for row in rows], np.int64) for rows in fetch_chunks(conn, stmt, _FETCH)
    ]
    return np.sort(np.concatenate([np.empty(0, np.int64), *parts]))


def _last_of_each(keys: np.ndarray, ordered: np.ndarray) -> np.ndarray | None:
    """Where each key is at its last place (a record held twice keeps its last hold), or
    None when no key comes twice (``ordered``: the keys, sorted)."""
    if not (ordered[1:] == ordered[:-1]).any():  # the common case: no second sort
        return None
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    last = np.zeros(len(keys), dtype=bool)
    last[len(keys) - 1 - first_from_end] = True
    return last
