"""`reconcile` of an order job's ``invoices:`` source: every invoice the ERP lists against the
target's, matched by order and invoice number (CONTRACT §4.3).

The target's invoices are indexed first (``run.invoice_index``, filled by the linkage pass over
the invoice list); the source is then read chunk by chunk, checked (``invoice_rows``) and looked
up: equal content hashes agree; the others are read back and compared field by field (status
case-insensitively, total and balance as exact decimals, currency where the row states one).
Source invoices of orders that were compared are compared; those of orders the source holds
but the target lacks are missing with their order; those of other orders (rejected now, or
absent from the order source) are counted, not compared. Target invoices of compared orders
that no source row matched are named last. Memory holds the index and one chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from pipelines.entities.orders.invoice_rows import InvoiceRows, read_invoices
from pipelines.errors import ConfigError
from pipelines.extract.feed import Feed, SourceOpener
from pipelines.jobs.job_file import check_columns
from pipelines.jobs.specs import SqlSource
from pipelines.ops.reconcile_report import InvoiceCheck, invoice_money_rows
from pipelines.run.invoice_index import InvoiceMoney, TargetInvoices
from pipelines.run.target_index import TargetIndex
from pipelines.transform.order_money import OrderMoney
from pipelines.transform.rejects import RejectsWriter

if TYPE_CHECKING:
    from pipelines.entities.orders.order_job import OrdersJob

__all__ = ["InvoiceMatch", "invoice_changes", "open_invoices", "rejects_path_for"]

# (key, kind, field, source value, target value): one row of the differences CSV
Report = Callable[[str, str, str, Any, Any], None]


def open_invoices(job: OrdersJob, opener: SourceOpener, stack: ExitStack) -> Feed:
    """The invoices source, its columns checked against the job (a job-file error naming
    each key whose column is absent) before any row is read; closed with ``stack``."""
    spec = job.invoices
    assert spec is not None
    source = spec.source
    if isinstance(source, SqlSource) and source.url_env not in opener.engines:
        raise ConfigError(
            f"{job.path}: invoices.source reads the database in {source.url_env}, which no "
            "order source of the job reads; read the invoices from the orders' database (the "
            "same url_env), or from a file"
        )
    feed = stack.enter_context(Feed(opener.name(source, main=False)))
    columns, feed.chunks = opener.open(source, feed, main=False, number=job.number)
    check_columns(job, job.invoice_columns_used(), columns, source=feed.name)
    return feed


class InvoiceMatch:
    """One reconcile's invoices: the target's index, the source's chunks, what was found."""

    def __init__(
        self,
        job: OrdersJob,
        index: TargetIndex,
        target: TargetInvoices,
        report: Report,
        missing_orders: dict[int, str],
    ):
        """``missing_orders``: the key hash of each order the source holds and the target
        lacks, with its currency (its invoices are missing too)."""
        self.job, self.index, self.target, self.report = job, index, target, report
        self.missing_orders = missing_orders
        self._missing_keys = np.fromiter(missing_orders, np.int64, len(missing_orders))
        self.check = InvoiceCheck()
        self.source_money = InvoiceMoney()
        self._order_keys: dict[int, str] = {}  # index position → order key, for extras

    def run(self, feed: Feed, rejects_path: Path) -> InvoiceCheck:
        check = self.check
        check.source = feed.name
        with RejectsWriter(rejects_path) as rejects:
            for rows, rejected, rejected_keys in read_invoices(self.job, feed.chunks):
                rejects.write(rejected)
                bad_rows = len({(r.source, r.row) for r in rejected})
                check.source_rows += len(rows) + bad_rows
                check.source_rejected += bad_rows
                self._chunk(rows)
                self._rejected(rejected_keys)
        check.rejects_path = str(rejects_path) if rejects.count else None
        self._extras()
        check.money = invoice_money_rows(self.source_money.sums, self.target.money.sums)
        return check

    def _chunk(self, rows: InvoiceRows) -> None:
        index, target, check = self.index, self.target, self.check
        no_content = np.zeros(len(rows), np.int64)  # only whether each order is there
        order_found, _same, order_pos = index.locate(rows.order_hashes, no_content)
        compared = order_found & index.seen[order_pos] if len(index) else order_found
        lost = np.isin(rows.order_hashes, self._missing_keys)  # with their orders
        considered = compared | lost
        check.not_compared += int((~considered).sum())
        check.compared += int(considered.sum())
        found, pos = target.locate(rows.keys)
        found &= compared
        target.seen[pos[found]] = True
        held = target["content"][pos] if len(target) else np.zeros(len(rows), np.int64)
        agree = found & (held == rows.content)
        for i in np.flatnonzero(found & ~agree):
            agree[i] = not self._differences(rows, i, target.invoice(int(pos[i])))
        check.agree += int(agree.sum())
        check.differ += int((found & ~agree).sum())
        missing = considered & ~found
        for i in np.flatnonzero(missing):
            held = rows.invoice(i)
            field = f"invoices[{held.pop('invoiceNumber')}]"
            self.report(rows.order_keys[i].as_py(), "invoice_missing", field, _shown(held), None)
        check.missing += int(missing.sum())
        currency = self._currencies(rows, found, pos, order_found, order_pos, missing)
        self._add_money(rows, considered, currency)

    def _differences(self, rows: InvoiceRows, i: int, held: dict[str, Any]) -> bool:
        """Name each field of row ``i`` that differs from the target's invoice ``held``."""
        source = rows.invoice(i)
        changes = invoice_changes(source, held)
        key, number = rows.order_keys[i].as_py(), source["invoiceNumber"]
        for name, (theirs, ours) in changes.items():
            self.report(key, "invoice_differs", f"invoices[{number}].{name}", ours, theirs)
            self.check.fields[name] = self.check.fields.get(name, 0) + 1
        return bool(changes)

    def _currencies(
        self,
        rows: InvoiceRows,
        found: np.ndarray,
        pos: np.ndarray,
        order_found: np.ndarray,
        order_pos: np.ndarray,
        missing: np.ndarray,
    ) -> np.ndarray:
        """Each invoice's currency for the money per currency: its own, else its target
        invoice's (which is that invoice's own, else its order's), else its order's: at the
        target, or in the source when the target lacks the order."""
        n = len(rows)
        given = rows.currency.to_pylist() if rows.currency is not None else [None] * n
        currency = np.array(given, dtype=object)
        fill = found & np.equal(currency, None)
        currency[fill] = self.target.currency_of(pos[fill])
        for i in np.flatnonzero(missing & np.equal(currency, None)):
            if order_found[i]:
                currency[i] = OrderMoney.from_bytes(self.index.extra(int(order_pos[i]))).currency
            else:
                currency[i] = self.missing_orders.get(int(rows.order_hashes[i]))
        return currency

    def _add_money(self, rows: InvoiceRows, considered: np.ndarray, currency: np.ndarray) -> None:
        if not considered.any():
            return
        keep = pa.array(considered)
        zero = pa.array(np.zeros(len(rows), np.int64)).cast(rows.total.type)
        balance = rows.balance if rows.balance is not None else zero
        table = pa.table(
            {
                "currency": pa.array([c or "" for c in currency[considered]], pa.string()),
                "total": rows.total.filter(keep),
                "balance": balance.filter(keep),
            }
        )
        sums = table.group_by("currency").aggregate(
            [("total", "sum"), ("total", "count"), ("balance", "sum")]
        )
        for row in sums.to_pylist():
            self.source_money.add(
                row["currency"], row["total_sum"], row["balance_sum"], n=row["total_count"]
            )

    def _rejected(self, keys: np.ndarray) -> None:
        """Target invoices of compared orders whose source rows are rejected: not extra
        (the source has them, unreadable), and out of the target's money, as out of the
        source's."""
        target = self.target
        if not len(keys) or not len(target):
            return
        found, pos = target.locate(keys)
        found &= ~target.seen[pos] & self.index.seen[target["orders"][pos]]
        for at, currency in zip(pos[found], target.currency_of(pos[found]), strict=True):
            target.seen[at] = True
            held = target.invoice(int(at))
            total, balance = held["total"] or Decimal(0), held["balanceDue"] or Decimal(0)
            target.money.add(currency, -total, -balance, n=-1)
        self.check.rejected_at_target += int(found.sum())

    def _extras(self) -> None:
        """Target invoices of compared orders that no source row matched."""
        target = self.target
        if not len(target):
            return
        orders = target["orders"]
        extra = np.flatnonzero(~target.seen & self.index.seen[orders])
        for at in extra:
            held = target.invoice(int(at))
            number = held.pop("invoiceNumber")
            key = self._order_key(int(orders[at]))
            self.report(key, "invoice_extra", f"invoices[{number}]", None, _shown(held))
        self.check.extra += len(extra)

    def _order_key(self, pos: int) -> str:
        if pos not in self._order_keys:
            record = self.index.record(pos)
            self._order_keys[pos] = str(record.get(self.index.projection.key))
        return self._order_keys[pos]


