"""Warnings about mapped orders: values the API takes as they are but a migration should look
at (CONTRACT §3.2–3.5). They reject nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.order_job import OrdersJob
from pipelines.entities.orders.order_mapping import per_order
from pipelines.quality.row_checks import field_columns
from pipelines.quality.row_warnings import RowWarning

__all__ = ["order_warnings"]

_UTC_TEXT = "%Y-%m-%dT%H:%M:%SZ"  # how mapped dates read (transform.dates): they sort as text


def order_warnings(
    table: pa.Table, job: OrdersJob, now: datetime | None = None
) -> list[RowWarning]:
    """An order dated after ``now`` (default: the present; §3.2 stores ``orderDate`` as
    given: a day/month mix-up or a wrong year shows this way), and lines priced 0 (§3.3:
    the API fills a price from the catalog only when none is sent; a 0 is kept)."""
    found = []
    if "orderDate" in table.column_names:
        moment = (now or datetime.now(UTC)).strftime(_UTC_TEXT)
        column = field_columns(job.fields).get("orderDate")
        found.append(_future(table.column("orderDate").combine_chunks(), moment, column))
    if "items" in table.column_names:
        found.append(_free_lines(table.column("items").combine_chunks(), job))
    return [w for w in found if w.mask.any()]


def _future(dates: pa.Array, moment: str, column: str | None) -> RowWarning:
    if pa.types.is_dictionary(dates.type):  # a constant date
        dates = dates.dictionary_decode()
    later = pc.fill_null(pc.greater(dates, moment), False).to_numpy(zero_copy_only=False)
    return RowWarning(
        later,
        column,
        dates,
        "future_order_date",
        f"orderDate is in the future (after {moment}); the API stores it as it is",
    )


def _free_lines(items: pa.ListArray, job: OrdersJob) -> RowWarning:
    offsets = items.offsets.to_numpy()
    prices = pc.struct_field(items.flatten(), "price")
    zero = pa.scalar(Decimal(0), prices.type) if pa.types.is_decimal(prices.type) else 0
    free = pc.fill_null(pc.equal(prices, zero), False).to_numpy(zero_copy_only=False)
    lines = RowWarning(
        free,
        job.items.price,
        prices,
        "zero_price_line",
        "a line's price is 0: the API keeps it (it takes the catalog price only when no "
        "price is sent)",
    )
    return per_order(lines, offsets - offsets[0])
