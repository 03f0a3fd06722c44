"""Folding old batch outcomes into snapshot rows, so reading a scope stays fast for months.

Every acknowledged batch adds one outcome row; nightly runs would grow a scope without
bound. Compaction replaces the rows of all but the newest runs with snapshot rows that
hold only each key's last outcome, in the same table (``batch_id='snapshot'``, tier 0,
which orders them before every batch row). A snapshot row holds the survivors of one
origin run, so each record keeps the id of the run that last sent it; its ``at`` is the
time of that run's last batch holding a survivor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from pipelines.ledger.bulk import fetch_chunks
from pipelines.ledger.records import (
    FAILED,
    OUTCOME_BLOBS,
    decode_detail,
    encode_detail,
    last_outcomes,
)
from pipelines.ledger.schema import BATCH_TIER, SNAPSHOT_TIER, batch_outcomes
from pipelines.ops.record_files import RecordFile

__all__ = ["SNAPSHOT_BATCH_ID", "compact_scope"]

SNAPSHOT_BATCH_ID = "snapshot"
_SNAPSHOT_RECORDS = 50_000  # records per snapshot row: well inside MariaDB's 16 MB packet
_IN_CHUNK = 500  # bound the number of values in one IN (...) list
_COUNT_BUCKET = 1 << 20  # keys counted at a time (8 MB)
_FETCH_ROWS = 64  # outcome rows read at a time
_KEY = np.dtype([("key", "<i8")])


def compact_scope(conn: sa.Connection, *, target_id: str, entity: str, keep_runs: int) -> int:
    """Fold the outcome rows of runs older than the newest ``keep_runs`` into snapshot rows,
    if the scope holds more than twice as many outcomes as distinct keys; return the number
    of rows folded. Runs in ``conn``'s transaction, so readers see before or after only.
    """
    if keep_runs < 1:
        raise ValueError(f"keep_runs must be at least 1; got {keep_runs}")
    scope = (batch_outcomes.c.target_id == target_id, batch_outcomes.c.entity == entity)
    cutoff = _cutoff(conn, scope, keep_runs)  # cheap: one aggregate over the scope's rows
    if cutoff is None or not _redundant(conn, scope):
        return 0
    t = batch_outcomes
    blobs = (*(t.c[name] for name in OUTCOME_BLOBS), t.c.detail)
    folded = (
        conn.execute(
            sa.select(t.c.seq, t.c.tier, t.c.run_id, t.c.at, *blobs)
            .where(*scope, sa.or_(t.c.tier == SNAPSHOT_TIER, t.c.seq < cutoff))
            .order_by(t.c.tier, t.c.seq)
        )
        .mappings()
        .all()
    )
    if all(row["tier"] == SNAPSHOT_TIER for row in folded):
        return 0  # only runs that overlapped the kept ones are older: nothing to fold yet
    fixed = {"batch_id": SNAPSHOT_BATCH_ID, "target_id": target_id, "entity": entity}
    conn.execute(sa.insert(t), [fixed | row for row in _snapshot(folded)])
    seqs = [row["seq"] for row in folded]
    for lo in range(0, len(seqs), _IN_CHUNK):
        conn.execute(sa.delete(t).where(t.c.seq.in_(seqs[lo : lo + _IN_CHUNK])))
    return len(folded)


def _cutoff(conn: sa.Connection, scope: tuple, keep_runs: int) -> int | None:
    """The first seq of the newest ``keep_runs`` runs; None if there are no older runs."""
    t = batch_outcomes
    firsts = conn.execute(
        sa.select(t.c.run_id, sa.func.min(t.c.seq))
        .where(*scope, t.c.tier == BATCH_TIER)
        .group_by(t.c.run_id)
        .order_by(t.c.run_id.desc())
    ).all()
    if len(firsts) <= keep_runs:
        return None
    # Rows are folded by seq, not run: a run that overlapped a kept one keeps its later rows,
    # so every snapshot entry is older than every row left behind.
    return min(first for _run, first in firsts[:keep_runs])


def _redundant(conn: sa.Connection, scope: tuple) -> bool:
    """Whether the scope holds more than twice as many outcomes as distinct keys.

    Keys are counted bucket by bucket (spread by their top bits over temporary files), so
    a scope of 10,000,000 records costs a few MB here, not the ~160 MB of sorting them all.
    """
    t = batch_outcomes
    total = int(conn.scalar(sa.select(sa.func.sum(t.c.record_count)).where(*scope)) or 0)
    bits = 0
    while (total >> bits) > _COUNT_BUCKET and bits < 16:
        bits += 1
    buckets: dict[int, RecordFile] = {}
    for rows in fetch_chunks(conn, sa.select(t.c["keys"]).where(*scope), _FETCH_ROWS):
        keys = np.concatenate([np.frombuffer(blob, dtype=np.int64) for (blob,) in rows])
        ids = (keys >> (64 - bits)) + (1 << (bits - 1)) if bits else np.zeros(len(keys), int)
        for bucket in np.unique(ids).tolist():
            if bucket not in buckets:
                buckets[bucket] = RecordFile(_KEY)
            buckets[bucket].append(keys[ids == bucket].view(_KEY))
    distinct = 0
    for file in buckets.values():
        keys = np.sort(file.read(0, len(file))["key"])
        file.close()
        distinct += np.count_nonzero(keys[1:] != keys[:-1]) + 1  # far faster than np.unique
    return total > 2 * distinct


def _snapshot(folded: Sequence[sa.RowMapping]) -> Iterator[dict[str, Any]]:
    """The snapshot rows of ``folded`` (in time order): the surviving outcomes of each
    origin run, in time order, with that run's id and the time of its last batch holding
    one of them; at most ``_SNAPSHOT_RECORDS`` to a row."""
    key_blocks = [np.frombuffer(row["keys"], dtype=np.int64) for row in folded]
    keys = np.concatenate(key_blocks)
    hashes = np.concatenate([np.frombuffer(row["hashes"], dtype=np.int64) for row in folded])
    codes = np.concatenate([np.frombuffer(row["statuses"], dtype=np.int8) for row in folded])
    kept = _survivors(keys, codes)
    sizes = np.array([block.size for block in key_blocks])
    source = np.repeat(np.arange(len(folded)), sizes)[kept]  # the folded row of each survivor
    external_ids, messages, detail_at = _detail(folded, sizes, kept, source)
    run_ids = np.array([row["run_id"] for row in folded], dtype=np.int64)[source]
    starts = np.flatnonzero(np.diff(run_ids)) + 1  # where the origin run changes
    for group in np.split(np.arange(kept.size), starts):
        for lo in range(0, group.size, _SNAPSHOT_RECORDS):
            part = group[lo : lo + _SNAPSHOT_RECORDS]
            newest = folded[int(source[part[-1]])]
            at = pa.array(detail_at[part])
            yield {
                "run_id": newest["run_id"],
                "tier": SNAPSHOT_TIER,
                "record_count": int(part.size),
                "at": newest["at"],
                "keys": keys[kept[part]].tobytes(),
                "hashes": hashes[kept[part]].tobytes(),
                "statuses": codes[kept[part]].tobytes(),
                "detail": encode_detail(external_ids.take(at), messages.take(at)),
            }


def _detail(
    folded: Sequence[sa.RowMapping], sizes: np.ndarray, kept: np.ndarray, source: np.ndarray
) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """The detail columns of the rows holding survivors, and each survivor's position in them.

    Rows without survivors (most of them, after full runs) are never decoded.
    """
    needed = np.flatnonzero(np.bincount(source, minlength=len(folded)))
    tables = [decode_detail(folded[int(i)]["detail"]) for i in needed]
    detail = pa.concat_tables(tables)
    row_start = np.cumsum(sizes) - sizes  # of each folded row, among all outcomes
    detail_start = np.zeros(len(folded), np.int64)
    detail_start[needed] = np.cumsum(sizes[needed]) - sizes[needed]
    positions = kept - row_start[source] + detail_start[source]
    return (
        detail["external_id"].combine_chunks(),
        detail["message"].combine_chunks(),
        positions,
    )


def _survivors(keys: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Positions, in time order, of each key's last outcome and, if that one failed, of its
    last acknowledged one before it: the content the API still holds."""
    distinct, last = last_outcomes(keys)
    failed_keys = distinct[codes[last] == FAILED]
    if not failed_keys.size:
        return np.sort(last)
    acked_at = np.flatnonzero(codes != FAILED)
    acked_keys, acked_last = last_outcomes(keys[acked_at])
    before_failure = acked_at[acked_last[np.isin(acked_keys, failed_keys, assume_unique=True)]]
    return np.sort(np.concatenate([last, before_failure]))
