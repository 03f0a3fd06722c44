"""Row checks shared by every entity (keys, currencies, duplicates in a run), and the split of
a chunk into records to send and rejects.

Checks are boolean masks over whole columns; only the failing rows become ``Reject`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import ISO_4217
from pipelines.transform.convert import present
from pipelines.transform.rejects import Reject

__all__ = [
    "Failure",
    "combined",
    "field_columns",
    "required_values",
    "key_too_long",
    "split_rejects",
    "unknown_currency",
]

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

    def spread(self, at: np.ndarray, length: int) -> Failure:
        """This failure, found on a subset of a chunk's rows (subset row i is chunk row
        ``at[i]``), stated over all ``length`` rows of the chunk."""
        mask = np.zeros(length, dtype=bool)
        mask[at] = self.mask
        values = self.values
        if values is not None:
            where = np.zeros(length, np.intp)  # rows outside the subset never fail here
            where[at] = np.arange(len(at))
            values = values.take(pa.array(where))
        related = self.related
        if related is not None:
            related = {int(at[i]): row for i, row in related.items()}
        return replace(self, mask=mask, values=values, related=related)


def unknown_currency(values: pa.Array, column: str | None) -> Failure:
    """Rows whose currency code is not ISO 4217 (a closed set, CONTRACT §3.2)."""
    codes = values.dictionary if pa.types.is_dictionary(values.type) else values
    known = pc.is_in(codes, value_set=pa.array(sorted(ISO_4217)))
    if pa.types.is_dictionary(values.type):
        known = known.take(values.indices)
    bad = present(values) & ~pc.fill_null(known, False).to_numpy(zero_copy_only=False)
    return Failure(
        bad,
        column,
        values,
        "unknown_currency",
        "is not an ISO 4217 currency code (e.g. USD, EUR, CAD)",
    )


def key_too_long(ids: pa.Array, column: str) -> Failure:
    """Keys the ledger cannot hold (Nymble publishes no limit; the ledger's column has one)."""
    long = pc.fill_null(pc.greater(pc.utf8_length(ids), MAX_KEY_LENGTH), False)
    return Failure(
        long.to_numpy(zero_copy_only=False),
        column,
        ids,
        "key_too_long",
        f"the key is longer than {MAX_KEY_LENGTH} characters",
    )


def split_rejects(
    table: pa.Table,
    rows: np.ndarray,
    failures: list[Failure],
    *,
    source: str,
    ids: pa.Array | None = None,
) -> tuple[pa.Table, np.ndarray, list[Reject]]:
    """Drop every row that failed a rule; describe each failure as a Reject naming the row's
    key (``ids``, by default the table's externalId column)."""
    bad = np.zeros(len(table), dtype=bool)
    for f in failures:
        bad |= f.mask
    if not bad.any():
        return table, rows, []
    if ids is None:
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
    cell_values = (
        failure.values.take(pa.array(idx)).to_pylist()
        if failure.values is not None
        else [None] * len(idx)
    )
    return [
        Reject(
            source,
            int(rows[i]),
            ext,
            failure.column,
            None if v is None else str(v),
            failure.rule,
            _message(failure, related.get(int(i))),
        )
        for i, ext, v in zip(idx, id_values, cell_values, strict=True)
    ]


def _message(failure: Failure, earlier_row: int | None) -> str:
    text = f"{failure.column}: {failure.message}" if failure.column else failure.message
    return text if earlier_row is None else f"{text} (row {earlier_row})"


def required_values(values, column: str | None, field: str) -> Failure:
    """Rows where ``field`` (read from ``column``) is missing or blank."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return Failure(~present(values), column, values, "required", f"{field} is required")


def combined(values) -> pa.Array:
    """One array, whether a table column (chunked) or an array was given."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def field_columns(fields: dict) -> dict[str, str | None]:
    """Target field → the source column its spec reads (None for a constant)."""
    return {
        target: spec if isinstance(spec, str) else getattr(spec, "column", None)
        for target, spec in fields.items()
    }