def _shown(fields: dict[str, Any]) -> dict[str, Any]:
    """A whole invoice as the differences CSV shows it: the fields it has."""
    return {name: value for name, value in fields.items() if value is not None}


def invoice_changes(source: dict[str, Any], target: dict[str, Any]) -> dict[str, list]:
    """``{field: [target, source]}`` for each compared field that differs: the status
    case-insensitively, amounts as exact decimals (``100.10`` is ``100.1``), the balance and
    currency only where the source has the column, a currency only where the row states it."""
    changes: dict[str, list] = {}
    if str(source["status"]).casefold() != str(target["status"] or "").casefold():
        changes["status"] = [target["status"], source["status"]]
    if source["total"] != target["total"]:
        changes["total"] = [target["total"], source["total"]]
    if "balanceDue" in source and source["balanceDue"] != target["balanceDue"]:
        changes["balanceDue"] = [target["balanceDue"], source["balanceDue"]]
    stated = source.get("currencyCode")
    if stated is not None and stated != target["currencyCode"]:
        changes["currencyCode"] = [target["currencyCode"], stated]
    return changes


def rejects_path_for(rejects: Path) -> Path:
    """The invoice rejects beside the order rejects: ``x.csv`` → ``x-invoices.csv``."""
    return rejects.with_name(f"{rejects.stem}-invoices{rejects.suffix or '.csv'}")
