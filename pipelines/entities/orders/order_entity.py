"""Orders as an entity of the one engine: headers and lines grouped into orders, order
numbers unique in a run, customers and SKUs that must exist at the target, and an order the
org holds compared line by line."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import orjson
import pyarrow as pa

from pipelines.admit.acked_state import AckedState
from pipelines.contract import API_PATHS
from pipelines.entities import EntityPlugin, EntityRun, SampleDiff
from pipelines.entities.orders.grouping import ITEMS, OrderChunk
from pipelines.entities.orders.order_feed import open_orders
from pipelines.entities.orders.order_job import OrdersJob, parse_orders_job
from pipelines.entities.orders.order_mapping import map_orders
from pipelines.entities.orders.order_prepare import prepare_orders
from pipelines.entities.orders.order_warnings import order_warnings
from pipelines.entities.orders.references import (
    CustomerReader,
    KnownValues,
    References,
    product_skus,
    products_keyed_by_sku,
)
from pipelines.extract.chunks import Chunk, empty_table
from pipelines.extract.feed import Feed
from pipelines.jobs.specs import spec_column
from pipelines.ledger.held_records import held_key_hashes, record_held
from pipelines.ledger.key_sets import in_sorted
from pipelines.load.api_reader import ApiReader
from pipelines.quality.row_warnings import RowWarning
from pipelines.transform.prepared import Prepared
from pipelines.transform.projection import Projection, read_state
from pipelines.transform.record_diff import changed_fields

__all__ = ["PLUGIN", "OrdersRun"]


class OrdersRun(EntityRun):
    job: OrdersJob

    def __init__(self, job: OrdersJob, ctx):
        super().__init__(job, ctx)
        number = spec_column(job.fields.get("orderNumber"))
        self.unique_columns = {"orderNumber": number} if number else {}
        # Key hashes of the orders the ledger holds for this job (sorted; a migration before
        # its customers exist holds millions), and those of them this run reads again: after
        # the run, a held order that was read and not held again is released. Tracking only
        # these keeps the end of a run from sorting every key it read (2,500,000 orders:
        # ~180 MB for a moment).
        self.held_keys = np.empty(0, np.int64)
        self._held_read: list[np.ndarray] = []
        self.references = self._references() if job.references.check else None

    def open_feed(self) -> Feed:
        return open_orders(self.job, self.ctx.opener)

    def prepare(self, chunk: Chunk) -> Prepared:
        p = prepare_orders(chunk, self.job)
        if len(self.held_keys) and len(p.keys):  # on worker threads: list.append is atomic
            self._held_read.append(p.keys[in_sorted(self.held_keys, p.keys)])
        return p

    def warnings(self, prepared: Prepared) -> list[RowWarning]:
        if not prepared.table.num_columns or "items" not in prepared.table.column_names:
            return []  # the rejects of a read that found no good row
        return order_warnings(prepared.table, self.job)

    def keyed(self, chunk: Chunk) -> Chunk:
        """Header rows and line rows that could not be parsed, with their order's key where
        it can be read (a line's order key is the order's)."""
        chunk = super().keyed(chunk)
        lines = getattr(chunk, "line_rejects", ())
        if all(r.external_id is not None for r in lines):
            return chunk
        source = self.job.items.source
        keys = self.row_keys(source, self.job.line_key, main=False)
        return replace(chunk, line_rejects=keys(lines))

    def notes(self, admission) -> list[str]:
        notes = [f"{admission.lines:,} order lines read"]
        if admission.line_rejects:
            notes.append(
                f"{admission.line_rejects:,} line row(s) could not be read; their orders were "
                "rejected (see the rejects file)"
            )
        return notes

    def after_run(self, run_id: int, admission) -> None:
        """The orders this run held back, kept in the ledger across runs (``held``)."""
        if self.references is None:
            return
        ctx, refs = self.ctx, self.references
        read = np.unique(np.concatenate([np.empty(0, np.int64), *self._held_read]))
        try:
            record_held(
                ctx.ledger,
                job=self.job.job,
                target_id=ctx.target.id,
                run_id=run_id,
                waiting=refs.waiting,
                given_up=np.concatenate([np.empty(0, np.int64), *refs.gave_up]),
                read=read,
            )
        finally:
            refs.waiting.close()

    def hold_back(self):
        """The lowest watermark of an order waiting for a reference (None: none waits)."""
        return self.references.hold_back if self.references is not None else None

    def api_state(self, reader: ApiReader) -> AckedState:
        orders = ApiReader(reader.client, API_PATHS["orders"])
        return read_state(orders.listing(), self.projection())

    def sample(self, reader: ApiReader, external_id: str, body: bytes) -> SampleDiff:
        """The header fields and lines that differ from the order the org holds."""
        orders = ApiReader(reader.client, API_PATHS["orders"])
        stored = next(
            (o for page in orders.listing(("ExternalId", "equals", external_id)) for o in page),
            None,
        )
        if stored is None:
            return SampleDiff(external_id, {}, found=False)
        old = self.projection().canonical(stored)
        return SampleDiff(external_id, changed_fields(old, orjson.loads(body)))

    def projection(self) -> Projection:
        """Orders as this job maps them: the schema of an empty chunk of orders, mapped."""
        job = self.job
        used = set(job.source_columns_used().values())
        line = pa.struct([pa.field(c, pa.string()) for c in job.items.columns().values()])
        empty = empty_table(used, **{ITEMS: pa.array([], pa.list_(line))})
        mapped, _ = map_orders(OrderChunk(empty, np.empty(0, np.int64), ""), job)
        return Projection(mapped.schema)

    def _references(self) -> References:
        ctx, job = self.ctx, self.job
        ledger, target, client = ctx.ledger, ctx.target, ctx.client
        customer_keys, _ = ledger.acked_state(target_id=target.id, entity="customers")
        product_keys = np.empty(0, np.int64)
        if products_keyed_by_sku(job.references.products_job):
            product_keys, _ = ledger.acked_state(target_id=target.id, entity="products")
        customers = KnownValues(customer_keys, CustomerReader(client).numbers)
        skus = KnownValues(product_keys, lambda: product_skus(ApiReader(client)))
        column = spec_column(job.fields.get("customer.customerNumber"))
        watermark = job.watermark.column if job.watermark else None
        # Only key hashes: a migration run before its customers exist holds millions.
        hold = job.hold
        self.held_keys, expired = held_key_hashes(
            ledger,
            job=job.job,
            target_id=target.id,
            max_runs=hold.max_runs if hold is not None else None,
            max_age=hold.max_age if hold is not None else None,
        )
        return References(
            customers,
            skus,
            column or "customer.customerNumber",
            job.items.sku,
            watermark,
            expired=expired,
            policy=hold.describe() if hold else "",
            workdir=ctx.options.state_dir / "tmp",  # beside the ledger, as the run's files
        )


PLUGIN = EntityPlugin("orders", parse_orders_job, OrdersRun)
