"""Contract checks on mapped orders (CONTRACT §3.3, §3.5, §6.3), as masks; whether their
totals add up is :mod:`.order_totals`'s.

Only rules that hold for one record on its own live here; duplicates across the run and
references to SKUs and customers are checked at admission (:mod:`.references`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.grouping import BROKEN
from pipelines.entities.orders.order_job import OrdersJob
from pipelines.entities.orders.order_mapping import per_order
from pipelines.quality.row_checks import (
    Failure,
    combined,
    field_columns,
    key_too_long,
    required_values,
    unknown_currency,
)
from pipelines.transform.convert import present

__all__ = ["check_orders"]


def check_orders(table: pa.Table, job: OrdersJob, grouped: pa.Table) -> list[Failure]:
    """Rules every order must pass before it is sent."""
    columns = field_columns(job.fields)
    customer = pc.struct_field(table.column("customer").combine_chunks(), "customerNumber")
    failures = [
        required_values(table.column("externalId"), job.key, "externalId"),
        key_too_long(combined(table.column("externalId")), job.key),
        required_values(
            customer, columns.get("customer.customerNumber"), "customer.customerNumber"
        ),
        *_item_rules(table.column("items").combine_chunks(), job),
        _broken(grouped, job),
    ]
    if "currencyCode" in table.column_names:
        failures.append(
            unknown_currency(combined(table.column("currencyCode")), columns.get("currencyCode"))
        )
    if "shippingDetails" in table.column_names:
        total = table.column("shippingDetails").combine_chunks()
        if "shippingTotal" in [f.name for f in total.type]:
            column = columns.get("shippingDetails.shippingTotal")
            failures.append(_negative(pc.struct_field(total, "shippingTotal"), column))
    for name in ("subtotal", "tax", "orderTotal"):
        if name in table.column_names:
            values = combined(table.column(name))
            failures.append(_negative(values, columns.get(name), "negative_amount"))
    return [f for f in failures if f is not None and f.mask.any()]


def _item_rules(items: pa.ListArray, job: OrdersJob) -> list[Failure]:
    offsets = items.offsets.to_numpy()
    offsets = offsets - offsets[0]
    lines = items.flatten()
    empty = np.diff(offsets) == 0
    no_items = Failure(
        empty,
        job.items.sku,
        pa.nulls(len(items), pa.string()),
        "no_items",
        "the order has no lines; an order needs at least one item (§6.3)",
    )
    sku, quantity, price = (pc.struct_field(lines, f) for f in ("sku", "quantity", "price"))
    by_line = [
        Failure(~present(sku), job.items.sku, sku, "required", "sku is required on every line"),
        Failure(
            ~present(quantity),
            job.items.quantity,
            quantity,
            "required",
            "quantity is required on every line",
        ),
        Failure(
            _below(quantity, 1),
            job.items.quantity,
            quantity,
            "below_minimum",
            "quantity must be greater than 0",
        ),
        Failure(
            ~present(price), job.items.price, price, "required", "price is required on every line"
        ),
        Failure(_below(price, 0), job.items.price, price, "negative_price", "must be 0 or more"),
    ]
    if job.items.line_total is not None:
        line_total = pc.struct_field(lines, "lineTotal")
        by_line.append(_negative(line_total, job.items.line_total, "negative_amount"))
    return [no_items] + [per_order(f, offsets) for f in by_line if f.mask.any()]


def _broken(grouped: pa.Table, job: OrdersJob) -> Failure | None:
    if BROKEN not in grouped.column_names:
        return None
    mask = grouped.column(BROKEN).to_numpy(zero_copy_only=False).astype(bool)
    return Failure(
        mask,
        job.line_key,
        None,
        "malformed_line",
        "a line of this order could not be read (see the rejects of its lines); "
        "the order is not sent without it",
    )


def _below(values: pa.Array, minimum: int) -> np.ndarray:
    return pc.fill_null(pc.less(values, minimum), False).to_numpy(zero_copy_only=False)


def _negative(values: pa.Array, column: str | None, rule: str = "negative_price") -> Failure:
    if pa.types.is_dictionary(values.type):  # a constant
        values = values.dictionary_decode()
    return Failure(_below(values, 0), column, values, rule, "must be 0 or more")
