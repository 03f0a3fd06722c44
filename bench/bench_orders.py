"""Historical order import benchmark: N order lines (~N/4 orders) from SQLite and PostgreSQL.

The emulator runs as its own process; products (the sample catalog) and customers are synced
first, then each orders import runs in a child process, so wall time and peak RSS are the
import's own. Prints order lines/s end to end and peak RSS per size and backend.

    python bench/bench_orders.py                          # 100,000 and 1,000,000 lines
    python bench/bench_orders.py --lines 100000 --backends sqlite
    NYMBLE_TEST_PG_URL=postgresql+psycopg://user@host/db python bench/bench_orders.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import KEY, start_emulator  # noqa: E402

OUT = Path("bench/out")
PG_URL = os.environ.get("NYMBLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_orders"
ERP_DATE = "%m/%d/%Y %H:%M"
ORDERS_JOB = """job: bench-orders
entity: orders
source: {{type: sql, url_env: ERP_DATABASE_URL, query: sql/orders.sql}}
key: order_id
timezone: America/Chicago
watermark: {{column: updated_at, overlap: 1h}}
fields:
  orderNumber: order_number
  orderDate: {{column: order_date, format: "%m/%d/%Y %H:%M"}}
  orderStatus: {{column: status, map: {{O: Pending, S: Shipped, C: Completed, X: Void}}}}
  orderType: {{value: Direct}}
  channel: channel
  poNumber: po_number
  currencyCode: currency
  terms: terms
  notes: notes
  customer.customerNumber: customer_number
  primarySalesRep.repNumber: rep_number
  shippingDetails.shippingMethod: ship_method
  shippingDetails.shippingTotal: ship_total
items:
  source: {{type: sql, url_env: ERP_DATABASE_URL, query: sql/order_lines.sql}}
  key: order_id
  sku: sku
  quantity: qty
  price: unit_price
batch: {{max_items: {batch}, concurrency: {concurrency}}}
"""


# --- the ERP data -----------------------------------------------------------------------------


def skus_at(url: str) -> list[str]:
    """Every SKU the emulator holds after the products sync (the lines only use those)."""
    found, page = [], 1
    with httpx.Client(base_url=url, headers={"x-api-key": KEY}) as api:
        while True:
            body = api.get("/api/products", params={"pageSize": 100, "pageNumber": page}).json()
            found += [p["sku"] for p in body["data"]]
            if page >= body["totalPages"]:
                return sorted(found)
            page += 1


def erp_rows(lines: int, skus: list[str]):
    """(orders, lines) rows shaped like sample_data/erp.sqlite, ~4 lines an order."""
    rng = random.Random(lines)
    customers = [(f"CUST-{n:04d}",) for n in range(1, 301)]
    start = datetime(2020, 1, 1)
    orders, order_lines, order_id, made = [], [], 0, 0
    while made < lines:
        order_id += 1
        placed = start + timedelta(minutes=7 * order_id)
        orders.append(
            (
                order_id,
                f"SO-{1_000_000 + order_id}",
                rng.choice(customers)[0],
                placed.strftime(ERP_DATE),
                rng.choice("CCCSSXO"),
                f"PO-{order_id % 99991}",
                rng.choice(["EDI", "Web", "Phone"]),
                "USD",
                "NET30",
                None,
                "UPS Ground",
                "12.00",
                "SR-019",
                (placed + timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S"),
            )
        )
        count = min(rng.randint(1, 7), lines - made)
        for line_no, sku in enumerate(rng.sample(skus, count), start=1):
            price = f"{rng.randint(100, 99999) / 100:.2f}" if line_no != 3 else "12.345"
            order_lines.append((order_id, line_no, sku, rng.choice([1, 2, 5, 10, 24]), price))
        made += count
    return orders, order_lines


SQLITE_SCHEMA = """
CREATE TABLE orders (order_id INTEGER PRIMARY KEY, order_number TEXT, customer_number TEXT,
  order_date TEXT, status TEXT, po_number TEXT, channel TEXT, currency TEXT, terms TEXT,
  notes TEXT, ship_method TEXT, ship_total TEXT, rep_number TEXT, updated_at TEXT);
CREATE TABLE order_lines (order_id INTEGER, line_no INTEGER, sku TEXT, qty INTEGER,
  unit_price TEXT, PRIMARY KEY (order_id, line_no));
"""
PG_SCHEMA = """
CREATE TABLE orders (order_id BIGINT PRIMARY KEY, order_number TEXT, customer_number TEXT,
  order_date TIMESTAMP, status TEXT, po_number TEXT, channel TEXT, currency TEXT, terms TEXT,
  notes TEXT, ship_method TEXT, ship_total NUMERIC(12,3), rep_number TEXT, updated_at TIMESTAMP);
CREATE TABLE order_lines (order_id BIGINT, line_no INT, sku TEXT, qty INT,
  unit_price NUMERIC(12,3), PRIMARY KEY (order_id, line_no));
