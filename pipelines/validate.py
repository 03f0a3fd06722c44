"""Contract checks on mapped records, and the split of a chunk into records to send and rejects.

Checks are boolean masks over whole columns; only the failing rows become ``Reject`` objects.
"""

from __future__ import annotations

from collections.abc import Callable
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
    related: dict[int, int] | None = None  # row index → the earlier row it conflicts with


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

    Keys are 64-bit hashes in one sorted array (with the row that first had each): a million
    keys cost 16 MB, not a Python set of strings.
    """

    def __init__(self, field: str, column: str, *, casefold: bool = False):
        self.field, self.column, self.casefold = field, column, casefold
        self._seen = np.empty(0, dtype=np.int64)
        self._first_row = np.empty(0, dtype=np.int64)

    def check(self, table: pa.Table, rows: np.ndarray, candidates: np.ndarray,
              hashes: Callable[[pa.Array], np.ndarray]) -> Failure | None:
        """Flag rows (among ``candidates``) whose key occurred on an earlier row of the run."""
        values = table.column(self.field).combine_chunks()
        keys = hashes(pc.utf8_lower(values) if self.casefold else values)
        idx = np.nonzero(candidates & present(values))[0]
        first_row = self._earlier(keys[idx])
        _, first = np.unique(keys[idx], return_index=True)
        later = np.ones(len(idx), dtype=bool)
        later[first] = False  # a repeat within this chunk points at the chunk's first row
        firsts = dict(zip(keys[idx[first]].tolist(), rows[idx[first]].tolist(), strict=True))
        first_row[later & (first_row < 0)] = [firsts[k] for k in keys[idx][later & (first_row < 0)]]
        new = first_row < 0
        self._remember(keys[idx[new]], rows[idx[new]])
        if new.all():
            return None
        dup = np.zeros(len(table), dtype=bool)
        dup[idx[~new]] = True
        earlier = {int(i): int(r) for i, r in zip(idx[~new], first_row[~new], strict=True)}
        return Failure(dup, self.column, values, f"duplicate_{self.field}",
                       f"{self.field} already appeared on an earlier row; only the first is sent",
                       related=earlier)

    def _earlier(self, keys: np.ndarray) -> np.ndarray:
        """The row where each key was first seen in an earlier chunk, or -1."""
        if not len(self._seen):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._seen, keys), len(self._seen) - 1)
        return np.where(self._seen[pos] == keys, self._first_row[pos], -1)

    def _remember(self, keys: np.ndarray, rows: np.ndarray) -> None:
        seen = np.concatenate([self._seen, keys])
        order = np.argsort(seen, kind="stable")
        self._seen = seen[order]
        self._first_row = np.concatenate([self._first_row, rows])[order]


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
    rejects = _unique([r for f in failures for r in _describe(f, ids, rows, source)])
    keep = pa.array(~bad)
    return table.filter(keep), rows[~bad], rejects


def _unique(rejects: list[Reject]) -> list[Reject]:
    """One line per row, column and rule: two checks of one cell would only repeat each other."""
    seen: set[tuple] = set()
    out = []
    for r in sorted(rejects, key=lambda r: r.row or 0):
        if (r.row, r.column, r.rule) not in seen:
            seen.add((r.row, r.column, r.rule))
            out.append(r)
    return out


def _describe(failure: Failure, ids: pa.Array, rows: np.ndarray, source: str) -> list[Reject]:
    idx = np.nonzero(failure.mask)[0]
    related = failure.related or {}
    id_values = ids.take(pa.array(idx)).to_pylist()
    cell_values = (failure.values.take(pa.array(idx)).to_pylist() if failure.values is not None
                   else [None] * len(idx))
    return [
        Reject(source, int(rows[i]), ext, failure.column, None if v is None else str(v),
               failure.rule, _message(failure, related.get(int(i))))
        for i, ext, v in zip(idx, id_values, cell_values, strict=True)
    ]


def _message(failure: Failure, earlier_row: int | None) -> str:
    text = f"{failure.column}: {failure.message}" if failure.column else failure.message
    return text if earlier_row is None else f"{text} (row {earlier_row})"
