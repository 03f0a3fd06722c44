"""`reconcile`: does the target hold what the source holds? A migration's evidence, for every
entity: records missing or differing field by field, records this job sent that the source no
longer has, records nobody sent, money per currency and month, and each order's linkage.

How it streams. The target is read first, every page of it, in parallel within the run's
pacing, into a :class:`~.target_index.TargetIndex`: fixed-width columns per record sorted by
key hash (about 50 bytes each), the canonical bodies on disk. The source is then read exactly as
`run` reads it, through the engine (extract, prepare, admit; the watermark ignored; against an
empty acknowledged state, so every record that passes the job's checks is compared), one chunk
at a time. A chunk's keys are looked up in the index: an absent key is missing; equal content
hashes agree without another look; only records whose hashes differ are read back from disk
and compared field by field (``transform.canonical_compare``). Target records no source record
matched are then sorted out by the ledger's ownership. Memory holds the index and one chunk,
never the pages or the source whole.

An order job with an ``invoices:`` source also compares invoices one by one
(``run.invoice_match``): the target's are indexed in the linkage pass over the invoice list,
the source's streamed against that index after the orders.

Why not a sort-merge by key: the source comes in its own order (an ERP export, a SQL query) and
sorting it would spill it whole to disk and read it twice, while the target's pages arrive in
any order anyway; one argsort of the fixed-width index is cheaper.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson

from pipelines.admit.acked_state import AckedState
from pipelines.ledger.ownership import keys_synced_by_job
from pipelines.load.api_reader import field_of
from pipelines.load.pacing import Pacer
from pipelines.load.paged_reads import PagedReads
from pipelines.ops.differences_csv import DifferencesWriter, cell
from pipelines.ops.reconcile_report import InvoiceCheck, Reconciliation, money_rows
from pipelines.run.engine import admission_for, admitted
from pipelines.run.invoice_index import TargetInvoices
from pipelines.run.invoice_match import InvoiceMatch, open_invoices, rejects_path_for
from pipelines.run.order_linkage import check_linkage
from pipelines.run.reconcile_views import ReconcileView, reconcile_view
from pipelines.run.summary import RunSummary
from pipelines.run.target_index import TargetIndex
from pipelines.transform.canonical_compare import differences, parse_exact
from pipelines.transform.order_money import MoneyTotals, OrderMoney, order_money
from pipelines.transform.rejects import RejectsWriter

if TYPE_CHECKING:
    from pipelines.entities import EntityRun, RunContext
    from pipelines.entities.orders.order_job import OrdersJob
    from pipelines.extract.feed import Feed
    from pipelines.load.batching import Pending

__all__ = ["SAMPLE", "reconcile_job"]

SAMPLE = 20  # differences shown in the report; every one is in the differences CSV
_INDEX = re.compile(r"\[\d+\]")
_INDEX_BATCH = 5_000  # target records typed and serialized at once


def reconcile_job(
    er: EntityRun,
    ctx: RunContext,
    *,
    differences_path: Path | None = None,
    sample: int = SAMPLE,
    evidence: bool = True,
) -> Reconciliation:
    """Compare the whole source (as ``run`` reads it) with everything the target holds.
    ``ctx`` must read the whole feed (no watermark); the ledger is only read. Without
    ``evidence`` (`run --adopt` wants only which records agree) an order job's money,
    linkage and invoices are left out: no invoice is read."""
    job, o = ctx.job, ctx.options
    started = time.perf_counter()
    result = Reconciliation(job.job, job.entity, ctx.target.label)
    view = reconcile_view(job.entity)
    path = differences_path or o.state_dir / "reconcile" / f"{job.job}-differences.csv"
    with ExitStack() as stack:
        # Opened first: a source that cannot be read fails before the target is paged.
        feed = stack.enter_context(er.open_feed())
        invoices = getattr(job, "invoices", None) if evidence else None
        invoice_feed = open_invoices(job, ctx.opener, stack) if invoices is not None else None
        out = stack.enter_context(DifferencesWriter(path))
        index = stack.enter_context(
            TargetIndex(
                er.projection(),
                spill_dir=_spill_dir(o.state_dir),
                facts=view.facts,
                extra=view.extra,
            )
        )
        found = _Findings(result, out, sample)
        pacer = ctx.options.pacer or Pacer(_workers(ctx))  # one budget for every read
        reads = _reads(ctx, pacer, exact=view.exact)
        _read_target(reads, view, index, found)
        result.target_read_s = time.perf_counter() - started
        compare = _Compare(
            index,
            found,
            money=evidence and job.entity == "orders",
            lost=invoice_feed is not None,
        )
        feed_keys = _read_source(er, ctx, feed, compare, result)
        _sort_out_the_rest(ctx, index, feed_keys, found, compare)
        held = None
        if compare.money:
            held = _target_invoices(job, index, o.state_dir, stack) if invoice_feed else None
            _orders(_reads(ctx, pacer, exact=True), index, found, compare, held)
        if invoice_feed is not None and held is not None:  # orders: compare.money is set
            result.invoices = _invoices(ctx, index, held, found, compare, invoice_feed)
        result.baseline = compare.baseline()
    result.requests += reads.requests
    result.elapsed_s = time.perf_counter() - started
    result.differences = out.count
    result.differences_path = str(path) if out.count else None
    return result


def _workers(ctx: RunContext) -> int:
    return ctx.options.concurrency or ctx.job.batch.concurrency


def _reads(ctx: RunContext, pacer: Pacer, *, exact: bool) -> PagedReads:
    """Reads of list routes; ``exact``: numbers as the Decimal of their digits."""
    parse = partial(json.loads, parse_float=Decimal) if exact else orjson.loads
    policy, workers = ctx.options.policy, _workers(ctx)
    return PagedReads(ctx.client, pacer=pacer, policy=policy, workers=workers, parse=parse)


def _spill_dir(state_dir: Path) -> Path | None:
    """Beside the ledger (a disk, not a tmpfs in memory), else the system's temp directory."""
    folder = state_dir / "reconcile"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


