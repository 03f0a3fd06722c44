"""Whether each order `reconcile` compared is linked at the target: its customer exists, and
which invoices it has, with their status and balance (CONTRACT §4.1, §4.3).

Customers are read once as a sorted array of hashes. Invoices are read through the whole
invoice list (one request per hundred invoices) rather than ``GET /api/invoices?orderId=`` per
order (one request per order, a quarter of a million for a large migration); each invoice
finds its order by the hash of ``orderId``. With an ``invoices:`` source in the job, the same
pass fills the index its invoices are matched against (``run.invoice_index``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pyarrow as pa

from pipelines.contract import API_PATHS
from pipelines.load.api_reader import field_of
from pipelines.load.paged_reads import PagedReads
from pipelines.ops.reconcile_report import Linkage
from pipelines.run.invoice_index import TargetInvoices, target_amount
from pipelines.run.reconcile_views import customer_hashes
from pipelines.run.target_index import TargetIndex
from pipelines.transform.serialize import key_hashes

__all__ = ["check_linkage"]


def check_linkage(
    reads: PagedReads,
    index: TargetIndex,
    report: Callable[[int], None],
    invoices: TargetInvoices | None = None,
) -> Linkage:
    """Linkage of the orders ``index.seen`` marks (those the source holds); ``report`` is
    called with the index position of each order whose customer the target lacks. Every
    invoice of an order in ``index`` goes into ``invoices`` when given."""
    link = Linkage(orders_checked=int(index.seen.sum()))
    known = [np.empty(0, np.int64)]
    for page in reads.pages(API_PATHS["customers"]):
        known.append(customer_hashes([field_of(c, "customerNumber") for c in page]))
    linked = np.isin(index["customers"], np.concatenate(known)) & (index["customers"] != 0)
    for pos in np.flatnonzero(index.seen & ~linked):
        link.customers_missing += 1
        report(int(pos))
    _invoices(reads, index, link, invoices)
    return link


def _invoices(
    reads: PagedReads, index: TargetIndex, link: Linkage, into: TargetInvoices | None
) -> None:
    ids = index["ids"]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    invoiced = np.zeros(len(ids), dtype=bool)
    held = _Batch(into, index)
    for page in reads.pages(API_PATHS["invoices"]):
        wanted = [field_of(i, "orderId") for i in page]
        hashes = key_hashes(pa.array([str(w) if w else None for w in wanted], pa.string()))
        at = np.minimum(np.searchsorted(sorted_ids, hashes), max(len(ids) - 1, 0))
        known = (sorted_ids[at] == hashes) & (hashes != 0) if len(ids) else hashes != hashes
        where = order[at] if len(ids) else at
        compared = known & index.seen[where] if len(ids) else known
        held.add(page, known, where, compared)
        link.invoices_of_other_orders += int((~compared).sum())
        invoiced[where[compared]] = True
        link.invoices += int(compared.sum())
        for i in np.flatnonzero(compared):
            invoice = page[i]
            link.add_invoice(
                str(field_of(invoice, "status") or ""),
                str(field_of(invoice, "currencyCode") or ""),
                target_amount(field_of(invoice, "total")) or Decimal(0),
                target_amount(field_of(invoice, "balanceDue")) or Decimal(0),
            )
    held.flush()
    link.orders_with_invoices = int((invoiced & index.seen).sum())
    link.orders_without_invoices = link.orders_checked - link.orders_with_invoices


class _Batch:
    """Invoices of indexed orders, handed to the invoice index a few thousand at a time:
    typing and hashing them costs far less per invoice in thousands than in pages of a
    hundred."""

    SIZE = 5_000

    def __init__(self, into: TargetInvoices | None, index: TargetIndex):
        self.into, self.index = into, index
        self.invoices: list[dict] = []
        self.orders: list[np.ndarray] = []
        self.compared: list[np.ndarray] = []

    def add(self, page: list[dict], known: np.ndarray, where: np.ndarray, compared: np.ndarray):
        if self.into is None or not known.any():
            return
        held = np.flatnonzero(known)
        self.invoices += [page[i] for i in held]
        self.orders.append(where[held])
        self.compared.append(compared[held])
        if len(self.invoices) >= self.SIZE:
            self.flush()

    def flush(self) -> None:
        if self.into is None or not self.invoices:
            return
        orders = np.concatenate(self.orders)
        self.into.add(self.invoices, orders, self.index.keys[orders], np.concatenate(self.compared))
        self.invoices, self.orders, self.compared = [], [], []
