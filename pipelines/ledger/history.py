"""One record's outcomes, found by scanning the batch outcome blobs for its key hash.

Meant for interactive lookups (``nymble-sync record``): each blob is searched with one
vectorized comparison, and only the rows that hold the record are read in full.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from pipelines.ledger.bulk import fetch_chunks
from pipelines.ledger.models import RECORD_STATUSES, RecordEvent, RecordState
from pipelines.ledger.records import OUTCOME_BLOBS, decode_detail
from pipelines.ledger.schema import batch_outcomes, runs
from pipelines.transform.serialize import key_hashes

__all__ = ["find_events", "latest_states", "record_key"]

_FETCH_ROWS = 500
_IN_CHUNK = 500  # bound the number of values in one IN (...) list


@dataclass(frozen=True)
class _Hit:
    tier: int
    seq: int
    position: int
    content_hash: int
    code: int


def record_key(external_id: str) -> int:
    """The id's key hash, exactly as the pipeline computes it."""
    return int(key_hashes(pa.array([external_id], pa.string()))[0])


def find_events(conn: sa.Connection, external_id: str, target_id: str | None) -> list[RecordEvent]:
    """Every recorded outcome of ``external_id``, oldest first, optionally at one target.

    Outcomes are ordered as :func:`~pipelines.ledger.records.load_acked_state` applies them:
    compaction snapshots first, then batches in the order they were recorded.
    """
    key = record_key(external_id)
    hits = sorted(_scan(conn, key, target_id), key=lambda h: (h.tier, h.seq, h.position))
    rows = _rows(conn, sorted({hit.seq for hit in hits}))
    events = []
    for hit in hits:
        row = rows[hit.seq]
        detail = row["detail"]
        if detail["external_id"][hit.position].as_py() != external_id:
            continue  # another id with the same 64-bit hash
        events.append(
            RecordEvent(
                event_id=hit.seq,
                run_id=row["run_id"],
                batch_id=row["batch_id"],
                target_id=row["target_id"],
                entity=row["entity"],
                external_id=external_id,
                content_hash=hit.content_hash,
                status=RECORD_STATUSES[hit.code],  # type: ignore[arg-type]
                message=detail["message"][hit.position].as_py(),
                at=row["at"],
                job=row["job"],
                target_label=row["target_label"],
            )
        )
    return events


def latest_states(events: list[RecordEvent]) -> list[RecordState]:
    """The latest state at each target and entity, from events oldest first.

    ``content_hash`` is the last acknowledged content; for a record never acknowledged,
    the last one attempted.
    """
    states = []
    scoped = sorted(events, key=lambda e: (e.target_id, e.entity))  # stable: keeps time order
    for (target_id, entity), group in groupby(scoped, key=lambda e: (e.target_id, e.entity)):
        ordered = list(group)
        last = ordered[-1]
        acked = [e for e in ordered if e.status != "failed"]
        states.append(
            RecordState(
                target_id=target_id,
                entity=entity,
                external_id=last.external_id,
                key_hash=record_key(last.external_id),
                content_hash=(acked[-1] if acked else last).content_hash,
                status=last.status,
                last_error=last.message if last.status == "failed" else None,
                last_run_id=last.run_id,
                updated_at=last.at,
            )
        )
    return states


def _scan(conn: sa.Connection, key: int, target_id: str | None) -> Iterator[_Hit]:
    t = batch_outcomes
    stmt = sa.select(t.c.tier, t.c.seq, *(t.c[name] for name in OUTCOME_BLOBS))
    if target_id is not None:
        stmt = stmt.where(t.c.target_id == target_id)
    for rows in fetch_chunks(conn, stmt, _FETCH_ROWS):
        for tier, seq, keys, hashes, statuses in rows:
            positions = np.flatnonzero(np.frombuffer(keys, dtype=np.int64) == key)
            if positions.size:
                contents = np.frombuffer(hashes, dtype=np.int64)[positions]
                codes = np.frombuffer(statuses, dtype=np.int8)[positions]
                for position, content, code in zip(positions, contents, codes, strict=True):
                    yield _Hit(tier, seq, int(position), int(content), int(code))


def _rows(conn: sa.Connection, seqs: list[int]) -> dict[int, dict]:
    """The outcome rows ``seqs``, with decoded detail and their run's job and target label."""
    t = batch_outcomes
    columns = (t.c.seq, t.c.run_id, t.c.batch_id, t.c.target_id, t.c.entity, t.c.at, t.c.detail)
    found = {}
    for lo in range(0, len(seqs), _IN_CHUNK):
        query = (
            sa.select(*columns, runs.c.job, runs.c.target_label)
            .join(runs, runs.c.run_id == t.c.run_id)
            .where(t.c.seq.in_(seqs[lo : lo + _IN_CHUNK]))
        )
        for row in conn.execute(query).mappings():
            found[row["seq"]] = {**row, "detail": decode_detail(row["detail"])}
    return found
