"""Write the sample ERP database ``erp.sqlite`` and its CSV twins; README.md lists the defects.

Deterministic (fixed seed, stdlib ``random``, no network): rerunning it rewrites the same rows.
The catalog is the ``sku`` column of ``products.csv`` (trimmed, blank and repeated SKUs dropped).

    python sample_data/make_erp.py
"""

from __future__ import annotations

import csv
import os
import random
import sqlite3
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20_240_530
CUSTOMERS = 300
ORDERS = 5_000
CSV_ORDERS = 500  # orders.csv / order_lines.csv hold orders 1..500, every defect among them
FIRST_DAY, LAST_DAY = datetime(2023, 1, 2), datetime(2024, 12, 31)
LATE_EDIT_FROM = datetime(2025, 1, 6)  # about 3% of orders were corrected after year end
ERP_DATE = "%m/%d/%Y %H:%M"  # how the ERP shows order dates: 05/30/2024 14:05
ISO = "%Y-%m-%d %H:%M:%S"

# The deliberate defects (order_id → what is wrong); README.md lists them.
UNKNOWN_SKU_ORDER, UNKNOWN_SKU = 37, "DIS-99999-XX"  # line 2: a SKU not in the catalog
UNKNOWN_CUSTOMER_ORDER, UNKNOWN_CUSTOMER = 88, "CUST-0999"  # no such customer
NO_LINES_ORDER = 142  # a header with no lines
ZERO_QTY_ORDER = 215  # line 1 has qty 0
THREE_DECIMALS_ORDER, THREE_DECIMALS = 303, "12.345"  # line 1 unit_price: must arrive exactly
DUPLICATE_ORDER, DUPLICATE_OF = 377, 366  # order 377 reuses order 366's order_number
DEFECT_LINE_ORDERS = (UNKNOWN_SKU_ORDER, ZERO_QTY_ORDER, THREE_DECIMALS_ORDER)
# The ERP's own money (orders.subtotal/tax/order_total, order_line_pricing): drawn from a
# second generator, so the rows above stay exactly as they were before these columns existed.
AMOUNTS_SEED = SEED + 16
HAND_EDITED_ORDER = 4242  # its subtotal was edited by hand: 1.00 more than its lines

CUSTOMER_COLUMNS = [
    "customer_number", "company_name", "email", "phone", "price_tier", "terms", "currency",
    "rep_number", "updated_at",
]  # fmt: skip
ORDER_COLUMNS = [
    "order_id", "order_number", "customer_number", "order_date", "status", "po_number",
    "channel", "currency", "terms", "notes", "ship_method", "ship_total", "rep_number",
    "updated_at",
]  # fmt: skip
LINE_COLUMNS = ["order_id", "line_no", "sku", "qty", "unit_price"]
TOTAL_COLUMNS = ["subtotal", "tax", "order_total"]  # in erp.sqlite only, not orders.csv
PRICING_COLUMNS = ["order_id", "line_no", "disc_pct", "line_total"]

SCHEMA = """
CREATE TABLE customers (
    customer_number TEXT PRIMARY KEY, company_name TEXT NOT NULL, email TEXT, phone TEXT,
    price_tier TEXT, terms TEXT, currency TEXT, rep_number TEXT, updated_at TEXT NOT NULL);
CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, unit_price TEXT NOT NULL);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY, order_number TEXT NOT NULL, customer_number TEXT,
    order_date TEXT NOT NULL, status TEXT NOT NULL, po_number TEXT, channel TEXT, currency TEXT,
    terms TEXT, notes TEXT, ship_method TEXT, ship_total TEXT, rep_number TEXT,
    updated_at TEXT NOT NULL, subtotal TEXT, tax TEXT, order_total TEXT);
CREATE INDEX orders_updated_at ON orders (updated_at);
CREATE TABLE order_lines (
    order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, sku TEXT, qty INTEGER,
    unit_price TEXT, PRIMARY KEY (order_id, line_no));
CREATE TABLE order_line_pricing (
    order_id INTEGER NOT NULL, line_no INTEGER NOT NULL, disc_pct TEXT, line_total TEXT,
    PRIMARY KEY (order_id, line_no));
"""

# fmt: off
NAME_FIRST = ["Acme", "Summit", "Harbor", "Prairie", "Granite", "Cedar", "Keystone", "Liberty",
              "Pioneer", "Redwood", "Beacon", "Frontier", "Ironwood", "Lakeside", "Northgate",
              "Müller", "Østby", "Crète", "Bluestem", "Tri-County"]
NAME_LAST = ["Industrial Supply", "Hardware", "Building Supply", "Contractors Co.",
             "Tool & Fastener", "Plumbing & Electric", "Maintenance Supply", "Lumber, Inc.",
             "Safety Products", "Distribution LLC"]
