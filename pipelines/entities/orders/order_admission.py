"""Admission for orders and customers: the ordered, stateful part of a run.

Per chunk, on the main thread: rows repeating a key seen earlier in the run are rejected
(externalId, and an order's orderNumber, which the API also matches on, §3.5); orders whose
customer or SKUs the target does not know are rejected naming them, and since they were
never acknowledged, change detection sends them on the first run after the reference
exists; everything is counted; records whose content differs from the acknowledged state
are returned for sending.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.admit.acked_state import AckedState
from pipelines.entities.orders.order_mapping import per_order
from pipelines.entities.orders.order_prepare import Prepared
from pipelines.entities.orders.references import KnownValues
from pipelines.load.batching import Pending
from pipelines.quality.row_checks import Failure, KeyTracker, split_rejects
from pipelines.run.summary import RunSummary
from pipelines.transform.rejects import RejectsWriter
from pipelines.transform.serialize import key_hashes

__all__ = ["Admission", "References"]

_REFERENCE_RULES = ("unknown_customer", "unknown_sku")


class References:
    """The customers and SKUs known at the target, with the source columns to name."""

    def __init__(
        self, customers: KnownValues, skus: KnownValues, customer_column: str, sku_column: str
    ):
        self.customers, self.skus = customers, skus
        self.customer_column, self.sku_column = customer_column, sku_column

    def failures(self, p: Prepared, ok: np.ndarray) -> list[Failure]:
        """Orders among ``ok`` whose customer, or else one of whose SKUs, is unknown."""
        customers = self._customers(p.customers, ok)
        skus = self._skus(p.skus, p.sku_offsets, ok & ~customers.mask)
        return [f for f in (customers, skus) if f.mask.any()]

    def _customers(self, numbers: pa.Array, ok: np.ndarray) -> Failure:
        unknown = ok & self.customers.unknown(numbers, key_hashes(numbers))
        return Failure(unknown, self.customer_column, numbers, "unknown_customer", _WAIT_CUSTOMER)

    def _skus(self, skus: pa.Array, offsets: np.ndarray, ok: np.ndarray) -> Failure:
        of_ok = np.repeat(ok, np.diff(offsets)) & pc.is_valid(skus).to_numpy(zero_copy_only=False)
        missing = np.zeros(len(skus), dtype=bool)
        if of_ok.any():
            codes = pc.dictionary_encode(skus)  # each distinct SKU is looked up once
            distinct = codes.dictionary
            unknown = self.skus.unknown(distinct, key_hashes(distinct))
            missing = unknown[codes.indices.fill_null(0).to_numpy(zero_copy_only=False)] & of_ok
        failure = Failure(missing, self.sku_column, skus, "unknown_sku", _WAIT_SKU)
        return per_order(failure, offsets)


_WAIT_CUSTOMER = (
    "is not a customer the target knows; the order is sent by the first run after the "
    "customer exists"
)
_WAIT_SKU = (
    "is not a SKU the target knows; the order is sent by the first run after the product exists"
)


class Admission:
    def __init__(
        self,
        *,
        key_column: str,
        unique_columns: dict[str, str],
        state: AckedState,
        rejects: RejectsWriter,
        summary: RunSummary,
        references: References | None = None,
        watermark_column: str | None = None,
    ):
        self.state, self.rejects, self.summary = state, rejects, summary
        self.references, self.watermark_column = references, watermark_column
        self.ids = KeyTracker("externalId", key_column)
        self.unique = {f: KeyTracker(f, column) for f, column in unique_columns.items()}
        self.lines = self.line_rejects = 0
        self.hold_back = None  # lowest watermark value of an order waiting for a reference

    def admit(self, p: Prepared) -> Pending:
        chunk = p.chunk
        self.summary.rows_read += len(chunk.table) + len(chunk.rejects)
        self.lines += p.lines
        self.line_rejects += len(getattr(chunk, "line_rejects", ()))
        failures = p.failures + self._duplicates(p)
        if self.references is not None and len(chunk.table):
            waiting = self.references.failures(p, _ok(p.passed, failures))
            self._hold(chunk.table, waiting)
            failures += waiting
        ids_table = pa.table({"externalId": p.ids})
        kept, rows, rejects = split_rejects(ids_table, chunk.rows, failures, source=chunk.source)
        self.summary.rejected += len(chunk.rejects) + len(chunk.table) - len(kept)
        found = [*chunk.rejects, *getattr(chunk, "line_rejects", ()), *rejects]
        self.rejects.write(sorted(found, key=lambda r: r.row or 0))
        keep = _ok(np.ones(len(chunk.table), dtype=bool), failures)
        among_passed = keep[p.passed]
        bodies = (
            p.bodies
            if among_passed.all()
            else [b for b, k in zip(p.bodies, among_passed, strict=True) if k]
        )
        keys, hashes = p.keys[keep], p.hashes[among_passed]
        same = self.state.unchanged(self.state.locate(keys), hashes)
        self.summary.unchanged += int(same.sum())
        send = np.nonzero(~same)[0]
        ids = kept.column("externalId").combine_chunks().take(pa.array(send)).to_pylist()
        return Pending(ids, rows[send], keys[send], hashes[send], [bodies[i] for i in send])

    def _duplicates(self, p: Prepared) -> list[Failure]:
        """One row per key (and per orderNumber) in a run; a later one is rejected naming the
        first. Order numbers match case-insensitively, as the API matches them."""
        ok, found = p.passed.copy(), []
        trackers = [(self.ids, p.ids, p.keys)]
        trackers += [(self.unique[f], values, keys) for f, (values, keys) in p.unique.items()]
        for tracker, values, keys in trackers:
            dup = tracker.check(values, keys, p.chunk.rows, ok)
            if dup is not None:
                found.append(dup)
                ok &= ~dup.mask
        return found

    def _hold(self, table: pa.Table, waiting: list[Failure]) -> None:
        """Remember the lowest watermark among orders waiting for a reference: the stored
        watermark must not pass them, or an incremental run would never read them again."""
        if not waiting or self.watermark_column is None:
            return
        mask = np.logical_or.reduce([f.mask for f in waiting])
        low = pc.min(table.column(self.watermark_column).filter(pa.array(mask))).as_py()
        if low is not None and (self.hold_back is None or low < self.hold_back):
            self.hold_back = low


def _ok(base: np.ndarray, failures: list[Failure]) -> np.ndarray:
    ok = base.copy()
    for failure in failures:
        ok &= ~failure.mask
    return ok


def watermark_text(value) -> str | None:
    """A watermark value as text any backend parses back (as ``sql_source`` stores it)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return None if value is None else str(value)