class _Findings:
    """Counts each difference, writes it to the CSV, keeps the first few for the report."""

    def __init__(self, result: Reconciliation, out: DifferencesWriter, sample: int):
        self.result, self.out, self.sample = result, out, sample

    def add(self, key: str, kind: str, field: str = "", source=None, target=None) -> None:
        self.out.write(key, kind, field, source, target)
        if len(self.result.samples) < self.sample:
            row = {"key": key, "kind": kind, "field": field}
            self.result.samples.append(row | {"source": cell(source), "target": cell(target)})

    def changes(self, key: str, changes: dict[str, list]) -> None:
        """One record's differing fields (``{path: [target, source]}``)."""
        self.result.differ += 1
        for path, (target, source) in changes.items():
            self.add(key, "differs", path, source, target)
        fields = self.result.fields
        for name in {_INDEX.sub("[]", path) for path in changes}:
            fields[name] = fields.get(name, 0) + 1


def _read_target(
    reads: PagedReads, view: ReconcileView, index: TargetIndex, found: _Findings
) -> None:
    unkeyed = 0
    for records in _target_records(reads, view):
        for record in index.add(records):  # no key: not from any job of this tool
            unkeyed += 1
            found.add("", "unowned", view.name_field, None, field_of(record, view.name_field))
    index.finish()
    found.result.unowned += unkeyed
    found.result.target_records = len(index) + unkeyed
    if index.duplicates:
        found.result.notes.append(
            f"{index.duplicates:,} record(s) were listed twice: the target changed while it "
            "was read; reconcile again when it is quiet"
        )


def _target_records(reads: PagedReads, view: ReconcileView) -> Iterator[list[dict]]:
    """Every record the target lists, a few thousand at a time: typing and serializing them
    costs far less per record in thousands than in pages of a hundred."""
    held: list[dict] = []
    for filters in view.listings:
        for page in reads.pages(view.route, *filters):
            held += page
            if len(held) >= _INDEX_BATCH:
                yield held
                held = []
    if held:
        yield held


def _read_source(
    er: EntityRun, ctx: RunContext, feed: Feed, compare: _Compare, result: Reconciliation
) -> np.ndarray:
    """Stream the source through the engine, comparing chunk by chunk; returns the keys of
    every row read, rejected ones included."""
    job, o = ctx.job, ctx.options
    summary = RunSummary(job=job.job, entity=job.entity, target=ctx.target.label)
    path = o.rejects_path or o.state_dir / "rejects" / f"{job.job}-reconcile.csv"
    with RejectsWriter(path) as rejects:
        rejects.write(er.side_rejects())
        admission = admission_for(er, AckedState.empty(), rejects, summary)
        for pending in admitted(er, feed, admission):
            compare.chunk(pending)
    result.source_rows, result.source_rejected = summary.rows_read, summary.rejected
    result.rejects_path = str(path) if rejects.count else None
    result.notes += er.notes(admission)
    return admission.feed_keys()