NOTES = ["Deliver to dock 3", "Call before delivery, ask for \"Sam\"", "Residential address",
         "Hold for pickup", "Livraison à l'entrepôt, porte B", "Liftgate required",
         "Partial shipment OK, backorder rest", "Ship complete only"]
# fmt: on
TIERS = ["Retail", "Wholesale", "Wholesale", "Distributor"]
TERMS = ["NET30", "Net30", "NET60", "COD", "NET30"]
CHANNELS = ["EDI", "Phone", "Web", "Web", "TradeShow"]
SHIP = [("UPS Ground", "12.00"), ("FedEx 2Day", "34.50"), ("LTL Freight", "185.00"),
        ("Will Call", "0.00"), ("UPS Ground", "18.75")]  # fmt: skip
REPS = [f"SR-{n:03d}" for n in (4, 7, 11, 19, 23, 31, 38, 42, 56, 61, 77, 85)]


def catalog() -> list[tuple[str, str, str]]:
    """(sku, name, unit_price) for every usable SKU of products.csv, in file order."""
    seen: dict[str, tuple[str, str, str]] = {}
    with (HERE / "products.csv").open(encoding="utf-8-sig", newline="") as file:
        for row in csv.DictReader(file):
            sku = (row["sku"] or "").strip()
            price = _money(row["price_wholesale"]) or _money(row["price_retail"])
            if sku and sku not in seen and price is not None:
                seen[sku] = (sku, (row["name"] or "").strip(), f"{price:.2f}")
    return list(seen.values())


def _money(text: str | None) -> Decimal | None:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        return None
    return value if value > 0 else None


def customers(rng: random.Random) -> list[dict]:
    rows = []
    for n in range(1, CUSTOMERS + 1):
        name = f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_LAST)}"
        domain = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:16]
        roll = rng.random()
        rows.append({
            "customer_number": f"CUST-{n:04d}",
            "company_name": name,
            "email": f"orders@{domain}.example",
            "phone": f"555-{rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
            "price_tier": rng.choice(TIERS),
            "terms": rng.choice(TERMS),
            "currency": "USD" if roll < 0.85 else "CAD" if roll < 0.95 else None,
            "rep_number": rng.choice(REPS) if rng.random() < 0.9 else None,
            "updated_at": _when(FIRST_DAY + timedelta(minutes=rng.randrange(700_000))),
        })  # fmt: skip
    return rows


def orders(rng: random.Random, customer_rows: list[dict]) -> list[dict]:
    span = (LAST_DAY - FIRST_DAY).total_seconds()
    starts = sorted(rng.random() * span for _ in range(ORDERS))  # order ids follow order dates
    rows = []
    for order_id, offset in enumerate(starts, start=1):
        placed = (FIRST_DAY + timedelta(seconds=offset)).replace(second=0, microsecond=0)
        customer = rng.choice(customer_rows)
        method, ship_total = rng.choice(SHIP)
        edited = placed + timedelta(minutes=rng.randrange(5, 4 * 24 * 60))
        if rng.random() < 0.03:
            edited = LATE_EDIT_FROM + timedelta(minutes=rng.randrange(20 * 24 * 60))
        rows.append({
            "order_id": order_id,
            "order_number": f"SO-{100_000 + order_id}",
            "customer_number": customer["customer_number"],
            "order_date": placed.strftime(ERP_DATE),
            "status": _status(rng, placed),
            "po_number": f"PO-{rng.randrange(1000, 99999)}" if rng.random() < 0.8 else None,
            "channel": rng.choice(CHANNELS),
            "currency": customer["currency"],
            "terms": customer["terms"],
            "notes": rng.choice(NOTES) if rng.random() < 0.15 else None,
            "ship_method": method,
            "ship_total": ship_total,
            "rep_number": customer["rep_number"],
            "updated_at": _when(edited),
        })  # fmt: skip
    rows[UNKNOWN_CUSTOMER_ORDER - 1]["customer_number"] = UNKNOWN_CUSTOMER
    rows[DUPLICATE_ORDER - 1]["order_number"] = rows[DUPLICATE_OF - 1]["order_number"]
    return rows


def _status(rng: random.Random, placed: datetime) -> str:
    if (LAST_DAY - placed).days < 45:
        return rng.choice("OOSSX")
    return rng.choice("CCCCCCCSSX")


