"""Which records a job owns at a target: those whose last acknowledged outcome a run of
that job wrote. Mirror mode deactivates only these, never what another job or tool synced."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from pipelines.ledger.bulk import fetch_chunks
from pipelines.ledger.records import FAILED, decode_detail, last_outcomes
from pipelines.ledger.run_groups import base_job
from pipelines.ledger.schema import batch_outcomes, runs

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["OutcomeRow", "external_ids_at", "keys_synced_by_job", "outcome_rows"]

_FETCH_ROWS = 500
_IN_CHUNK = 500  # bound the number of values in one IN (...) list
# Outcome rows fetched at a time with their details: a row holds up to 50,000 records.
_STREAM_ROWS = 16


@dataclass(frozen=True)
class OutcomeRow:
    """One outcome row of the ledger, with the base job of the run that wrote it."""

    seq: int
    keys: np.ndarray
    hashes: np.ndarray
    codes: np.ndarray
    job: str
    detail: bytes  # see decode_detail: the records' external ids


def outcome_rows(ledger: Ledger, *, target_id: str, entity: str) -> Iterator[OutcomeRow]:
    """Every outcome row at ``target_id``, in the order they apply (what
    :func:`keys_synced_by_job` reads), a few at a time: never the whole scope at once."""
    t = batch_outcomes
    stmt = (
        sa.select(t.c.seq, t.c["keys"], t.c.hashes, t.c.statuses, runs.c.job, t.c.detail)
        .join(runs, runs.c.run_id == t.c.run_id)
        .where(t.c.target_id == target_id, t.c.entity == entity)
        .order_by(t.c.tier, t.c.seq)
    )
    with ledger._begin() as conn:  # the ledger's transaction and error translation
        for rows in fetch_chunks(conn, stmt, _STREAM_ROWS):
            for seq, key_blob, hash_blob, status_blob, run_job, detail in rows:
                yield OutcomeRow(
                    int(seq),
                    np.frombuffer(key_blob, dtype=np.int64),
                    np.frombuffer(hash_blob, dtype=np.int64),
                    np.frombuffer(status_blob, dtype=np.int8),
                    base_job(run_job),
                    detail,
                )


def external_ids_at(ledger: Ledger, seqs: np.ndarray, indexes: np.ndarray) -> list[str]:
    """The external id of the record at each (outcome row ``seqs``, position ``indexes``
    in it): only the rows named are read, a few at a time."""
    if not len(seqs):
        return []
    found = np.empty(len(seqs), dtype=object)
    order = np.argsort(seqs, kind="stable")
    rows, first = np.unique(seqs[order], return_index=True)
    groups = dict(zip(rows.tolist(), np.split(order, first[1:]), strict=True))
    t = batch_outcomes
    with ledger._begin() as conn:
        for lo in range(0, len(rows), _STREAM_ROWS):
            part = rows[lo : lo + _STREAM_ROWS].tolist()
            query = sa.select(t.c.seq, t.c.detail).where(t.c.seq.in_(part))
            for seq, blob in conn.execute(query):
                here = groups[seq]
                ids = decode_detail(blob)["external_id"].combine_chunks()
                found[here] = ids.take(indexes[here]).to_pylist()
    return found.tolist()


def keys_synced_by_job(
    ledger: Ledger, *, job: str, target_id: str, entity: str, with_ids: bool = True
) -> tuple[np.ndarray, list[str]]:
    """(key hashes sorted ascending, external ids aligned) of the records at ``target_id``
    whose last acknowledged outcome was written by a run of ``job``. ``with_ids=False``:
    the ids list is empty (decoding a million ids costs ~80 MB and seconds).

    A failed outcome does not change ownership (the target still holds the earlier
    content); a later acknowledgment by another job takes the record over.
    """
    t = batch_outcomes
    stmt = (
        sa.select(t.c.seq, t.c["keys"], t.c.statuses, runs.c.job)
        .join(runs, runs.c.run_id == t.c.run_id)
        .where(t.c.target_id == target_id, t.c.entity == entity)
        .order_by(t.c.tier, t.c.seq)
    )
    seqs, keys, codes, mine = [], [], [], []
    with ledger._begin() as conn:  # the ledger's transaction and error translation
        for rows in fetch_chunks(conn, stmt, _FETCH_ROWS):
            for seq, key_blob, status_blob, run_job in rows:
                block = np.frombuffer(key_blob, dtype=np.int64)
                seqs.append(np.full(block.size, seq, dtype=np.int64))
                keys.append(block)
                codes.append(np.frombuffer(status_blob, dtype=np.int8))
                mine.append(np.full(block.size, base_job(run_job) == job))
        if not keys:
            return np.empty(0, np.int64), []
        all_seqs, all_keys = np.concatenate(seqs), np.concatenate(keys)
        acked = np.flatnonzero(np.concatenate(codes) != FAILED)
        _distinct, last = last_outcomes(all_keys[acked])
        owned = acked[last[np.concatenate(mine)[acked[last]]]]  # positions, in key order
        ids = _external_ids(conn, all_seqs, owned) if with_ids else []
    return all_keys[owned], ids


def _external_ids(conn: sa.Connection, seqs: np.ndarray, positions: np.ndarray) -> list[str]:
    """The external id at each of ``positions`` (indexes into all outcomes, in read order);
    only the outcome rows holding one are read and decoded."""
    if not positions.size:
        return []
    starts = np.flatnonzero(np.concatenate(([True], seqs[1:] != seqs[:-1])))
    row_of = np.searchsorted(starts, positions, side="right") - 1
    found = np.empty(positions.size, dtype=object)
    order = np.argsort(row_of, kind="stable")
    rows, first = np.unique(row_of[order], return_index=True)
    groups = dict(zip(rows.tolist(), np.split(order, first[1:]), strict=True))
    t = batch_outcomes
    for lo in range(0, rows.size, _IN_CHUNK):
        part = rows[lo : lo + _IN_CHUNK]
        by_seq = {int(seqs[starts[r]]): int(r) for r in part}
        query = sa.select(t.c.seq, t.c.detail).where(t.c.seq.in_(list(by_seq)))
        for seq, blob in conn.execute(query):
            row = by_seq[seq]
            here = groups[row]
            ids = decode_detail(blob)["external_id"].combine_chunks()
            found[here] = ids.take(positions[here] - starts[row]).to_pylist()
    return found.tolist()