class _Compare:
    """The source, chunk by chunk, against the target's index."""

    def __init__(self, index: TargetIndex, found: _Findings, *, money: bool, lost: bool = False):
        """``lost``: keep each missing order's key hash and currency (its invoices are
        missing with it)."""
        self.index, self.found, self.money = index, found, money
        self.source_money, self.target_money = MoneyTotals(), MoneyTotals()
        self._agreed: list[tuple[np.ndarray, np.ndarray]] = []
        self.lost: dict[int, str] | None = {} if lost else None

    def chunk(self, pending: Pending) -> None:
        index, result = self.index, self.found.result
        found, agree, pos = index.locate(pending.key_hashes, pending.content_hashes)
        index.seen[pos[found]] = True
        result.compared += len(pending)
        for i in np.flatnonzero(~found):
            self.found.add(pending.external_ids[i], "missing")
            if self.lost is not None:
                currency = parse_exact(pending.bodies[i]).get("currencyCode")
                self.lost[int(pending.key_hashes[i])] = str(currency or "")
        result.missing += int((~found).sum())
        for i in np.flatnonzero(found & ~agree):
            changes = differences(index.record(pos[i]), parse_exact(pending.bodies[i]))
            if changes:
                self.found.changes(pending.external_ids[i], changes)
            else:  # the same once compared canonically (a date's zone, a default filled)
                agree[i] = True
        result.agree += int(agree.sum())
        self._agreed.append((pending.key_hashes[agree], pending.content_hashes[agree]))
        if self.money:
            self._add_money(pending, found, pos)

    def _add_money(self, pending: Pending, found: np.ndarray, pos: np.ndarray) -> None:
        for body, here, at in zip(pending.bodies, found, pos, strict=True):
            source = order_money(parse_exact(body))
            if here:
                target = OrderMoney.from_bytes(self.index.extra(at))
                self.target_money.add(target)
                source = source.booked(target.currency, target.month)
            self.source_money.add(source)

    def baseline(self) -> AckedState:
        """The records that agree, as if the target had acknowledged them as the source has
        them: what `reconcile --fix` gives its run, so that it sends only the others."""
        keys = [k for k, _ in self._agreed] or [np.empty(0, np.int64)]
        hashes = [h for _, h in self._agreed] or [np.empty(0, np.int64)]
        return AckedState(np.concatenate(keys), np.concatenate(hashes))


def _sort_out_the_rest(
    ctx: RunContext, index: TargetIndex, feed_keys: np.ndarray, found: _Findings, compare: _Compare
) -> None:
    """Target records no source record matched: rejected in the source now, this job's and
    gone from the source (still active, or inactive as mirror mode leaves them), another
    job's, or nobody's."""
    rest = np.flatnonzero(~index.seen)
    if not rest.size:
        return
    job, target = ctx.job, ctx.target
    keys = index.keys[rest]
    mine, _ = keys_synced_by_job(
        ctx.ledger, job=job.job, target_id=target.id, entity=job.entity, with_ids=False
    )
    anyone, _hashes = ctx.ledger.acked_state(target_id=target.id, entity=job.entity)
    in_feed, ours, known = np.isin(keys, feed_keys), np.isin(keys, mine), np.isin(keys, anyone)
    active = index["active"][rest] if len(index["active"]) else np.ones(rest.size, bool)
    key_field = index.projection.key
    for j, pos in enumerate(rest):
        if in_feed[j]:
            kind = "rejected_at_target"
        elif ours[j]:
            kind = "gone" if active[j] else "deactivated"
        else:
            kind = "other_job" if known[j] else "unowned"
        setattr(found.result, kind, getattr(found.result, kind) + 1)
        if kind in ("gone", "unowned", "rejected_at_target"):
            found.add(str(index.record(pos).get(key_field)), kind)
        if compare.money and kind == "gone":  # this job's order: still in the target's totals
            compare.target_money.add(OrderMoney.from_bytes(index.extra(pos)))


def _orders(
    reads: PagedReads,
    index: TargetIndex,
    found: _Findings,
    compare: _Compare,
    invoices: TargetInvoices | None,
) -> None:
    """An order migration's own evidence: linkage, and money per currency and month; the
    target's invoices indexed into ``invoices`` when the job compares them."""
    result = found.result
    report = partial(_no_customer, index, found)
    result.linkage = check_linkage(reads, index, report, invoices)
    result.requests += reads.requests
    result.money = money_rows(compare.source_money, compare.target_money)


def _target_invoices(
    job: OrdersJob, index: TargetIndex, state_dir: Path, stack: ExitStack
) -> TargetInvoices:
    spec = job.invoices
    assert spec is not None

    def order_currency(pos: int) -> str:
        return OrderMoney.from_bytes(index.extra(pos)).currency

    held = TargetInvoices(
        balance=spec.balance_due is not None,
        currency=spec.currency_code is not None,
        order_currency=order_currency,
        spill_dir=_spill_dir(state_dir),
    )
    return stack.enter_context(held)


def _invoices(
    ctx: RunContext,
    index: TargetIndex,
    held: TargetInvoices,
    found: _Findings,
    compare: _Compare,
    feed: Feed,
) -> InvoiceCheck:
    """The source's invoices against the target's, one by one."""
    held.finish()
    o, job = ctx.options, ctx.job
    if held.listed_twice:
        found.result.notes.append(
            f"{held.listed_twice:,} invoice(s) were listed twice: the target changed while it "
            "was read; reconcile again when it is quiet"
        )
    rejects = o.rejects_path or o.state_dir / "rejects" / f"{job.job}-reconcile.csv"
    match = InvoiceMatch(job, index, held, found.add, compare.lost or {})
    return match.run(feed, rejects_path_for(rejects))


def _no_customer(index: TargetIndex, found: _Findings, pos: int) -> None:
    record = index.record(pos)
    number = (record.get("customer") or {}).get("customerNumber")
    key = str(record.get(index.projection.key))
    found.add(key, "no_customer", "customer.customerNumber", number, None)