"""


def sqlite_erp(lines: int, skus: list[str]) -> str:
    path = OUT / f"erp_orders_{lines}.sqlite"
    if not path.exists():
        orders, order_lines = erp_rows(lines, skus)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(partial) as db:
            db.executescript(SQLITE_SCHEMA)
            db.executemany(f"INSERT INTO orders VALUES ({','.join('?' * 14)})", orders)
            db.executemany("INSERT INTO order_lines VALUES (?,?,?,?,?)", order_lines)
        partial.rename(path)
    return f"sqlite:///{path}"


def postgres_erp(lines: int, skus: list[str]) -> str:
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{SCHEMA}_{lines}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        exists = conn.scalar(
            sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE "
                "table_schema = :s AND table_name = 'order_lines'"
            ),
            {"s": f"{SCHEMA}_{lines}"},
        )
    if not exists:
        orders, order_lines = erp_rows(lines, skus)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}_{lines}")
            conn.exec_driver_sql(f"SET search_path TO {SCHEMA}_{lines}")
            conn.exec_driver_sql(PG_SCHEMA)
            with conn.connection.cursor() as cursor:
                with cursor.copy("COPY orders FROM STDIN") as copy:
                    for row in orders:
                        copy.write_row(_server(row))
                with cursor.copy("COPY order_lines FROM STDIN") as copy:
                    for row in order_lines:
                        copy.write_row((*row[:4], Decimal(row[4])))
    engine.dispose()
    return url


def _server(row: tuple) -> tuple:
    values = list(row)
    values[3] = datetime.strptime(values[3], ERP_DATE)
    values[11] = Decimal(values[11])
    values[13] = datetime.strptime(values[13], "%Y-%m-%d %H:%M:%S")
    return tuple(values)


# --- runs -------------------------------------------------------------------------------------


def child(job: str, url: str, target: str, state: str) -> None:
    """In the child process: one sync, its summary as JSON on stdout."""
    from pipelines.run.commands import SyncSettings
    from pipelines.run.commands import sync as sync_entity

    settings = SyncSettings(
        job_path=Path(job),
        target=target,
        state_dir=Path(state),
        environ={"NYMBLE_API_KEY": KEY, "ERP_DATABASE_URL": url},
        log=lambda _: None,
    )
    print(json.dumps(sync_entity(settings).to_dict()))


def run(job: Path, url: str, target: str, state: Path) -> dict:
    cmd = [sys.executable, __file__, "_child", str(job), url, target, str(state)]
    load = os.getloadavg()[0]  # the machine is shared: what else was running as this began
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"import failed: {out[-2000:]!r}")
    summary = json.loads(out)
    summary.update(
        wall_s=time.perf_counter() - started, peak_rss_mb=usage.ru_maxrss / 1024, load=load
    )
    return summary


def measure(lines: int, backend: str, args) -> dict:
    state = OUT / f"orders_state_{backend}_{lines}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    emulator, target = start_emulator(db=state / "emulator.sqlite")
    try:
        env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pipelines.cli",
                "run",
                "mappings/products.yml",
                "--target",
                target,
            ],
            env=env,
            check=False,
            capture_output=True,
        )
        run(Path("mappings/customers.yml"), "", target, state)
        skus = skus_at(target)
        # In a process of its own: Linux counts the RSS a process had when it exec'd a child
        # in that child's ru_maxrss, so building a million rows here would inflate the
        # import's peak RSS figure.
        make = sqlite_erp if backend == "sqlite" else postgres_erp
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            url = pool.submit(make, lines, skus).result()
        job = OUT / f"orders_job_{lines}.yml"
        job.write_text(ORDERS_JOB.format(batch=args.batch, concurrency=args.concurrency))
        full = run(job, url, target, state)
        again = run(job, url, target, state)  # incremental: the overlap only, unchanged
    finally:
        emulator.terminate()
        emulator.wait()
    return {"lines": lines, "backend": backend, "full": full, "again": again}


def report(result: dict) -> None:
    full, again = result["full"], result["again"]
    lines = result["lines"]
    print(
        f"\n{lines:,} lines from {result['backend']}: {full['rows_read']:,} orders, "
        f"created {full['created']:,}, rejected {full['rejected']:,}, "
        f"requests {full['requests']:,}, load average {full['load']:.1f} at start"
    )
    print(
        f"  full import {full['wall_s']:7.2f} s wall  {lines / full['wall_s']:>9,.0f} lines/s"
        f"  ({lines / full['elapsed_s']:,.0f}/s inside the run)"
        f"  peak RSS {full['peak_rss_mb']:6.0f} MB"
    )
    print(
        f"  second run  {again['wall_s']:7.2f} s wall, read {again['rows_read']:,} orders, "
        f"sent {again['sent']:,}"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = [measure(n, b, args) for n in args.lines for b in args.backends]
    for result in results:
        report(result)
    for backend in args.backends:
        rss = {r["lines"]: r["full"]["peak_rss_mb"] for r in results if r["backend"] == backend}
        if len(rss) > 1:
            small, large = rss[min(rss)], rss[max(rss)]
            print(
                f"{backend}: peak RSS {max(rss):,} lines / {min(rss):,} lines = "
                f"{large / small:.2f}x"
            )


if __name__ == "__main__":
    main()
