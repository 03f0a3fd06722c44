"""Shape grouped order rows into Nymble order records, column by column.

``map_orders`` turns a chunk of orders (header columns plus the ``__items`` list column from
:mod:`.grouping`) into a table whose columns are the API's order fields, dotted job-file names
becoming structs (``customer.customerNumber`` → ``customer: {customerNumber}``) and items a
``list<struct<sku, quantity, price[, name][, lineTotal]>>`` sharing the grouping's offsets
(``lineTotal`` mapped, or computed from a mapped discount). Cell-level problems come back as
``Failure``s over orders; nothing here drops a row.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.grouping import ITEMS
from pipelines.entities.orders.order_job import ITEM_FIELDS, ORDER_FIELDS, ORDER_STATUSES, OrdersJob
from pipelines.entities.orders.order_totals import discounted_totals
from pipelines.extract.chunks import Chunk
from pipelines.quality.row_checks import Failure
from pipelines.transform.field_values import FieldValues, struct_column, text_column

__all__ = ["map_orders", "per_order"]


def map_orders(chunk: Chunk, job: OrdersJob) -> tuple[pa.Table, list[Failure]]:
    table, n = chunk.table, len(chunk.table)
    failures: list[Failure] = []
    fields = FieldValues(job, table, failures)
    columns: dict[str, pa.Array] = {"externalId": text_column(table.column(job.key))}
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
        columns[parent] = struct_column(children)
    columns["items"] = _items(table.column(ITEMS).combine_chunks(), job, failures)
    return pa.table(columns), failures


def _items(items: pa.ListArray, job: OrdersJob, failures: list[Failure]) -> pa.Array:
    offsets = items.offsets.to_numpy()
    lines = items.flatten()
    table = pa.Table.from_struct_array(lines) if len(lines.type) else pa.table({})
    line_failures: list[Failure] = []
    fields = FieldValues(job, table, line_failures)
    children = {
        name: fields.value(f"items.{name}", column, ITEM_FIELDS[name], len(lines))
        for name, column in job.items.columns().items()
        if name in ITEM_FIELDS
    }
    if job.items.discount is not None:
        children["lineTotal"] = _discounted(children, fields, job, line_failures)
    for failure in line_failures:
        failures.append(per_order(failure, offsets - offsets[0]))
    values = pa.StructArray.from_arrays(list(children.values()), names=list(children))
    return pa.ListArray.from_arrays(pa.array(offsets - offsets[0], pa.int32()), values)


def _discounted(
    children: dict[str, pa.Array], fields: FieldValues, job: OrdersJob, failures: list[Failure]
) -> pa.Array:
    """§3.5: the line total the ERP computed from its discount, rounded by the job's rule."""
    items, column = job.items, job.items.discount.column
    discount = fields.value("items.discount", column, "money", len(fields.table))
    totals, found = discounted_totals(
        children["quantity"], children["price"], discount, items.discount, items.rounding,
        job.money_scale, fields.table.column(column).combine_chunks(),
    )  # fmt: skip
    failures += found
    return totals


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


def _statuses(values: pa.Array) -> pa.Array:
    """§3.6: Completed is sent as Complete; an ERP void as Cancelled."""
    if pa.types.is_dictionary(values.type):
        return pa.DictionaryArray.from_arrays(values.indices, _statuses(values.dictionary))
    keys = pa.array(list(ORDER_STATUSES))
    index = pc.index_in(values, value_set=keys)
    canonical = pc.take(pa.array(list(ORDER_STATUSES.values())), index)
    return pc.coalesce(canonical, values)
