"""The pure, per-chunk part of an orders or customers run: map, check, hash, serialize.

Like :mod:`pipelines.prepare` for products, it needs nothing from other chunks, so it runs on
worker threads (``prepare_in_parallel``) while the main thread admits chunks in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.grouping import OrderChunk
from pipelines.entities.orders.order_checks import check_customers, check_orders
from pipelines.entities.orders.order_job import CustomersJob, OrdersJob
from pipelines.entities.orders.order_mapping import map_customers, map_orders
from pipelines.extract.files import Chunk
from pipelines.quality.row_checks import Failure
from pipelines.transform.serialize import key_hashes, serialize

__all__ = ["Prepared", "prepare_customers", "prepare_orders"]


@dataclass(frozen=True)
class Prepared:
    chunk: Chunk
    ids: pa.Array  # the ledger's externalId per row: an order's externalId, a customer number
    failures: list[Failure]  # rows that broke a rule of their own
    keys: np.ndarray  # hashes of ids
    passed: np.ndarray  # rows without failures: the ones serialized
    bodies: list[bytes]  # canonical JSON of the passed rows, in order
    hashes: np.ndarray  # content hashes of the passed rows
    unique: dict[str, tuple[pa.Array, np.ndarray]]  # other per-run unique fields: values, hashes
    lines: int = 0  # order lines read in this chunk
    customers: pa.Array | None = None  # orders: customer number per order
    skus: pa.Array | None = None  # orders: SKU per line
    sku_offsets: np.ndarray | None = None  # orders: where each order's lines start in ``skus``


def prepare_orders(chunk: OrderChunk, job: OrdersJob) -> Prepared:
    if not chunk.table.num_columns:  # only the rejects of a read that found no good row
        return _nothing(chunk)
    table, failures = map_orders(chunk, job)
    failures += check_orders(table, job, chunk.table)
    ids = table.column("externalId").combine_chunks()
    items = table.column("items").combine_chunks()
    offsets = items.offsets.to_numpy()
    unique = {}
    if "orderNumber" in table.column_names:
        numbers = table.column("orderNumber").combine_chunks()
        unique["orderNumber"] = (numbers, key_hashes(pc.utf8_lower(numbers)))
    customers = pc.struct_field(table.column("customer").combine_chunks(), "customerNumber")
    return _finish(
        chunk,
        table,
        ids,
        failures,
        unique,
        lines=int(offsets[-1] - offsets[0]),
        customers=customers,
        skus=pc.struct_field(items.flatten(), "sku"),
        sku_offsets=offsets - offsets[0],
    )


def prepare_customers(chunk: Chunk, job: CustomersJob) -> Prepared:
    table, failures = map_customers(chunk, job)
    failures += check_customers(table, job)
    ids = table.column("customerNumber").combine_chunks()
    return _finish(chunk, table, ids, failures, {})


def _nothing(chunk: Chunk) -> Prepared:
    empty = np.empty(0, np.int64)
    none = pa.array([], pa.string())
    return Prepared(
        chunk,
        none,
        [],
        empty,
        np.empty(0, bool),
        [],
        empty,
        {},
        0,
        none,
        none,
        np.zeros(1, np.int64),
    )


def _finish(
    chunk: Chunk, table: pa.Table, ids: pa.Array, failures: list[Failure], unique: dict, **extra
) -> Prepared:
    passed = (
        ~np.logical_or.reduce([f.mask for f in failures])
        if failures
        else np.ones(len(table), dtype=bool)
    )
    bodies, hashes = serialize(table if passed.all() else table.filter(pa.array(passed)))
    return Prepared(chunk, ids, failures, key_hashes(ids), passed, bodies, hashes, unique, **extra)
