"""Job-file field specs turned into typed Arrow columns, for orders and customers: a column
as text, a number, exact money or a UTC date; a translated code; a constant; nested structs
and fixed groups of columns (addresses). Cell-level problems are collected as ``Failure``s;
nothing here drops a row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.errors import JobFileError, Problem
from pipelines.jobs.specs import ColumnMap, Constant, FieldKind
from pipelines.quality.row_checks import Failure
from pipelines.transform.convert import as_text, convert, normalize_text, present, value_map
from pipelines.transform.dates import AmbiguousDates, to_utc_text
from pipelines.transform.money import to_money
from pipelines.transform.numbers import is_text, read_numbers

__all__ = ["FieldValues", "entries_column", "plain_text", "struct_column", "text_column"]

Kind = FieldKind


class FieldValues:
    """Converts one job-file field spec into an Arrow column, collecting failures."""

    def __init__(self, job: Any, table: pa.Table, failures: list[Failure]):
        """``job`` gives ``path`` for errors, ``number`` (how its text writes numbers), and
        ``money_scale``/``timezone`` when it maps money or dates."""
        self.job, self.table, self.failures = job, table, failures

    def value(self, target: str, spec, kind: Kind, n: int) -> pa.Array:
        if isinstance(spec, Constant):
            return self._constant(target, spec, kind, n)
        column = spec if isinstance(spec, str) else spec.column
        raw = self.table.column(column).combine_chunks()
        if isinstance(spec, ColumnMap):
            raw = self._mapped(spec, text_column(raw))
        if kind == "datetime":
            return self._date(target, spec, column, raw)
        if kind == "money":
            values, bad, fine = to_money(self._number_text(spec, column, raw), self.job.money_scale)
            self._fail(bad, column, raw, "not_a_number", "is not a valid decimal")
            self._fail(fine, column, raw, "too_many_decimals", self._scale_message())
            return values
        if kind == "integer" and pa.types.is_integer(raw.type):
            return raw.cast(pa.int64())
        text = self._number_text(spec, column, raw) if kind == "integer" else raw
        values, bad = convert(text_column(text), kind)
        rule = "not_a_boolean" if kind == "boolean" else "not_a_number"
        self._fail(bad, column, raw, rule, f"is not a valid {kind}")
        return values

    def _number_text(self, spec, column: str, raw: pa.Array) -> pa.Array:
        """Text written in the job's ``number:`` style as plain number text (``1.234,50`` →
        ``1234.50``); a misfit is a failure naming the format. Typed columns stay as they
        are, and so does a value map's output: the job file's own, plainly written."""
        values = plain_text(raw)
        if isinstance(spec, ColumnMap) or not is_text(values.type):
            return values
        values, found = read_numbers(values, column, self.job.number.for_column(column))
        self.failures.extend(found)
        return values

    def _constant(self, target: str, spec: Constant, kind: Kind, n: int) -> pa.Array:
        """A constant typed as its field, dictionary-encoded: serialized once, not n times."""
        one = pa.array([as_text(spec.value)])
        if kind == "money":
            one, bad, fine = to_money(one, self.job.money_scale)
        elif kind in ("integer", "boolean"):
            one, bad = convert(one, kind)
            fine = bad
        else:
            bad = fine = np.zeros(1, dtype=bool)
        if bad.any() or fine.any():
            raise JobFileError(
                str(self.job.path),
                [Problem(f"fields.{target}.value", f"{spec.value!r} is not a valid {kind}")],
            )
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), one)

    def _scale_message(self) -> str:
        scale = getattr(self.job, "money_scale", 4)
        return f"has more than {scale} decimal places; raise money_scale to send it exactly"

    def _date(self, target: str, spec, column: str, raw: pa.Array) -> pa.Array:
        fmt = spec.format if _is_date(spec) else None
        zone = (spec.timezone if _is_date(spec) else None) or self.job.timezone
        try:
            values, bad = to_utc_text(
                text_column(raw) if pa.types.is_string(raw.type) else raw, fmt, zone
            )
        except AmbiguousDates as exc:
            raise JobFileError(
                str(self.job.path),
                [
                    Problem(
                        f"fields.{target}",
                        f"column {column!r}: {exc}",
                        f"write it as {{column: {column}, format: ...}}",
                    )
                ],
            ) from None
        self._fail(bad, column, raw, "not_a_date", f"is not a date in format {fmt or 'ISO 8601'}")
        return values

    def _mapped(self, spec: ColumnMap, column: pa.Array) -> pa.Array:
        mapped, unmapped = value_map(column, spec.map, spec.default)
        known = ", ".join(str(k) for k in spec.map)
        self._fail(
            unmapped,
            spec.column,
            column,
            "unmapped_value",
            f"has no entry in the value map (known: {known})",
        )
        return mapped

    def _fail(self, mask: np.ndarray, column: str, values: pa.Array, rule: str, text: str) -> None:
        if mask.any():
            self.failures.append(Failure(mask, column, values, rule, text))


def entries_column(entries, kinds: dict[str, Kind], fields: FieldValues, n: int) -> pa.Array:
    """Fixed groups of columns (e.g. billing and shipping address) → a list of structs,
    leaving out an entry whose columns are all empty."""
    structs, keep = [], []
    for entry in entries:
        children = {k: fields.value(k, spec, kinds[k], n) for k, spec in entry.items()}
        from_columns = [children[k] for k, spec in entry.items() if not isinstance(spec, Constant)]
        structs.append(struct_column(children, always=True))
        keep.append(
            np.logical_or.reduce([present(c) for c in from_columns])
            if from_columns
            else np.ones(n, dtype=bool)
        )
    grid = np.column_stack(keep)
    counts = grid.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    which = np.nonzero(grid.ravel())[0]  # row-major: each row's entries stay together
    stacked = pa.concat_arrays(structs)  # entry-major
    order = (which % len(entries)) * n + which // len(entries)
    return pa.ListArray.from_arrays(pa.array(offsets), stacked.take(pa.array(order)))


def struct_column(children: dict[str, pa.Array], *, always: bool = False) -> pa.Array:
    """A struct column, null where every child is null (e.g. an order without a sales rep)."""
    names, arrays = list(children), list(children.values())
    if always:
        return pa.StructArray.from_arrays(arrays, names=names)
    empty = ~np.logical_or.reduce([present(a) for a in arrays])
    return pa.StructArray.from_arrays(arrays, names=names, mask=pa.array(empty))


def text_column(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return normalize_text(values)


def plain_text(values: pa.Array) -> pa.Array:
    return text_column(values) if pa.types.is_string(values.type) else values


def _is_date(spec: Any) -> bool:
    """A date spec (``{column, format, timezone}``, the orders' ``DateColumn``)."""
    return hasattr(spec, "format") and hasattr(spec, "timezone")
