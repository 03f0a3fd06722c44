"""The pure, per-chunk part of an orders run: map, check (totals last), hash and serialize a
chunk of orders (headers with their lines). It needs nothing from other chunks, so it runs on
worker threads while the main thread admits chunks in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.grouping import OrderChunk
from pipelines.entities.orders.order_checks import check_orders
from pipelines.entities.orders.order_job import OrdersJob
from pipelines.entities.orders.order_mapping import map_orders
from pipelines.entities.orders.order_totals import total_rules
from pipelines.transform.prepared import Prepared, passed_rows, prepared
from pipelines.transform.serialize import key_hashes

__all__ = ["OrderReferences", "prepare_orders"]


@dataclass(frozen=True)
class OrderReferences:
    """What the reference checks of a chunk of orders look at."""

    customers: pa.Array  # customer number per order
    skus: pa.Array  # SKU per line
    offsets: np.ndarray  # where each order's lines start in ``skus``


def prepare_orders(chunk: OrderChunk, job: OrdersJob) -> Prepared:
    if not chunk.table.num_columns:  # only the rejects of a read that found no good row
        return _nothing(chunk)
    table, failures = map_orders(chunk, job)
    failures += check_orders(table, job, chunk.table)
    failures += total_rules(table, job, passed_rows(failures, len(table)))
    ids = table.column("externalId").combine_chunks()
    items = table.column("items").combine_chunks()
    offsets = items.offsets.to_numpy()
    unique = {}
    if "orderNumber" in table.column_names:
        numbers = table.column("orderNumber").combine_chunks()
        unique["orderNumber"] = (numbers, key_hashes(pc.utf8_lower(numbers)))
    customers = pc.struct_field(table.column("customer").combine_chunks(), "customerNumber")
    refs = OrderReferences(customers, pc.struct_field(items.flatten(), "sku"), offsets - offsets[0])
    return prepared(
        chunk,
        table,
        ids,
        failures,
        unique=unique,
        lines=int(offsets[-1] - offsets[0]),
        references=refs,
    )


def _nothing(chunk: OrderChunk) -> Prepared:
    none = pa.array([], pa.string())
    refs = OrderReferences(none, none, np.zeros(1, np.int64))
    return prepared(chunk, pa.table({"externalId": none}), none, [], references=refs)
