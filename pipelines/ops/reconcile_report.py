"""What `reconcile` found, for people and machines: counts per bucket, the fields that differ,
the first differences, money per currency and month, linkage, and (an order job with an
``invoices:`` source) the invoices compared one by one.

``to_dict()`` is the ``--json`` form (decimals as exact text), ``tables()`` what a terminal
shows; every difference, not only the first ones, is in the differences CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipelines.errors import EXIT_OK, EXIT_RECORDS
from pipelines.ops.run_reports import TextTable
from pipelines.transform.order_money import MEASURES, MoneyTotals

__all__ = [
    "COUNTS",
    "INVOICE_COUNTS",
    "InvoiceCheck",
    "Linkage",
    "Reconciliation",
    "invoice_money_rows",
    "money_rows",
    "money_text",
]

# (attribute, label, whether a non-zero count means source and target disagree)
COUNTS = [
    ("source_rows", "source rows read", False),
    ("source_rejected", "rejected by the job's checks (not compared; see rejects)", False),
    ("compared", "source records compared", False),
    ("target_records", "target records read", False),
    ("agree", "agree", False),
    ("differ", "differ field by field", True),
    ("missing", "missing at the target", True),
    ("gone", "sent by this job, gone from the source, still at the target", True),
    ("deactivated", "sent by this job, gone from the source, inactive there", False),
    ("rejected_at_target", "at the target, but the source row is rejected now", False),
    ("other_job", "at the target, sent by another job", False),
    ("unowned", "at the target, sent by no job (created elsewhere)", False),
]


# (attribute, label, whether a non-zero count means source and target disagree)
INVOICE_COUNTS = [
    ("source_rows", "source invoice rows read", False),
    ("source_rejected", "rejected (not compared; see the invoice rejects)", True),
    ("not_compared", "of orders not compared (rejected, not in the order source)", False),
    ("compared", "source invoices compared", False),
    ("agree", "agree", False),
    ("differ", "differ (status, total, balance, currency)", True),
    ("missing", "missing at the target", True),
    ("extra", "at the target, not in the source", True),
    ("rejected_at_target", "at the target, their source row rejected", False),
]


@dataclass
class InvoiceCheck:
    """Orders with ``invoices:``: each source invoice against the target's, by order and
    number. ``money``: per currency, the compared source invoices against the target's
    invoices of the compared orders (those whose source row is rejected left out)."""

    source: str = ""
    source_rows: int = 0
    source_rejected: int = 0
    not_compared: int = 0
    compared: int = 0
    agree: int = 0
    differ: int = 0
    missing: int = 0
    extra: int = 0
    rejected_at_target: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # field → invoices differing in it
    money: list[dict[str, Any]] = field(default_factory=list)  # see invoice_money_rows
    rejects_path: str | None = None

    @property
    def agrees(self) -> bool:
        counted = any(getattr(self, name) for name, _label, differs in INVOICE_COUNTS if differs)
        return not (counted or any(row["differs"] for row in self.money))

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "money"}
        data["money"] = [
            {k: money_text(v) if isinstance(v, Decimal) else v for k, v in row.items()}
            for row in self.money
        ]
        return data | {"agrees": self.agrees}

    def tables(self) -> list[TextTable]:
        verdict = "AGREE" if self.agrees else "DIFFER"
        rows = [(label, f"{getattr(self, name):,}") for name, label, _ in INVOICE_COUNTS]
        tables = [TextTable(f"invoices ({self.source}): {verdict}", ("", "invoices"), rows)]
        if self.fields:
            by_count = sorted(self.fields.items(), key=lambda kv: (-kv[1], kv[0]))
            rows = [(name, f"{n:,}") for name, n in by_count]
            tables.append(TextTable("invoice fields that differ", ("field", "invoices"), rows))
        if self.money:
            title = "invoice money per currency (target − source = Δ)"
            tables.append(TextTable(title, _INVOICE_MONEY_HEADERS, _invoice_lines(self.money)))
        return tables


def invoice_money_rows(source: dict[str, list], target: dict[str, list]) -> list[dict[str, Any]]:
    """One row per currency either side has (``{currency: [invoices, total, balance]}``)."""
    rows = []
    zero = [0, Decimal(0), Decimal(0)]
    for currency in sorted(source.keys() | target.keys()):
        s, t = source.get(currency, zero), target.get(currency, zero)
        row: dict[str, Any] = {"currency": currency}
        row |= {"invoices_source": s[0], "invoices_target": t[0]}
        row |= {"total_source": s[1], "total_target": t[1], "total_difference": t[1] - s[1]}
        row |= {"balance_source": s[2], "balance_target": t[2], "balance_difference": t[2] - s[2]}
        row["differs"] = s[0] != t[0] or s[1] != t[1] or s[2] != t[2]
        rows.append(row)
    return rows


_INVOICE_MONEY_HEADERS = (
    "currency",
    "invoices S/T",
    "total S",
    "total T",
    "Δ total",
    "balance S",
    "balance T",
    "Δ balance",
)


def _invoice_lines(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            row["currency"] or "(none)",
            f"{row['invoices_source']:,}/{row['invoices_target']:,}",
            *(
                money_text(row[f"{measure}_{side}"])
                for measure in ("total", "balance")
                for side in ("source", "target", "difference")
            ),
        )
        for row in rows
    ]


@dataclass
class Linkage:
    """Orders: their customers and invoices at the target."""

    orders_checked: int = 0
    customers_missing: int = 0  # orders whose customer the target does not hold
    orders_with_invoices: int = 0
    orders_without_invoices: int = 0
    invoices: int = 0
    invoices_of_other_orders: int = 0  # their order is not among those compared
    by_status: dict[tuple[str, str], list] = field(default_factory=dict)  # (status, currency)

    def add_invoice(self, status: str, currency: str, total: Decimal, balance: Decimal) -> None:
        row = self.by_status.setdefault((status, currency), [0, Decimal(0), Decimal(0)])
        row[0] += 1
        row[1] += total
        row[2] += balance

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "by_status"}
        data["invoices_by_status"] = [
            {
                "status": s,
                "currency": c,
                "invoices": n,
                "total": money_text(t),
                "balance_due": money_text(b),
            }
            for (s, c), (n, t, b) in sorted(self.by_status.items())
        ]
        return data


@dataclass
class Reconciliation:
    job: str
    entity: str
    target: str
    source_rows: int = 0
    source_rejected: int = 0
    compared: int = 0
    target_records: int = 0
    agree: int = 0
    differ: int = 0
    missing: int = 0
    gone: int = 0
    deactivated: int = 0
    rejected_at_target: int = 0
    other_job: int = 0
    unowned: int = 0
    fields: dict[str, int] = field(default_factory=dict)  # field → records differing in it
    samples: list[dict[str, str]] = field(default_factory=list)  # the first differences
    money: list[dict[str, Any]] = field(default_factory=list)  # see money_rows
    linkage: Linkage | None = None
    invoices: InvoiceCheck | None = None  # orders with an invoices: source
    differences: int = 0  # rows in the differences CSV
    differences_path: str | None = None
    rejects_path: str | None = None
    fix_run: dict[str, Any] | None = None  # --fix: the run that sent what differed
    requests: int = 0  # reads of the target
    target_read_s: float = 0.0  # of elapsed_s: reading the target into its index
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    # The records that agree, as an AckedState: what a --fix run takes as acknowledged.
    baseline: Any = field(default=None, repr=False)

    @property
    def agrees(self) -> bool:
        """Every record the source holds is at the target as the job sends it, nothing this
        job sent lingers there, the money adds up, every order's customer exists, and the
        invoices (when the job names them) are the source's."""
        counted = any(getattr(self, name) for name, _label, differs in COUNTS if differs)
        money = any(row["differs"] for row in self.money)
        broken = self.linkage is not None and self.linkage.customers_missing > 0
        invoices = self.invoices is not None and not self.invoices.agrees
        return not (counted or money or broken or invoices)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.agrees else EXIT_RECORDS

    def to_dict(self) -> dict[str, Any]:
        skip = ("linkage", "invoices", "baseline")
        data = {k: v for k, v in self.__dict__.items() if k not in skip}
        data["money"] = [
            {k: money_text(v) if isinstance(v, Decimal) else v for k, v in row.items()}
            for row in self.money
        ]
        data["linkage"] = self.linkage.to_dict() if self.linkage is not None else None
        data["invoices"] = self.invoices.to_dict() if self.invoices is not None else None
        return data | {"agrees": self.agrees, "exit_code": self.exit_code}

    def tables(self) -> list[TextTable]:
        verdict = "source and target AGREE" if self.agrees else "source and target DIFFER"
        title = f"reconcile of {self.job} ({self.entity}) → {self.target}: {verdict}"
        rows = [(label, f"{getattr(self, name):,}") for name, label, _ in COUNTS]
        tables = [TextTable(title, ("", "records"), rows)]
        if self.fields:
            by_count = sorted(self.fields.items(), key=lambda kv: (-kv[1], kv[0]))
            rows = [(name, f"{n:,}") for name, n in by_count]
            tables.append(TextTable("fields that differ", ("field", "records"), rows))
        if self.samples:
            headers = ("key", "kind", "field", "source", "target")
            rows = [tuple(sample[h] for h in headers) for sample in self.samples]
            title = f"first {len(rows)} of {self.differences:,} differences"
            tables.append(TextTable(title, headers, rows))
        tables += self._money_tables() + self._linkage_tables()
        tables += (self.invoices.tables() if self.invoices is not None else []) + self._fix_tables()
        files = [("differences", self.differences_path), ("rejects", self.rejects_path)]
        if self.invoices is not None:
            files.append(("invoice rejects", self.invoices.rejects_path))
        took = (
            f"{self.elapsed_s:.1f} s; reading the target {self.target_read_s:.1f} s "
            f"({self.requests:,} requests)"
        )
        notes = [(n, p) for n, p in files if p] + [("note", n) for n in self.notes]
        return [*tables, TextTable("files and notes", ("", ""), [*notes, ("time", took)])]

    def _money_tables(self) -> list[TextTable]:
        if not self.money:
            return []
        rows = [_money_line(r) for r in self.money if r["differs"]]
        shown = "the months that differ" if rows else "every month agrees"
        title = f"money per currency and month (target − source = Δ): {shown}"
        totals = [_money_line(r) for r in _per_currency(self.money)]
        return [
            TextTable(title, _MONEY_HEADERS, rows),
            TextTable("money per currency, all months", _MONEY_HEADERS, totals),
        ]

    def _linkage_tables(self) -> list[TextTable]:
        link = self.linkage
        if link is None:
            return []
        rows = [
            ("orders checked", f"{link.orders_checked:,}"),
            ("orders whose customer the target lacks", f"{link.customers_missing:,}"),
            ("orders with invoices", f"{link.orders_with_invoices:,}"),
            ("orders without invoices", f"{link.orders_without_invoices:,}"),
            ("invoices of orders not compared", f"{link.invoices_of_other_orders:,}"),
        ]
        tables = [TextTable("linkage", ("", "orders"), rows)]
        if link.by_status:
            rows = [
                (s, c, f"{n:,}", money_text(t), money_text(b))
                for (s, c), (n, t, b) in sorted(link.by_status.items())
            ]
            headers = ("status", "currency", "invoices", "total", "balance due")
            tables.append(TextTable("invoices of the compared orders", headers, rows))
        return tables

    def _fix_tables(self) -> list[TextTable]:
        run = self.fix_run
        if run is None:
            return []
        names = ("created", "updated", "failed", "unchanged", "rejected")
        rows = [(name, f"{run.get(name, 0):,}") for name in names]
        title = (
            f"--fix: run {run.get('run_id')} ({run.get('status')}) sent what was missing or "
            "differed; the report above is the reconcile after it"
        )
        return [TextTable(title, ("", "records"), rows)]


