"""Shape grouped order rows and customer rows into Nymble records, column by column.

``map_orders`` turns a chunk of orders (header columns plus the ``__items`` list column from
:mod:`.grouping`) into a table whose columns are the API's order fields, dotted job-file names
becoming structs (``customer.customerNumber`` → ``customer: {customerNumber}``) and items a
``list<struct<sku, quantity, price[, name]>>`` sharing the grouping's offsets. Cell-level
problems come back as ``Failure``s over orders; nothing here drops a row.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.grouping import ITEMS
from pipelines.entities.orders.order_job import (
    ADDRESS_FIELDS,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    ITEM_FIELDS,
    ORDER_FIELDS,
    ORDER_STATUSES,
    CustomersJob,
    DateColumn,
    Kind,
    OrdersJob,
)
from pipelines.errors import JobFileError, Problem
from pipelines.extract.files import Chunk
from pipelines.jobs.specs import ColumnMap, Constant
from pipelines.quality.row_checks import Failure
from pipelines.transform.convert import as_text, convert, normalize_text, present, value_map
from pipelines.transform.dates import AmbiguousDates, to_utc_text
from pipelines.transform.money import to_money

__all__ = ["map_customers", "map_orders", "per_order"]


def map_orders(chunk: Chunk, job: OrdersJob) -> tuple[pa.Table, list[Failure]]:
    table, n = chunk.table, len(chunk.table)
    failures: list[Failure] = []
    fields = _Fields(job, table, failures)
    columns: dict[str, pa.Array] = {"externalId": _text(table.column(job.key))}
    nested: dict[str, dict[str, pa.Array]] = defaultdict(dict)
    for target, spec in job.fields.items():
        value = fields.value(target, spec, ORDER_FIELDS[target], n)
        if target == "orderStatus":
            value = _statuses(value)
        parent, _, child = target.partition(".")
        if child:
            nested[parent][child] = value
        else:
            columns[target] = value
    for parent, children in nested.items():
        columns[parent] = _struct(children)
    columns["items"] = _items(table.column(ITEMS).combine_chunks(), job, failures)
    return pa.table(columns), failures


def map_customers(chunk: Chunk, job: CustomersJob) -> tuple[pa.Table, list[Failure]]:
    table, n = chunk.table, len(chunk.table)
    failures: list[Failure] = []
    fields = _Fields(job, table, failures)
    columns = {"customerNumber": _text(table.column(job.key))}
    for target, spec in job.fields.items():
        columns[target] = fields.value(target, spec, CUSTOMER_FIELDS[target], n)
    for name, entries, kinds in (
        ("addresses", job.addresses, ADDRESS_FIELDS),
        ("contacts", job.contacts, CONTACT_FIELDS),
    ):
        if entries:
            columns[name] = _entries(entries, kinds, fields, n)
    if job.attributes:
        columns["customerAttributes"] = pa.StructArray.from_arrays(
            [_text(table.column(c)) for c in job.attributes.values()], names=list(job.attributes)
        )
    return pa.table(columns), failures


class _Fields:
    """Converts one job-file field spec into an Arrow column, collecting failures."""

    def __init__(self, job: OrdersJob | CustomersJob, table: pa.Table, failures: list[Failure]):
        self.job, self.table, self.failures = job, table, failures

    def value(self, target: str, spec, kind: Kind, n: int) -> pa.Array:
        if isinstance(spec, Constant):
            return self._constant(target, spec, kind, n)
        column = spec if isinstance(spec, str) else spec.column
        raw = self.table.column(column).combine_chunks()
        if isinstance(spec, ColumnMap):
            raw = self._mapped(spec, _text(raw))
        if kind == "datetime":
            return self._date(target, spec, column, raw)
        if kind == "money":
            values, bad, fine = to_money(_plain_text(raw), self.job.money_scale)
            self._fail(bad, column, raw, "not_a_number", "is not a valid decimal")
            self._fail(fine, column, raw, "too_many_decimals", self._scale_message())
            return values
        if kind == "integer" and pa.types.is_integer(raw.type):
            return raw.cast(pa.int64())
        values, bad = convert(_text(raw), kind)
        rule = "not_a_boolean" if kind == "boolean" else "not_a_number"
        self._fail(bad, column, raw, rule, f"is not a valid {kind}")
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
        fmt = spec.format if isinstance(spec, DateColumn) else None
        zone = (spec.timezone if isinstance(spec, DateColumn) else None) or self.job.timezone
        try:
            values, bad = to_utc_text(
                _text(raw) if pa.types.is_string(raw.type) else raw, fmt, zone
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


def _items(items: pa.ListArray, job: OrdersJob, failures: list[Failure]) -> pa.Array:
    offsets = items.offsets.to_numpy()
    lines = items.flatten()
    table = pa.Table.from_struct_array(lines) if len(lines.type) else pa.table({})
    line_failures: list[Failure] = []
    fields = _Fields(job, table, line_failures)
    children = {
        name: fields.value(f"items.{name}", column, ITEM_FIELDS[name], len(lines))
        for name, column in job.items.columns().items()
    }
    for failure in line_failures:
        failures.append(per_order(failure, offsets - offsets[0]))
    values = pa.StructArray.from_arrays(list(children.values()), names=list(children))
    return pa.ListArray.from_arrays(pa.array(offsets - offsets[0], pa.int32()), values)


def per_order(failure: Failure, offsets: np.ndarray) -> Failure:
    """A failure over lines as a failure over their orders, reporting each order's first bad
    line as ``line N: value``."""
    counts = np.diff(offsets)
    order_of_line = np.repeat(np.arange(len(counts)), counts)
    bad_lines = np.nonzero(failure.mask)[0]
    orders, first = np.unique(order_of_line[bad_lines], return_index=True)
    mask = np.zeros(len(counts), dtype=bool)
    mask[orders] = True
    texts: list[str | None] = [None] * len(counts)
    cells = failure.values.take(pa.array(bad_lines[first])).to_pylist() if len(orders) else []
    for order, line, cell in zip(orders, bad_lines[first], cells, strict=True):
        texts[order] = f"line {int(line - offsets[order]) + 1}: {cell}"
    return Failure(
        mask, failure.column, pa.array(texts, pa.string()), failure.rule, failure.message
    )


def _entries(entries, kinds: dict[str, Kind], fields: _Fields, n: int) -> pa.Array:
    """Fixed groups of columns (e.g. billing and shipping address) → a list of structs,
    leaving out an entry whose columns are all empty."""
    structs, keep = [], []
    for entry in entries:
        children = {k: fields.value(k, spec, kinds[k], n) for k, spec in entry.items()}
        from_columns = [children[k] for k, spec in entry.items() if not isinstance(spec, Constant)]
        structs.append(_struct(children, always=True))
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


def _struct(children: dict[str, pa.Array], *, always: bool = False) -> pa.Array:
    """A struct column, null where every child is null (e.g. an order without a sales rep)."""
    names, arrays = list(children), list(children.values())
    if always:
        return pa.StructArray.from_arrays(arrays, names=names)
    empty = ~np.logical_or.reduce([present(a) for a in arrays])
    return pa.StructArray.from_arrays(arrays, names=names, mask=pa.array(empty))


def _statuses(values: pa.Array) -> pa.Array:
    """§3.6: Completed is sent as Complete; an ERP void as Cancelled."""
    if pa.types.is_dictionary(values.type):
        return pa.DictionaryArray.from_arrays(values.indices, _statuses(values.dictionary))
    keys = pa.array(list(ORDER_STATUSES))
    index = pc.index_in(values, value_set=keys)
    canonical = pc.take(pa.array(list(ORDER_STATUSES.values())), index)
    return pc.coalesce(canonical, values)


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return normalize_text(values)


def _plain_text(values: pa.Array) -> pa.Array:
    return _text(values) if pa.types.is_string(values.type) else values
