"""Orders and customers runs, top to bottom: extract, group, map, check, diff, load, ledger.

``run_orders`` and ``run_customers`` have the shape of ``run_products``: handed the ledger,
HTTP client, target (and SQL engines), they return the run summary, with every order or
customer read counted once (order lines are counted in a note). The send path is the
products' own: Batcher → Dispatcher → Sender (or ``PutEach`` for customers) under one Pacer,
batches recorded in the ledger before they are sent and their outcomes after.
``sync_entity`` builds those resources from ``SyncSettings``, as ``app.sync`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

import httpx
import numpy as np
import sqlalchemy as sa

from pipelines.admit.acked_state import AckedState
from pipelines.contract import BULK_ENDPOINTS
from pipelines.entities.orders.order_admission import Admission, References, watermark_text
from pipelines.entities.orders.order_feed import Feed, open_customers, open_orders, overlap_start
from pipelines.entities.orders.order_job import (
    CustomersJob,
    EntityJob,
    OrdersJob,
    SqlSource,
    load_entity_job,
)
from pipelines.entities.orders.order_prepare import Prepared, prepare_customers, prepare_orders
from pipelines.entities.orders.references import (
    CustomerReader,
    KnownValues,
    product_skus,
    products_keyed_by_sku,
)
from pipelines.entities.products.product_prepare import prepare_in_parallel
from pipelines.errors import NymbleSyncError
from pipelines.extract.sql import SqlSourceConfig, make_engine, resolve_url
from pipelines.ledger import Ledger, lock_holder
from pipelines.load.api_reader import ApiReader
from pipelines.load.pacing import Pacer
from pipelines.load.put_each import PutEach
from pipelines.load.sender import Sender
from pipelines.run.commands import (
    SyncSettings,
    client_for,
    default_ledger_url,
    open_target,
    run_options,
)
from pipelines.run.delivery import Delivery, open_run
from pipelines.run.engine import RunOptions
from pipelines.run.summary import RunSummary
from pipelines.targets import Target
from pipelines.transform.rejects import RejectsWriter

__all__ = ["run_customers", "run_orders", "sync_entity"]

CUSTOMERS_ENDPOINT = "/api/customers"
AdmissionFactory = Callable[[AckedState, RejectsWriter, RunSummary], Admission]


def run_orders(
    job: OrdersJob,
    target: Target,
    ledger: Ledger,
    client: httpx.Client,
    options: RunOptions,
    engines: Mapping[str, sa.Engine] | None = None,
) -> RunSummary:
    start = _watermark_from(job, ledger, target, options)
    refs = _references(job, ledger, target, client) if job.references.check else None
    sender = Sender(
        client,
        BULK_ENDPOINTS["orders"],
        policy=options.policy,
        pacer=options.pacer or Pacer(options.concurrency or job.batch.concurrency),
    )
    unique = {"orderNumber": _column(job, "orderNumber")}
    with open_orders(job, options, engines or {}, start) as feed:
        run = _EntityRun(job, target, ledger, options, sender, feed.name)
        summary = run.execute(
            _admission(job, refs, unique), _prepared(feed, lambda c: prepare_orders(c, job))
        )
        _notes(summary, run.admission, start)
        _store_watermark(job, ledger, target, feed, summary, run.admission.hold_back)
    return summary


def run_customers(
    job: CustomersJob,
    target: Target,
    ledger: Ledger,
    client: httpx.Client,
    options: RunOptions,
    engines: Mapping[str, sa.Engine] | None = None,
) -> RunSummary:
    start = _watermark_from(job, ledger, target, options)
    concurrency = options.concurrency or job.batch.concurrency
    sender = PutEach(
        client, CUSTOMERS_ENDPOINT, policy=options.policy, pacer=options.pacer or Pacer(concurrency)
    )
    with open_customers(job, options, engines or {}, start) as feed:
        run = _EntityRun(job, target, ledger, options, sender, feed.name)
        summary = run.execute(
            _admission(job, None, {}), _prepared(feed, lambda c: prepare_customers(c, job))
        )
        _store_watermark(job, ledger, target, feed, summary, None)
    return summary


def sync_entity(settings: SyncSettings) -> RunSummary:
    """Run one orders or customers job against one target, as ``app.sync`` runs products."""
    job = load_entity_job(settings.job_path)
    runner = run_orders if isinstance(job, OrdersJob) else run_customers
    with (
        _resources(settings, job) as (target, ledger, client, engines),
        ledger.acquire_lock(job=job.job, target_id=target.id, holder=lock_holder()) as lock,
    ):
        if lock.took_over_from:
            settings.log(f"took over the lock of {lock.took_over_from}, which had stopped")
        return runner(job, target, ledger, client, run_options(settings), engines)


# --- the run loop -----------------------------------------------------------------------------


class _EntityRun:
    """One orders or customers run around the shared send half, ``Delivery``."""

    def __init__(
        self,
        job: EntityJob,
        target: Target,
        ledger: Ledger,
        options: RunOptions,
        sender: Sender | PutEach,
        source: str,
    ):
        self.job, self.target, self.ledger, self.options = job, target, ledger, options
        self.sender, self.source = sender, source
        self.summary = RunSummary(job=job.job, entity=job.entity, target=target.label)

    def execute(self, admission: AdmissionFactory, prepared: Iterator[Prepared]) -> RunSummary:
        o = self.options
        scope = open_run(self.ledger, self.target, self.summary, self.source, o)
        self.admission = admission(scope.acked_state(o.full), scope.rejects, self.summary)
        delivery = Delivery(
            scope,
            self.sender,
            max_items=o.batch_items or self.job.batch.max_items,
            max_bytes=self.job.batch.max_bytes,
        )
        try:
            for pending in map(self.admission.admit, prepared):
                delivery.send([pending])
                scope.beat()
            delivery.finish()
            troubled = self.summary.rejected or self.summary.failed
            self.summary.status = "partial" if troubled else "succeeded"
        except NymbleSyncError as exc:
            self.summary.status = "failed"
            self.summary.notes.append(str(exc))
            delivery.stop()
            raise
        finally:
            delivery.close()
            scope.finish()
        return self.summary


# --- pieces -----------------------------------------------------------------------------------


def _prepared(feed: Feed, prepare: Callable) -> Iterator[Prepared]:
    return prepare_in_parallel(feed.chunks, prepare)


def _admission(
    job: EntityJob, refs: References | None, unique: dict[str, str | None]
) -> AdmissionFactory:
    """How the run builds its admission once it knows its acknowledged state."""
    columns = {field: column for field, column in unique.items() if column is not None}
    watermark = job.watermark.column if job.watermark else None

    def admission(state: AckedState, rejects: RejectsWriter, summary: RunSummary) -> Admission:
        return Admission(
            key_column=job.key,
            unique_columns=columns,
            state=state,
            rejects=rejects,
            summary=summary,
            references=refs,
            watermark_column=watermark,
        )

    return admission


def _references(job: OrdersJob, ledger: Ledger, target: Target, client: httpx.Client) -> References:
    customer_keys, _ = ledger.acked_state(target_id=target.id, entity="customers")
    product_keys = np.empty(0, np.int64)
    if products_keyed_by_sku(job.references.products_job):
        product_keys, _ = ledger.acked_state(target_id=target.id, entity="products")
    customers = KnownValues(customer_keys, CustomerReader(client).numbers)
    skus = KnownValues(product_keys, lambda: product_skus(ApiReader(client)))
    column = _column(job, "customer.customerNumber") or "customer.customerNumber"
    return References(customers, skus, column, job.items.sku)


def _column(job: OrdersJob, field: str) -> str | None:
    spec = job.fields.get(field)
    return spec if isinstance(spec, str) else getattr(spec, "column", None)


def _watermark_from(
    job: EntityJob, ledger: Ledger, target: Target, options: RunOptions
) -> str | None:
    if job.watermark is None or options.full:
        return None
    stored = ledger.get_watermark(job=job.job, target_id=target.id)
    return overlap_start(stored, job.watermark.overlap)


def _store_watermark(
    job: EntityJob, ledger: Ledger, target: Target, feed: Feed, summary: RunSummary, hold_back
) -> None:
    """After a run that read everything and lost nothing: the largest watermark read, held
    back to the earliest order still waiting for a reference."""
    if job.watermark is None or summary.status == "failed" or summary.failed or summary.skipped:
        return
    value = feed.max_watermark
    held = watermark_text(hold_back)
    if value is None:
        return
    if held is not None and held < value:
        value = held
        summary.notes.append(f"watermark held at {held}: orders there wait for a reference")
    ledger.set_watermark(job=job.job, target_id=target.id, value=value)


def _notes(summary: RunSummary, admission: Admission, start: str | None) -> None:
    summary.notes.append(f"{admission.lines:,} order lines read")
    if start is not None:
        summary.notes.append(f"incremental read from {start}")
    if admission.line_rejects:
        summary.notes.append(
            f"{admission.line_rejects:,} line row(s) could not be read; their orders were "
            "rejected (see the rejects file)"
        )


@contextmanager
def _resources(settings: SyncSettings, job: EntityJob):
    with ExitStack() as stack:
        ledger = Ledger.connect(settings.ledger_url or default_ledger_url(settings.state_dir))
        stack.callback(ledger.close)
        target = stack.enter_context(
            open_target(
                settings,
                allow_production=settings.allow_production or job.allow_production,
                warn=settings.log,
            )
        )
        concurrency = settings.concurrency or job.batch.concurrency
        client = stack.enter_context(client_for(target, job.batch.timeout_s, concurrency))
        engines: dict[str, sa.Engine] = {}
        for source in _sql_sources(job):
            if source.url_env not in engines:
                config = SqlSourceConfig(url_env=source.url_env, query_file=source.query)
                url = resolve_url(config, settings.environ)
                engines[source.url_env] = make_engine(url, env_var=source.url_env)
                stack.callback(engines[source.url_env].dispose)
        yield target, ledger, client, engines


def _sql_sources(job: EntityJob) -> list[SqlSource]:
    sources = [job.source]
    if isinstance(job, OrdersJob) and job.items.source is not None:
        sources.append(job.items.source)
    return [s for s in sources if isinstance(s, SqlSource)]
