"""Which keys a shard run read, kept for the run group's finalize step.

Mirror mode deactivates what a whole feed no longer holds. No shard reads the whole feed,
and ``run --finalize`` reads none of it: each shard run of a mirror-mode job records the
key hashes of its share (sorted, distinct, int64, as the ledger keys records), and the
finalize step takes their union as the feed. A shard run that read a subset on purpose
(``--partial``) records that it did instead, so the finalize step can say why it refuses.

Two tables outside the versioned schema (see :mod:`.side_tables`): one row per recording
run, and its keys in parts of at most ``PART_KEYS`` (4 MB blobs, under MariaDB's default
packet limit). Only the keys of the newest ``KEEP_RUNS`` recording runs of each shard job
and target are kept: a finalize step is run right after its shards, not weeks later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from pipelines.ledger.schema import runs
from pipelines.ledger.side_tables import ensure_table

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["KEEP_RUNS", "SeenFeed", "record_seen_keys", "seen_feeds", "seen_keys"]

PART_KEYS = 500_000
KEEP_RUNS = 3

_meta = sa.MetaData()
seen_feeds_table = sa.Table(
    "nymble_seen_feeds",
    _meta,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("whole_feed", sa.Boolean, nullable=False),  # False: --partial, no keys kept
    sa.Column("key_count", sa.BigInteger, nullable=False),
)
seen_keys_table = sa.Table(
    "nymble_seen_keys",
    _meta,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("part", sa.Integer, primary_key=True, autoincrement=False),
    # Up to 4 GB: MySQL and MariaDB make a BLOB of this length a LONGBLOB.
    sa.Column("keys", sa.LargeBinary(2**32 - 1), nullable=False),
)


@dataclass(frozen=True)
class SeenFeed:
    run_id: int
    whole_feed: bool
    key_count: int


def record_seen_keys(
    ledger: Ledger, run_id: int, keys: np.ndarray | None, *, job: str, target_id: str
) -> None:
    """Keep ``keys`` (sorted, distinct key hashes; None: the run read part of the feed on
    purpose) as what run ``run_id`` of ``job`` read, and forget the keys of that job's
    older runs but the newest ``KEEP_RUNS``."""
    for table in (seen_feeds_table, seen_keys_table):
        ensure_table(ledger, table)
    found = np.empty(0, np.int64) if keys is None else np.ascontiguousarray(keys, np.int64)
    parts = [
        {"run_id": run_id, "part": i, "keys": found[lo : lo + PART_KEYS].tobytes()}
        for i, lo in enumerate(range(0, found.size, PART_KEYS))
    ]
    row = {"run_id": run_id, "whole_feed": keys is not None, "key_count": int(found.size)}
    with ledger._begin() as conn:  # noqa: SLF001 - ledger/ talks to its database
        for part in parts:  # one part at a time: a statement stays under the packet limit
            conn.execute(sa.insert(seen_keys_table).values(part))
        conn.execute(sa.insert(seen_feeds_table).values(row))  # last: the keys are complete
        _forget_older(conn, job=job, target_id=target_id)


def seen_feeds(ledger: Ledger, run_ids: list[int]) -> dict[int, SeenFeed]:
    """What each of ``run_ids`` recorded of its feed (absent: nothing)."""
    if not run_ids or not _present(ledger):
        return {}
    t = seen_feeds_table
    query = sa.select(t.c.run_id, t.c.whole_feed, t.c.key_count).where(t.c.run_id.in_(run_ids))
    with ledger._begin() as conn:  # noqa: SLF001
        return {
            r.run_id: SeenFeed(r.run_id, bool(r.whole_feed), r.key_count)
            for r in conn.execute(query)
        }


def seen_keys(ledger: Ledger, run_ids: list[int]) -> np.ndarray:
    """The union of the keys ``run_ids`` recorded: sorted, distinct."""
    found = [np.empty(0, np.int64)]
    if run_ids and _present(ledger):
        t = seen_keys_table
        query = sa.select(t.c["keys"]).where(t.c.run_id.in_(run_ids)).order_by(t.c.run_id, t.c.part)
        with ledger._begin() as conn:  # noqa: SLF001
            found += [np.frombuffer(blob, dtype=np.int64) for (blob,) in conn.execute(query)]
    return np.unique(np.concatenate(found))


def _forget_older(conn: sa.Connection, *, job: str, target_id: str) -> None:
    t = seen_feeds_table
    mine = (
        sa.select(t.c.run_id)
        .join(runs, runs.c.run_id == t.c.run_id)
        .where(runs.c.job == job, runs.c.target_id == target_id)
        .order_by(t.c.run_id.desc())
    )
    old = [row.run_id for row in conn.execute(mine.offset(KEEP_RUNS))]
    if old:
        conn.execute(sa.delete(seen_keys_table).where(seen_keys_table.c.run_id.in_(old)))
        conn.execute(sa.delete(t).where(t.c.run_id.in_(old)))


def _present(ledger: Ledger) -> bool:
    with ledger._begin() as conn:  # noqa: SLF001
        return sa.inspect(conn).has_table(seen_feeds_table.name)
