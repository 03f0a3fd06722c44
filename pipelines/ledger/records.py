"""Per-record outcomes, stored as one row of columns per batch, and what the API acknowledged.

These are the ledger's hot paths (a million records per run). A batch's outcomes go in as
one row of blobs (``ndarray.tobytes()`` and an Arrow IPC stream), so the database does
one insert per batch instead of one B-tree update per record; per-record state is derived
in numpy when it is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import sqlalchemy as sa

from pipelines.ledger.bulk import DriverStatements, executemany, fetch_chunks
from pipelines.ledger.models import RECORD_STATUSES, check_status
from pipelines.ledger.schema import BATCH_TIER, batch_outcomes

__all__ = [
    "ADOPTED_BATCH",
    "FAILED",
    "OUTCOME_BLOBS",
    "decode_detail",
    "encode_detail",
    "encode_outcomes",
    "last_outcomes",
    "load_acked_state",
    "outcome_blocks",
    "outcome_total",
    "write_outcomes",
]

# A status's code is its index in RECORD_STATUSES: 0 created, 1 updated, 2 failed.
_CODES = {status: code for code, status in enumerate(RECORD_STATUSES)}
FAILED = _CODES["failed"]
OUTCOME_BLOBS = ("keys", "hashes", "statuses")
# Outcomes of records `run --adopt` found already held by the org are stored under batch ids
# with this prefix: acknowledged like any other, but no request carried them.
ADOPTED_BATCH = "adopted-"
_DETAIL = pa.schema([("external_id", pa.string()), ("message", pa.string())])
# Arrow's own thread pool costs more than compressing a few kilobytes takes.
_WRITE_DETAIL = ipc.IpcWriteOptions(compression="lz4", use_threads=False)
_READ_DETAIL = ipc.IpcReadOptions(use_threads=False)
_FETCH_ROWS = 500
# Outcome rows fetched at a time when streaming: a snapshot row holds up to 50,000 records,
# so a fetch stays within a few MB whatever the rows hold.
_STREAM_ROWS = 16
_ROW = (
    "run_id",
    "batch_id",
    "target_id",
    "entity",
    "tier",
    "record_count",
    *OUTCOME_BLOBS,
    "detail",
)


def encode_outcomes(
    *,
    external_ids: Sequence[str],
    key_hashes: np.ndarray,
    content_hashes: np.ndarray,
    statuses: Sequence[str],
    messages: Sequence[str | None],
) -> dict[str, Any] | None:
    """A batch's outcomes as the columns of its row (None for an empty batch).

    Raises ValueError for columns of different lengths or an unknown status.
    """
    keys = np.ascontiguousarray(key_hashes, dtype=np.int64)
    contents = np.ascontiguousarray(content_hashes, dtype=np.int64)
    _check_lengths(external_ids, keys, contents, statuses, messages)
    codes = _status_codes(statuses)
    if not keys.size:
        return None
    return {
        "record_count": int(keys.size),
        "keys": keys.tobytes(),
        "hashes": contents.tobytes(),
        "statuses": codes.tobytes(),
        "detail": encode_detail(
            pa.array(external_ids, pa.string()), pa.array(messages, pa.string())
        ),
    }


def write_outcomes(
    conn: sa.Connection,
    statements: DriverStatements,
    columns: dict[str, Any],
    *,
    run_id: int,
    batch_id: str,
    target_id: str,
    entity: str,
    now: datetime,
) -> None:
    """Insert one batch's encoded outcomes (from :func:`encode_outcomes`) as one row."""
    scope = {"run_id": run_id, "batch_id": batch_id, "target_id": target_id, "entity": entity}
    values = scope | {"tier": BATCH_TIER} | columns
    insert = statements.get("outcomes", lambda _d: sa.insert(batch_outcomes), _ROW, ("at",))
    executemany(conn, insert, [tuple(values[name] for name in _ROW)], {"at": now})


