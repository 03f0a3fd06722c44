"""Write ``invoices.csv``: the sample ERP's invoices of the orders in ``erp.sqlite`` (read only).

Deterministic (fixed seed, stdlib ``random``, no network): rerunning it rewrites the same rows.
README.md describes the file.

    python sample_data/make_invoices.py
"""

from __future__ import annotations

import csv
import random
import sqlite3
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20_240_531
COLUMNS = [
    "order_id", "invoice_number", "invoice_date", "status", "currency", "total", "balance_due",
]  # fmt: skip
CENT = Decimal("0.01")
SPLIT_SHARE = 0.08  # about 8% of invoiced orders are billed in two invoices


def main() -> None:
    rng = random.Random(SEED)
    with sqlite3.connect(f"file:{HERE / 'erp.sqlite'}?mode=ro", uri=True) as conn:
        orders = conn.execute(
            "SELECT order_id, order_date, status, currency, order_total FROM orders "
            "ORDER BY order_id"
        ).fetchall()
    rows = []
    for order_id, placed, status, currency, total in orders:
        for part, (code, balance) in _parts(rng, status, Decimal(total)):
            rows.append(
                {
                    "order_id": order_id,
                    "invoice_number": f"INV-{len(rows) + 1:06d}",
                    "invoice_date": _invoice_date(rng, placed),
                    "status": code,
                    "currency": currency or "",
                    "total": f"{part:.2f}",
                    "balance_due": f"{balance:.2f}",
                }
            )
    with (HERE / "invoices.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"invoices.csv: {len(rows):,} invoices of {len(orders):,} orders")


def _parts(rng: random.Random, status: str, total: Decimal) -> list[tuple[Decimal, tuple]]:
    """An order's invoices as (total, (status code, balance)): none for an open order (a few
    drafts), one or two for a shipped or closed one, a voided or cancelled one for some
    cancelled orders."""
    if status == "O":
        return [(total, ("D", total))] if rng.random() < 0.3 else []
    if status == "X":
        roll = rng.random()
        return [(total, ("V" if roll < 0.2 else "X", Decimal("0.00")))] if roll < 0.3 else []
    parts = [total]
    if rng.random() < SPLIT_SHARE and total > 1:
        first = (total * Decimal(rng.choice((30, 40, 50, 60))) / 100).quantize(CENT, ROUND_HALF_UP)
        parts = [first, total - first]
    return [(part, _paid(rng, status, part)) for part in parts]


def _paid(rng: random.Random, status: str, total: Decimal) -> tuple[str, Decimal]:
    """Closed orders are paid; shipped ones issued, partly paid or paid."""
    roll = rng.random()
    if status == "C" or roll < 0.35:
        return "P", Decimal("0.00")
    if roll < 0.55 and total > 1:
        paid = (total * Decimal(rng.randint(10, 90)) / 100).quantize(CENT, ROUND_HALF_UP)
        return "PP", total - paid
    return "I", total


def _invoice_date(rng: random.Random, placed: str) -> str:
    when = datetime.strptime(placed, "%m/%d/%Y %H:%M") + timedelta(days=rng.randint(0, 20))
    return when.strftime("%Y-%m-%d")


if __name__ == "__main__":
    main()
