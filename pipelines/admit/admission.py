"""Admission: the ordered, stateful part of reading a feed, the same for every entity and for
`run`, `plan` and `validate`.

Per chunk, in source order: rows repeating a key (or another field unique in a run) of an
earlier row are rejected naming it; records whose references the target does not know are
rejected (orders: customers, SKUs); every reject is reported and every row counted; the
records whose content differs from what the target last acknowledged are returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.admit.acked_state import AckedState, tags
from pipelines.admit.seen_keys import SeenKeys
from pipelines.load.batching import Pending
from pipelines.ops.sorted_keys import merged, sorted_blocks
from pipelines.quality.row_checks import Failure, split_rejects
from pipelines.run.summary import RunSummary
from pipelines.transform.prepared import Prepared
from pipelines.transform.rejects import RejectsWriter

__all__ = ["Admission", "Screened"]


@dataclass(frozen=True)
class Screened:
    prepared: Prepared
    duplicates: list[Failure]  # rows whose key an earlier row of the run already had


class Admission:
    def __init__(
        self,
        *,
        key_column: str,
        state: AckedState,
        rejects: RejectsWriter,
        summary: RunSummary,
        unique_columns: dict[str, str] | None = None,
        references: Any = None,
        on_kept: Callable[[pa.Table, np.ndarray], None] | None = None,
        memo: Any = None,
        workdir: Path | None = None,
    ):
        """``state``: an AckedState or a LedgerState (they answer alike). ``workdir`` takes
        the run's files of keys read (None: the system's temporary directory)."""
        self.state, self.rejects, self.summary = state, rejects, summary
        # .failures(prepared, ok) → (records waiting for a reference, records given up on)
        self.references = references
        self.on_kept = on_kept  # sees the records that passed every check (quality suites)
        self.memo = memo  # learns which source row gave each kept record, in source order
        # Sees (external ids, key hashes, content hashes) of the records found unchanged
        # against ``state``: `run --adopt` records them in the ledger as acknowledged.
        self.on_unchanged: Callable[[list[str], np.ndarray, np.ndarray], None] | None = None
        self.ids = SeenKeys("externalId", key_column, workdir)  # also: every key of the feed
        self.unique = {f: SeenKeys(f, c, workdir) for f, c in (unique_columns or {}).items()}
        self._rejected_keys: list[np.ndarray] = []  # rows the feed holds but rejected
        self.lines = self.line_rejects = 0

    def screen(self, p: Prepared) -> Screened:
        """Find the rows that repeat a key of an earlier row. Call it for every chunk in
        source order (it may be on another thread than ``admit``)."""
        return Screened(p, self._duplicates(p))

    def admit(self, screened: Screened) -> Pending:
        p = screened.prepared
        chunk = p.chunk
        line_rejects = getattr(chunk, "line_rejects", ())
        self.summary.rows_read += len(chunk.table) + len(chunk.rejects)
        self.lines += p.lines
        self.line_rejects += len(line_rejects)
        failures = p.failures + screened.duplicates
        if self.references is not None and len(p.table):
            waiting, given_up = self.references.failures(p, _ok(p.passed, failures))
            self.summary.held += _rows(waiting)
            self.summary.given_up += _rows(given_up)
            failures += waiting + given_up
        table, rows, rejects = split_rejects(
            p.table, chunk.rows, failures, source=chunk.source, ids=p.ids
        )
        self.summary.rejected += len(chunk.rejects) + len(chunk.table) - len(table)
        found = [*chunk.rejects, *line_rejects, *rejects]
        self.rejects.write(sorted(found, key=lambda r: r.row or 0))
        keep = _ok(np.ones(len(p.table), dtype=bool), failures)
        among_passed = keep[p.passed]  # bodies exist for passed rows only
        bodies = (
            p.bodies
            if among_passed.all()
            else [b for b, k in zip(p.bodies, among_passed, strict=True) if k]
        )
        self._rejected_keys.append(p.keys[~keep & (p.keys != 0)])
        if self.on_kept is not None:
            self.on_kept(table, rows)
        keys, hashes = p.keys[keep], p.hashes[among_passed]
        at = self.state.locate(keys) if p.located is None else p.located[keep]
        if self.memo is not None:  # without fingerprints, it learns only the order of keys
            prints = p.fingerprints
            made = tags(prints[keep], hashes) if prints is not None else np.zeros_like(keys)
            self.memo.remember(at, keys, made, hashes)
        same = self.state.unchanged(at, hashes)
        self.summary.unchanged += int(same.sum())
        send = np.nonzero(~same)[0]
        kept_ids = p.ids if keep.all() else p.ids.filter(pa.array(keep))
        if self.on_unchanged is not None and same.any():
            alike = np.nonzero(same)[0]
            self.on_unchanged(
                kept_ids.take(pa.array(alike)).to_pylist(), keys[alike], hashes[alike]
            )
        ids = kept_ids.take(pa.array(send)).to_pylist()
        return Pending(ids, rows[send], keys[send], hashes[send], [bodies[i] for i in send])

    def feed_keys(self) -> np.ndarray:
        """Sorted key hashes of every row read with a key, rejected ones included: a record
        whose row failed a check is still in the feed, so mirror mode must not deactivate it."""
        return np.union1d(
            self.ids.keys(), np.concatenate([np.empty(0, np.int64), *self._rejected_keys])
        )

    def feed_key_blocks(self) -> Iterator[np.ndarray]:
        """The keys of :meth:`feed_keys` in ascending blocks, never all in memory: the keys
        read (on disk beyond a bound) merged with those of rejected rows (few)."""
        rejected = np.unique(np.concatenate([np.empty(0, np.int64), *self._rejected_keys]))
        return merged([self.ids.sorted_keys(), sorted_blocks(rejected)])

    def close(self) -> None:
        """Drop the files of keys read (the run is over)."""
        for tracker in (self.ids, *self.unique.values()):
            tracker.close()

    def _duplicates(self, p: Prepared) -> list[Failure]:
        """One row per externalId, and per other unique field, in a run (CONTRACT §6.8,
        §6.22: SKUs and order numbers match case-insensitively, so their hashes are of
        lower-cased values); a later row with one is rejected, naming the first."""
        ok, found = p.passed.copy(), []
        trackers = [(self.ids, p.ids, p.keys)]
        trackers += [(self.unique[f], values, keys) for f, (values, keys) in p.unique.items()]
        for tracker, values, keys in trackers:
            dup = tracker.check(values, keys, p.chunk.rows, ok)
            if dup is not None:
                found.append(dup)
                ok &= ~dup.mask
        return found


def _rows(failures: list[Failure]) -> int:
    """How many rows the failures flag, each once."""
    return int(np.logical_or.reduce([f.mask for f in failures]).sum()) if failures else 0


def _ok(base: np.ndarray, failures: list[Failure]) -> np.ndarray:
    ok = base.copy()
    for failure in failures:
        ok &= ~failure.mask
    return ok
