"""Contract checks on mapped orders and customers (CONTRACT §3.3, §4.1, §6.3), as masks.

Only rules that hold for one record on its own live here; duplicates across the run and
references to SKUs and customers are the admission's (:mod:`.admission`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.grouping import BROKEN
from pipelines.entities.orders.order_job import CustomersJob, OrdersJob
from pipelines.entities.orders.order_mapping import per_order
from pipelines.quality.row_checks import Failure, key_too_long, unknown_currency
from pipelines.transform.convert import present

__all__ = ["check_customers", "check_orders"]

_CUSTOMER_REQUIRED = ("companyName", "companyEmail", "pricing")  # §4.1 "Req." column


def check_orders(table: pa.Table, job: OrdersJob, grouped: pa.Table) -> list[Failure]:
    """Rules every order must pass before it is sent."""
    columns = _sources(job.fields)
    customer = pc.struct_field(table.column("customer").combine_chunks(), "customerNumber")
    failures = [
        _missing(table.column("externalId"), job.key, "externalId"),
        key_too_long(_whole(table.column("externalId")), job.key),
        _missing(customer, columns.get("customer.customerNumber"), "customer.customerNumber"),
        *_item_rules(table.column("items").combine_chunks(), job),
        _broken(grouped, job),
    ]
    if "currencyCode" in table.column_names:
        failures.append(
            unknown_currency(_whole(table.column("currencyCode")), columns.get("currencyCode"))
        )
    if "shippingDetails" in table.column_names:
        total = table.column("shippingDetails").combine_chunks()
        if "shippingTotal" in [f.name for f in total.type]:
            column = columns.get("shippingDetails.shippingTotal")
            failures.append(_negative(pc.struct_field(total, "shippingTotal"), column))
    return [f for f in failures if f is not None and f.mask.any()]


def check_customers(table: pa.Table, job: CustomersJob) -> list[Failure]:
    columns = _sources(job.fields)
    failures = [
        _missing(table.column("customerNumber"), job.key, "customerNumber"),
        key_too_long(_whole(table.column("customerNumber")), job.key),
    ]
    for name in _CUSTOMER_REQUIRED:
        if name not in table.column_names:
            continue  # load_entity_job cannot know; the API will say so for every customer
        failures.append(_missing(table.column(name), columns.get(name), name))
    if "currencyCode" in table.column_names:
        failures.append(
            unknown_currency(_whole(table.column("currencyCode")), columns.get("currencyCode"))
        )
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
        "a line of this order could not be read (see its malformed_row reject); "
        "the order is not sent without it",
    )


def _below(values: pa.Array, minimum: int) -> np.ndarray:
    return pc.fill_null(pc.less(values, minimum), False).to_numpy(zero_copy_only=False)


def _negative(values: pa.Array, column: str | None) -> Failure:
    return Failure(_below(values, 0), column, values, "negative_price", "must be 0 or more")


def _missing(values, column: str | None, field: str) -> Failure:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return Failure(~present(values), column, values, "required", f"{field} is required")


def _whole(values) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _sources(fields: dict) -> dict[str, str]:
    return {
        target: spec if isinstance(spec, str) else getattr(spec, "column", None)
        for target, spec in fields.items()
    }
