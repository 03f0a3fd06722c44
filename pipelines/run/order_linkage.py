"""Whether each order `reconcile` compared is linked at the target: its customer exists, and
which invoices it has, with their status and balance (CONTRACT §4.1, §4.3).

Customers are read once as a sorted array of hashes. Invoices are read through the whole
invoice list (one request per hundred invoices) rather than ``GET /api/invoices?orderId=`` per
order (one request per order, a quarter of a million for a large migration); each invoice
finds its order by the hash of ``orderId``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

import numpy as np
import pyarrow as pa

from pipelines.contract import API_PATHS
from pipelines.load.api_reader import field_of
from pipelines.load.paged_reads import PagedReads
from pipelines.ops.reconcile_report import Linkage
from pipelines.run.reconcile_views import customer_hashes
from pipelines.run.target_index import TargetIndex
from pipelines.transform.serialize import key_hashes

__all__ = ["check_linkage"]


def check_linkage(reads: PagedReads, index: TargetIndex, report: Callable[[int], None]) -> Linkage:
    """Linkage of the orders ``index.seen`` marks (those the source holds); ``report`` is
    called with the index position of each order whose customer the target lacks."""
    link = Linkage(orders_checked=int(index.seen.sum()))
    known = [np.empty(0, np.int64)]
    for page in reads.pages(API_PATHS["customers"]):
        known.append(customer_hashes([field_of(c, "customerNumber") for c in page]))
    linked = np.isin(index["customers"], np.concatenate(known)) & (index["customers"] != 0)
    for pos in np.flatnonzero(index.seen & ~linked):
        link.customers_missing += 1
        report(int(pos))
    _invoices(reads, index, link)
    return link


def _invoices(reads: PagedReads, index: TargetIndex, link: Linkage) -> None:
    ids = index["ids"]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    invoiced = np.zeros(len(ids), dtype=bool)
    for page in reads.pages(API_PATHS["invoices"]):
        wanted = [field_of(i, "orderId") for i in page]
        hashes = key_hashes(pa.array([str(w) if w else None for w in wanted], pa.string()))
        pos = np.minimum(np.searchsorted(sorted_ids, hashes), max(len(ids) - 1, 0))
        for invoice, at, h in zip(page, pos, hashes, strict=True):
            where = int(order[at]) if len(ids) and sorted_ids[at] == h else None
            if where is None or not index.seen[where]:
                link.invoices_of_other_orders += 1
                continue
            invoiced[where] = True
            link.invoices += 1
            link.add_invoice(
                str(field_of(invoice, "status") or ""),
                str(field_of(invoice, "currencyCode") or ""),
                _decimal(field_of(invoice, "total")),
                _decimal(field_of(invoice, "balanceDue")),
            )
    link.orders_with_invoices = int((invoiced & index.seen).sum())
    link.orders_without_invoices = link.orders_checked - link.orders_with_invoices


def _decimal(value) -> Decimal:
    """An amount as exact digits; a float by its shortest text; nothing (or no number): 0."""
    if isinstance(value, bool) or value is None:
        return Decimal(0)
    try:
        return Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError):
        return Decimal(0)