def lines(rng: random.Random, order_rows: list[dict], products: list) -> list[dict]:
    rows = []
    for order in order_rows:
        order_id = order["order_id"]
        if order_id == NO_LINES_ORDER:
            continue
        count = min(1 + int(rng.expovariate(1 / 3.5)), 12)
        if order_id in DEFECT_LINE_ORDERS:
            count = max(count, 3)  # a defective line among good ones
        for line_no, (sku, _name, price) in enumerate(rng.sample(products, count), start=1):
            discount = Decimal(rng.choice([100, 100, 100, 95, 90])) / 100
            rows.append({
                "order_id": order_id,
                "line_no": line_no,
                "sku": sku,
                "qty": rng.choice([1, 2, 5, 10, 12, 24, 50, 100]),
                "unit_price": f"{Decimal(price) * discount:.2f}",
            })  # fmt: skip
    _set_line(rows, UNKNOWN_SKU_ORDER, 2, sku=UNKNOWN_SKU)
    _set_line(rows, ZERO_QTY_ORDER, 1, qty=0)
    _set_line(rows, THREE_DECIMALS_ORDER, 1, unit_price=THREE_DECIMALS)
    return rows


def amounts(rng: random.Random, order_rows: list[dict], line_rows: list[dict]) -> list[dict]:
    """The ERP's money, as it computed it: a percentage discount per line and the line total
    ``qty × unit_price × (1 - disc_pct/100)`` rounded half up to cents (the pricing table's
    rows, returned); per order, ``subtotal`` (the sum of its line totals), ``tax`` (its
    rate of the subtotal, half up) and ``order_total`` (subtotal + tax + ship_total), set on
    the order rows."""
    pricing, subtotals = [], {}
    for line in line_rows:
        pct = Decimal(rng.choice(["0", "0", "0", "0", "2.5", "5", "10", "12.5", "15"]))
        gross = line["qty"] * Decimal(line["unit_price"])
        total = _cents(gross * (100 - pct) / 100)
        pricing.append({**{k: line[k] for k in ("order_id", "line_no")},
                        "disc_pct": str(pct), "line_total": str(total)})  # fmt: skip
        subtotals[line["order_id"]] = subtotals.get(line["order_id"], Decimal(0)) + total
    for order in order_rows:
        rate = Decimal(rng.choice(["0", "0.05", "0.0625", "0.0825", "0.13"]))
        subtotal = subtotals.get(order["order_id"], Decimal("0.00"))
        subtotal += Decimal("1.00") if order["order_id"] == HAND_EDITED_ORDER else 0
        tax = _cents(subtotal * rate)
        order["subtotal"], order["tax"] = f"{subtotal:.2f}", f"{tax:.2f}"
        order["order_total"] = f"{subtotal + tax + Decimal(order['ship_total']):.2f}"
    return pricing


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _set_line(rows: list[dict], order_id: int, line_no: int, **values: object) -> None:
    (line,) = [r for r in rows if r["order_id"] == order_id and r["line_no"] == line_no]
    line.update(values)


def _when(moment: datetime) -> str:
    return moment.strftime(ISO)


def write_sqlite(path: Path, tables: dict[str, tuple[list[str], list[dict]]]) -> None:
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial)
    try:
        db.executescript(SCHEMA)
        for table, (columns, rows) in tables.items():
            marks = ", ".join("?" for _ in columns)
            db.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                ([row[c] for c in columns] for row in rows),
            )
        db.commit()
        db.execute("VACUUM")
    finally:
        db.close()
    os.replace(partial, path)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    rng = random.Random(SEED)
    products = catalog()
    customer_rows = customers(rng)
    order_rows = orders(rng, customer_rows)
    line_rows = lines(rng, order_rows, products)
    product_rows = [dict(zip(["sku", "name", "unit_price"], p, strict=True)) for p in products]
    pricing_rows = amounts(random.Random(AMOUNTS_SEED), order_rows, line_rows)
    write_sqlite(HERE / "erp.sqlite", {
        "customers": (CUSTOMER_COLUMNS, customer_rows),
        "products": (["sku", "name", "unit_price"], product_rows),
        "orders": (ORDER_COLUMNS + TOTAL_COLUMNS, order_rows),
        "order_lines": (LINE_COLUMNS, line_rows),
        "order_line_pricing": (PRICING_COLUMNS, pricing_rows),
    })  # fmt: skip
    write_csv(HERE / "customers.csv", CUSTOMER_COLUMNS, customer_rows)
    write_csv(HERE / "orders.csv", ORDER_COLUMNS, order_rows[:CSV_ORDERS])
    csv_lines = [line for line in line_rows if line["order_id"] <= CSV_ORDERS]
    write_csv(HERE / "order_lines.csv", LINE_COLUMNS, csv_lines)
    print(f"{len(customer_rows)} customers, {len(products)} products, {len(order_rows)} orders, "
          f"{len(line_rows)} lines; CSV: {CSV_ORDERS} orders, {len(csv_lines)} lines")  # fmt: skip


if __name__ == "__main__":
    main()
