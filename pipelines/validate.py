"""Contract checks on mapped records, and the split of a chunk into records to send and rejects.

Checks are boolean masks over whole columns; only the failing rows become ``Reject`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import JobConfig
from .convert import present
from .rejects import Reject

__all__ = ["Failure", "KeyTracker", "check_products", "split_rejects"]

MAX_KEY_LENGTH = 255  # the ledger's external_id column; Nymble publishes no limit


@dataclass(frozen=True)
class Failure:
    """Rows of one chunk that broke one rule, with the column and values to report."""

    mask: np.ndarray
    column: str | None
    values: pa.Array | None
    rule: str
    message: str


def check_products(table: pa.Table, job: JobConfig) -> list[Failure]:
    """Rules every product must pass (CONTRACT §2.5, §2.8): keys present, prices not negative."""
    sources = {target: column for target, column in _field_columns(job).items()}
    failures = [
        _required(table, "externalId", job.key),
        _required(table, "sku", sources.get("sku", "sku")),
        _too_long(table, job.key),
    ]
    if "price" in table.column_names:
        price = table.column("price").combine_chunks()
        negative = pc.fill_null(pc.less(price, 0), False).to_numpy(zero_copy_only=False)
        failures.append(Failure(negative, sources.get("price"), price, "negative_price",
                                "must be 0 or more"))
    return [f for f in failures if f.mask.any()]


def _field_columns(job: JobConfig) -> dict[str, str]:
    return {k.removeprefix("fields."): v for k, v in job.source_columns_used().items()
            if k.startswith("fields.")}


def _required(table: pa.Table, field: str, column: str) -> Failure:
    if field not in table.column_names:
        return Failure(np.ones(len(table), dtype=bool), column, None, "required",
                       f"{field} is required but the job does not map it")
    values = table.column(field).combine_chunks()
    return Failure(~present(values), column, values, "required", f"{field} is required")


def _too_long(table: pa.Table, column: str) -> Failure:
    ids = table.column("externalId").combine_chunks()
    long = pc.fill_null(pc.greater(pc.utf8_length(ids), MAX_KEY_LENGTH), False)
    return Failure(long.to_numpy(zero_copy_only=False), column, ids, "key_too_long",
                   f"externalId is longer than {MAX_KEY_LENGTH} characters")


class KeyTracker:
    """Remembers the keys already seen in this run, so a second row with one is rejected.

    Keys are 64-bit hashes in one sorted array: a million keys cost 8 MB, not a Python set.
    """

    def __init__(self, field: str, column: str, *, casefold: bool = False):
        self.field, self.column, self.casefold = field, column, casefold
        self._seen = np.empty(0, dtype=np.int64)

    def check(self, table: pa.Table, candidates: np.ndarray, hashes) -> Failure | None:
        """Flag rows (among ``candidates``) whose key occurred earlier in the run or chunk."""
        values = table.column(self.field).combine_chunks()
        if self.casefold:
            values = pc.utf8_lower(values)
        keys = hashes(values)
        dup = np.zeros(len(table), dtype=bool)
        idx = np.nonzero(candidates & present(values))[0]
        pos = np.searchsorted(self._seen, keys[idx])
        earlier = (pos < len(self._seen)) & (self._seen[np.minimum(pos, len(self._seen) - 1)]
                                             == keys[idx]) if len(self._seen) else np.zeros(len(idx), bool)
        _, first = np.unique(keys[idx], return_index=True)
        within = np.ones(len(idx), dtype=bool)
        within[first] = False
        dup[idx] = earlier | within
        self._seen = np.union1d(self._seen, keys[idx[~dup[idx]]])
        if not dup.any():
            return None
        return Failure(dup, self.column, values, f"duplicate_{self.field}",
                       f"{self.field} occurs more than once in this run; the first row is kept")


def split_rejects(
    table: pa.Table, rows: np.ndarray, failures: list[Failure], *, source: str
) -> tuple[pa.Table, np.ndarray, list[Reject]]:
    """Drop every row that failed a rule; describe each failure as a Reject."""
    bad = np.zeros(len(table), dtype=bool)
    for f in failures:
        bad |= f.mask
    if not bad.any():
        return table, rows, []
    ids = table.column("externalId").combine_chunks()
    rejects = [r for f in failures for r in _describe(f, ids, rows, source)]
    rejects.sort(key=lambda r: r.row or 0)
    keep = pa.array(~bad)
    return table.filter(keep), rows[~bad], rejects


def _describe(failure: Failure, ids: pa.Array, rows: np.ndarray, source: str) -> list[Reject]:
    idx = np.nonzero(failure.mask)[0]
    id_values = ids.take(pa.array(idx)).to_pylist()
    cell_values = (failure.values.take(pa.array(idx)).to_pylist() if failure.values is not None
                   else [None] * len(idx))
    return [
        Reject(source, int(rows[i]), ext, failure.column, None if v is None else str(v),
               failure.rule, f"{failure.column or 'row'}: {failure.message}" if failure.column
               else failure.message)
        for i, ext, v in zip(idx, id_values, cell_values, strict=True)
    ]
