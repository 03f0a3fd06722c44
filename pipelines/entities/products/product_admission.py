"""Admission: the ordered, stateful part of reading a feed, shared by `run`, `plan` and
`validate`. It rejects rows that repeat an earlier key, reports every reject, counts, and
keeps the records whose content differs from what the target last acknowledged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.admit.acked_state import AckedState, tags
from pipelines.admit.memo import MemoFile
from pipelines.entities.products.product_prepare import Prepared
from pipelines.jobs.specs import JobConfig
from pipelines.load.batching import Pending
from pipelines.quality.row_checks import Failure, KeyTracker, split_rejects
from pipelines.run.summary import RunSummary
from pipelines.transform.rejects import RejectsWriter

__all__ = ["Admission", "Screened"]


@dataclass(frozen=True)
class Screened:
    prepared: Prepared
    duplicates: list[Failure]  # rows whose key an earlier row of the run already had


class Admission:
    def __init__(
        self,
        job: JobConfig,
        state: AckedState,
        rejects: RejectsWriter,
        summary: RunSummary,
        on_kept: Callable[[pa.Table, np.ndarray], None] | None = None,
        memo: MemoFile | None = None,
    ):
        self.state, self.rejects, self.summary = state, rejects, summary
        self.on_kept = on_kept  # sees the records that passed every check (quality suites)
        self.memo = memo  # learns which source row gave each kept record
        self.ids = KeyTracker("externalId", job.key)  # also: every key this feed holds
        self._rejected_keys: list[np.ndarray] = []  # rows the feed holds but rejected
        sku = job.fields.get("sku")
        self.skus = KeyTracker("sku", sku if isinstance(sku, str) else "sku")

    def screen(self, p: Prepared) -> Screened:
        """Find the rows that repeat a key of an earlier row. Call it for every chunk in
        source order (it may be on another thread than ``admit``)."""
        return Screened(p, self._duplicates(p))

    def admit(self, screened: Screened) -> Pending:
        p = screened.prepared
        chunk = p.chunk
        self.summary.rows_read += len(chunk.table) + len(chunk.rejects)
        failures = p.failures + screened.duplicates
        table, rows, rejects = split_rejects(p.table, chunk.rows, failures, source=chunk.source)
        self.summary.rejected += len(chunk.rejects) + len(chunk.table) - len(table)
        self.rejects.write(sorted([*chunk.rejects, *rejects], key=lambda r: r.row or 0))
        keep = np.ones(len(p.table), dtype=bool)
        for failure in failures:
            keep &= ~failure.mask
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
        if self.memo is not None and p.fingerprints is not None:
            self.memo.remember(self.state, at, keys, tags(p.fingerprints[keep], hashes))
        same = self.state.unchanged(at, hashes)
        self.summary.unchanged += int(same.sum())
        send = np.nonzero(~same)[0]
        ids = table.column("externalId").combine_chunks().take(pa.array(send)).to_pylist()
        return Pending(ids, rows[send], keys[send], hashes[send], [bodies[i] for i in send])

    def feed_keys(self) -> np.ndarray:
        """Sorted key hashes of every row read with a key, rejected ones included: a product
        whose row failed a check is still in the feed, so mirror mode must not deactivate it."""
        return np.union1d(
            self.ids.keys(), np.concatenate([np.empty(0, np.int64), *self._rejected_keys])
        )

    def _duplicates(self, p: Prepared) -> list[Failure]:
        """One row per externalId and per SKU in a run (CONTRACT §6.8, §6.22: SKUs match
        case-insensitively); a later row with either is rejected, naming the first."""
        ok = p.passed.copy()
        found = []
        ids = p.table.column("externalId").combine_chunks()
        skus = p.table.column("sku").combine_chunks()
        for tracker, values, keys in ((self.ids, ids, p.keys), (self.skus, skus, p.sku_keys)):
            dup = tracker.check(values, keys, p.chunk.rows, ok)
            if dup is not None:
                found.append(dup)
                ok &= ~dup.mask
        return found