def load_acked_state(
    conn: sa.Connection, *, target_id: str, entity: str
) -> tuple[np.ndarray, np.ndarray]:
    """(key hashes sorted ascending, content hashes aligned), both int64, for the
    records at ``target_id`` whose last outcome was created or updated."""
    t = batch_outcomes
    stmt = (
        sa.select(*(t.c[name] for name in OUTCOME_BLOBS))
        .where(t.c.target_id == target_id, t.c.entity == entity)
        .order_by(t.c.tier, t.c.seq)
    )
    keys, hashes, statuses = ([], [], [])
    for rows in fetch_chunks(conn, stmt, _FETCH_ROWS):
        for key_blob, hash_blob, status_blob in rows:
            keys.append(np.frombuffer(key_blob, dtype=np.int64))
            hashes.append(np.frombuffer(hash_blob, dtype=np.int64))
            statuses.append(np.frombuffer(status_blob, dtype=np.int8))
    if not keys:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    distinct, last = last_outcomes(np.concatenate(keys))
    acked = np.concatenate(statuses)[last] != FAILED
    return distinct[acked], np.concatenate(hashes)[last[acked]]


def outcome_blocks(
    conn: sa.Connection, *, target_id: str, entity: str
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(key hashes, content hashes, status codes) of each outcome row at ``target_id``, in
    the order they apply (a key's last outcome is its state), one row at a time: what
    :func:`load_acked_state` reads, without holding it."""
    t = batch_outcomes
    stmt = (
        sa.select(*(t.c[name] for name in OUTCOME_BLOBS))
        .where(t.c.target_id == target_id, t.c.entity == entity)
        .order_by(t.c.tier, t.c.seq)
    )
    for rows in fetch_chunks(conn, stmt, _STREAM_ROWS):
        for key_blob, hash_blob, status_blob in rows:
            yield (
                np.frombuffer(key_blob, dtype=np.int64),
                np.frombuffer(hash_blob, dtype=np.int64),
                np.frombuffer(status_blob, dtype=np.int8),
            )


def outcome_total(conn: sa.Connection, *, target_id: str, entity: str) -> int:
    """How many record outcomes the ledger holds at ``target_id`` (repeats included)."""
    t = batch_outcomes
    total = conn.scalar(
        sa.select(sa.func.sum(t.c.record_count)).where(
            t.c.target_id == target_id, t.c.entity == entity
        )
    )
    return int(total or 0)


def _status_codes(statuses: Sequence[str]) -> np.ndarray:
    distinct = set(statuses)
    for status in distinct:
        check_status(status, RECORD_STATUSES, "record")
    if len(distinct) == 1:  # the usual batch: every record created, or every one updated
        return np.full(len(statuses), _CODES[distinct.pop()], dtype=np.int8)
    return np.array([_CODES[status] for status in statuses], dtype=np.int8)


def last_outcomes(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys, sorted, and the position of each one's last occurrence."""
    if not keys.size:
        return keys, np.empty(0, np.intp)
    # An unstable sort, then the greatest position per key: twice as fast as a stable one.
    order = np.argsort(keys)
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return ordered[starts], np.maximum.reduceat(order, starts)


def encode_detail(external_ids: pa.Array, messages: pa.Array) -> bytes:
    """The ``detail`` blob: an LZ4-compressed Arrow IPC stream of (external_id, message)."""
    batch = pa.record_batch([external_ids, messages], schema=_DETAIL)
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, _DETAIL, options=_WRITE_DETAIL) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def decode_detail(blob: bytes) -> pa.Table:
    """The (external_id, message) table a ``detail`` blob holds."""
    return ipc.open_stream(blob, options=_READ_DETAIL).read_all()


def _check_lengths(*columns: Sequence[object] | np.ndarray) -> None:
    lengths = {len(column) for column in columns}
    if len(lengths) > 1:
        raise ValueError(
            "external_ids, key_hashes, content_hashes, statuses and messages must have "
            f"the same length; got {[len(c) for c in columns]}"
        )
