"""One record's outcomes, found by scanning the batch outcome blobs for its key hash.

Meant for interactive lookups (``nymble-sync why``): each blob is searched with one
vectorized comparison, and only the rows that hold the record are read in full. An id is
matched exactly first, then case-insensitively (as the API matches keys): the hashes of
every case spelling of a short ASCII id are looked for in the same one pass; only an id
with more letters than that reads the stored ids themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby, product

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from pipelines.ledger.bulk import fetch_chunks
from pipelines.ledger.models import RECORD_STATUSES, RecordEvent, RecordState
from pipelines.ledger.records import OUTCOME_BLOBS, decode_detail
from pipelines.ledger.schema import batch_outcomes, runs
from pipelines.transform.serialize import key_hashes

__all__ = ["case_spellings", "find_events", "latest_states", "record_key"]

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
    When no record has that exact id, those whose id differs from it only in case (as the
    API matches SKUs and other keys, CONTRACT §6.22); each event names the id as stored.

    Outcomes are ordered as :func:`~pipelines.ledger.records.load_acked_state` applies them:
    compaction snapshots first, then batches in the order they were recorded.
    """
    wanted = _folded(external_id)
    spellings = case_spellings(external_id)
    # One pass over the key blobs finds the exact id and every spelling of it; an id with
    # too many letters to spell out is looked for exactly first, then in the stored ids.
    keys = [external_id] if spellings is None else spellings
    events = _events(conn, keys, target_id, lambda stored: _folded(stored) == wanted)
    exact = [e for e in events if e.external_id == external_id]
    if exact or spellings is not None:
        return exact or events
    stored = _stored_spellings(conn, wanted, target_id) - {external_id}
    return _events(conn, sorted(stored), target_id, stored.__contains__) if stored else []


def case_spellings(text: str, limit: int = 4096) -> list[str] | None:
    """Every spelling of an ASCII ``text`` that differs only in the case of its letters
    (``ab-1`` → ``ab-1, aB-1, Ab-1, AB-1``); None when there are more than ``limit`` or the
    text is not ASCII (Unicode case rules do not pair letters one to one)."""
    if not text.isascii():
        return None
    letters = sum(c.isalpha() for c in text)
    if 2**letters > limit:
        return None
    options = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in text]
    return ["".join(chars) for chars in product(*options)]


def _folded(text: str) -> str:
    """Case-insensitive form, as Arrow's ``utf8_lower`` gives it (the stored ids' side)."""
    return pc.utf8_lower(pa.array([text], pa.string()))[0].as_py()


def _events(
    conn: sa.Connection, ids: list[str], target_id: str | None, matches
) -> list[RecordEvent]:
    """The outcomes of records whose key hash is one of ``ids``' and whose stored id
    ``matches`` (a 64-bit hash may be another id's)."""
    keys = np.unique(key_hashes(pa.array(ids, pa.string())))
    hits = sorted(_scan(conn, keys, target_id), key=lambda h: (h.tier, h.seq, h.position))
    rows = _rows(conn, sorted({hit.seq for hit in hits}))
    events = []
    for hit in hits:
        row = rows[hit.seq]
        detail = row["detail"]
        stored = detail["external_id"][hit.position].as_py()
        if not matches(stored):
            continue
        events.append(
            RecordEvent(
                event_id=hit.seq,
                run_id=row["run_id"],
                batch_id=row["batch_id"],
                target_id=row["target_id"],
                entity=row["entity"],
                external_id=stored,
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
    """The latest state at each target and entity (and of each id, when ids differing
    in case were matched), from events oldest first.

    ``content_hash`` is the last acknowledged content; for a record never acknowledged,
    the last one attempted.
    """
    states = []
    scope = lambda e: (e.target_id, e.entity, e.external_id)  # noqa: E731 - two uses below
    scoped = sorted(events, key=scope)  # stable: keeps time order
    for (target_id, entity, _id), group in groupby(scoped, key=scope):
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


def _scan(conn: sa.Connection, keys: np.ndarray, target_id: str | None) -> Iterator[_Hit]:
    """Outcomes whose key hash is in ``keys`` (sorted): each blob searched at once."""
    t = batch_outcomes
    stmt = sa.select(t.c.tier, t.c.seq, *(t.c[name] for name in OUTCOME_BLOBS))
    if target_id is not None:
        stmt = stmt.where(t.c.target_id == target_id)
    last = len(keys) - 1
    for rows in fetch_chunks(conn, stmt, _FETCH_ROWS):
        for tier, seq, blob, hashes, statuses in rows:
            found = np.frombuffer(blob, dtype=np.int64)
            if last:  # several spellings: a binary search per key
                hit = keys[np.minimum(np.searchsorted(keys, found), last)] == found
            else:
                hit = found == keys[0]
            positions = np.flatnonzero(hit)
            if positions.size:
                contents = np.frombuffer(hashes, dtype=np.int64)[positions]
                codes = np.frombuffer(statuses, dtype=np.int8)[positions]
                for position, content, code in zip(positions, contents, codes, strict=True):
                    yield _Hit(tier, seq, int(position), int(content), int(code))


def _stored_spellings(conn: sa.Connection, folded: str, target_id: str | None) -> set[str]:
    """The stored ids whose case-insensitive form is ``folded``: every batch's ids read
    (about 0.2 s a million records on SQLite), for ids with too many letters to spell out."""
    t = batch_outcomes
    stmt = sa.select(t.c.detail)
    if target_id is not None:
        stmt = stmt.where(t.c.target_id == target_id)
    found: set[str] = set()
    for rows in fetch_chunks(conn, stmt, _FETCH_ROWS):
        for (blob,) in rows:
            ids = decode_detail(blob).column("external_id")
            same = pc.fill_null(pc.equal(pc.utf8_lower(ids), folded), False)
            if pc.any(same).as_py():
                found.update(ids.filter(same).to_pylist())
    return found


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