def money_rows(source: MoneyTotals, target: MoneyTotals) -> list[dict[str, Any]]:
    """One row per (currency, month) either side has: orders and each measure, both sides."""
    rows = []
    zero = [0, Decimal(0), Decimal(0), Decimal(0)]
    for currency, month in sorted(source.sums.keys() | target.sums.keys()):
        s = source.sums.get((currency, month), zero)
        t = target.sums.get((currency, month), zero)
        row: dict[str, Any] = {"currency": currency, "month": month}
        row |= {"orders_source": s[0], "orders_target": t[0]}
        for i, measure in enumerate(MEASURES, start=1):
            row |= {f"{measure}_source": s[i], f"{measure}_target": t[i]}
            row[f"{measure}_difference"] = t[i] - s[i]
        row["differs"] = s[0] != t[0] or any(s[i] != t[i] for i in range(1, 4))
        rows.append(row)
    return rows


_MONEY_HEADERS = (
    "currency",
    "month",
    "orders S/T",
    "order total S",
    "order total T",
    "Δ order total",
    "Δ line total",
    "Δ shipping",
)


def _money_line(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        row["currency"],
        row["month"],
        f"{row['orders_source']:,}/{row['orders_target']:,}",
        money_text(row["order_total_source"]),
        money_text(row["order_total_target"]),
        *(money_text(row[f"{m}_difference"]) for m in MEASURES),
    )


def money_text(amount: Decimal) -> str:
    """Exact, and readable: at least two decimals, none of the zeros beyond them."""
    cents = amount.quantize(Decimal("0.01")) if amount == amount.quantize(Decimal("0.01")) else None
    return format(cents if cents is not None else amount.normalize(), "f")


def _per_currency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        into = totals.setdefault(row["currency"], {"currency": row["currency"], "month": "all"})
        for name, value in row.items():
            if name.startswith(("orders_", *MEASURES)):
                into[name] = into.get(name, 0) + value
    return [totals[c] for c in sorted(totals)]
