"""Big ERP databases for the SQL source, and what reading them costs in time and memory.

``make`` writes ``orders`` and ``order_lines`` tables shaped like ``sample_data/erp.sqlite``
(4 lines per order; NUMERIC(12,3) money and TIMESTAMP dates on PostgreSQL, text in SQLite),
deterministically, without defects. ``read`` streams ``sql/order_lines.sql`` through
``read_sql`` in a fresh process and prints rows/s and peak RSS; ``--buffered`` reads it as one
chunk (every row held at once) instead, to show what streaming saves. ``build`` compares ways
of turning fetched rows into an Arrow table. ``all`` runs make + read for SQLite and PostgreSQL
at 100k and 1M lines.

    python bench/erp.py make --url sqlite:///bench/out/erp_1m.sqlite --lines 1000000
    python bench/erp.py read --url sqlite:///bench/out/erp_1m.sqlite
    python bench/erp.py build --rows 50000
    python bench/erp.py all   # PostgreSQL: schema bench_erp of NYMBLE_TEST_PG_URL's database
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract.sql import SqlSourceConfig, _ChunkBuilder, make_engine, read_sql  # noqa: E402

OUT = ROOT / "bench" / "out"
PG_URL = os.environ.get("NYMBLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "bench_erp"
LINES_PER_ORDER = 4
SEED = 7
START = datetime(2020, 1, 1)
ORDER_COLUMNS = ["order_id", "order_number", "customer_number", "order_date", "status",
                 "po_number", "channel", "currency", "terms", "notes", "ship_method",
                 "ship_total", "rep_number", "updated_at"]  # fmt: skip
LINE_COLUMNS = ["order_id", "line_no", "sku", "qty", "unit_price"]
SQLITE_DDL = [
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, order_number TEXT, customer_number TEXT,"
    " order_date TEXT, status TEXT, po_number TEXT, channel TEXT, currency TEXT, terms TEXT,"
    " notes TEXT, ship_method TEXT, ship_total TEXT, rep_number TEXT, updated_at TEXT)",
    "CREATE TABLE order_lines (order_id INTEGER, line_no INTEGER, sku TEXT, qty INTEGER,"
    " unit_price TEXT, PRIMARY KEY (order_id, line_no))",
]
PG_DDL = [
    "CREATE TABLE orders (order_id BIGINT PRIMARY KEY, order_number TEXT, customer_number TEXT,"
    " order_date TIMESTAMP, status TEXT, po_number TEXT, channel TEXT, currency TEXT,"
    " terms TEXT, notes TEXT, ship_method TEXT, ship_total NUMERIC(12,3), rep_number TEXT,"
    " updated_at TIMESTAMP)",
    "CREATE TABLE order_lines (order_id BIGINT, line_no INTEGER, sku TEXT, qty INTEGER,"
    " unit_price NUMERIC(12,3), PRIMARY KEY (order_id, line_no))",
]


# --- generating -------------------------------------------------------------------------------


def orders(count: int, text: bool):
    """Order header rows; ``text`` gives SQLite's shapes (money and ERP dates as text)."""
    rng = random.Random(SEED)
    for order_id in range(1, count + 1):
        placed = START + timedelta(minutes=order_id * 3)
        edited = placed + timedelta(hours=rng.randrange(1, 96))
        ship = Decimal(rng.choice(["12.00", "18.75", "34.50", "0.00"]))
        yield (order_id, f"SO-{order_id:08d}", f"CUST-{rng.randrange(1, 5000):04d}",
               placed.strftime("%m/%d/%Y %H:%M") if text else placed, rng.choice("OSCX"),
               f"PO-{rng.randrange(10**5)}", "EDI", "USD", "NET30", None, "UPS Ground",
               str(ship) if text else ship, "SR-019", str(edited) if text else edited)  # fmt: skip


def lines(count: int, text: bool):
    rng = random.Random(SEED + 1)
    skus = [f"SKU-{n:07d}" for n in range(2_000)]
    for index in range(count):
        price = Decimal(rng.randrange(50, 50_000)) / 100
        yield (index // LINES_PER_ORDER + 1, index % LINES_PER_ORDER + 1, rng.choice(skus),
               rng.randrange(1, 100), f"{price:.2f}" if text else price)  # fmt: skip


def make(url: str, line_count: int) -> None:
    order_count = -(-line_count // LINES_PER_ORDER)
    started = time.perf_counter()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                _fill_sqlite(conn, order_count, line_count)
            else:
                _fill_postgresql(conn, order_count, line_count)
    finally:
        engine.dispose()
    print(f"made {line_count:,} lines, {order_count:,} orders in "
          f"{time.perf_counter() - started:.1f} s: {_shown(url)}")  # fmt: skip


def _fill_sqlite(conn: sa.Connection, order_count: int, line_count: int) -> None:
    for table in ("order_lines", "orders"):
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    for ddl in SQLITE_DDL:
        conn.exec_driver_sql(ddl)
    cursor = conn.connection.cursor()
    cursor.executemany(
        f"INSERT INTO orders VALUES ({', '.join('?' * 14)})", orders(order_count, True)
    )
    cursor.executemany("INSERT INTO order_lines VALUES (?, ?, ?, ?, ?)", lines(line_count, True))


def _fill_postgresql(conn: sa.Connection, order_count: int, line_count: int) -> None:
    for ddl in ("DROP TABLE IF EXISTS order_lines", "DROP TABLE IF EXISTS orders", *PG_DDL):
        conn.exec_driver_sql(ddl)
    with conn.connection.cursor() as cursor:
        tables = [
            ("orders", ORDER_COLUMNS, orders(order_count, False)),
            ("order_lines", LINE_COLUMNS, lines(line_count, False)),
        ]
        for table, columns, rows in tables:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        cursor.execute("ANALYZE orders")
        cursor.execute("ANALYZE order_lines")


# --- reading ----------------------------------------------------------------------------------


def read(url: str, chunk_rows: int, buffered: bool) -> dict:
    """Read order_lines.sql once; the figures come back as a dict (and a JSON line on stdout)."""
    pa.array([Decimal("1.5")])  # pyarrow imports pandas on first use: keep it out of the delta
    engine = make_engine(url)
    # buffered: one chunk bigger than the table, i.e. every row held at once
    size = 10**9 if buffered else chunk_rows
    config = SqlSourceConfig("BENCH_URL", ROOT / "sql" / "order_lines.sql", {}, size)
    before = _peak_mb()
    started = time.perf_counter()
    try:
        rows, chunks = _read_all(engine, config)
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    return {"backend": engine.dialect.name, "rows": rows, "chunks": chunks, "buffered": buffered,
            "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "rss_before_mb": before, "peak_rss_mb": _peak_mb()}  # fmt: skip


def _read_all(engine: sa.Engine, config: SqlSourceConfig) -> tuple[int, int]:
    rows = chunks = 0
    for chunk in read_sql(engine, config):
        rows += chunk.table.num_rows
        chunks += 1
    return rows, chunks


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux


# --- building Arrow tables --------------------------------------------------------------------


def build(row_count: int, repeat: int = 5) -> None:
    """rows/s for turning ``row_count`` fetched order lines (with header columns) into a table."""
    header = next(orders(1, False))
    fetched = [header + line[1:] for line in lines(row_count, False)]
    names = ORDER_COLUMNS + LINE_COLUMNS[1:]
    declared = [(name, None, None, None, None, 3 if name in ("ship_total", "unit_price") else None)
                for name in names]  # fmt: skip
    ways = {
        "read_sql's builder (decimal scale declared, as on the servers)": lambda: _ChunkBuilder(
            names, declared, "bench"
        ).build(fetched, 1),
        "zip(*rows) + pa.array per column, types inferred": lambda: pa.Table.from_arrays(
            [pa.array(column) for column in zip(*fetched, strict=True)], names=names
        ),
        "pa.Table.from_pylist(dicts)": lambda: pa.Table.from_pylist(
            [dict(zip(names, row, strict=True)) for row in fetched]
        ),
        "dict of per-column lists + pa.table": lambda: pa.table(
            {name: [row[i] for row in fetched] for i, name in enumerate(names)}
        ),
    }
    pa.array([Decimal("1.5")])
    for label, way in ways.items():
        best = min(_timed(way) for _ in range(repeat))
        print(f"{label:<64} {row_count / best:>12,.0f} rows/s ({len(names)} columns)")


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


# --- all --------------------------------------------------------------------------------------


def run_all(sizes: list[int], chunk_rows: int) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
    admin.dispose()
    sep = "&" if "?" in PG_URL else "?"
    pg = f"{PG_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}"
    for size in sizes:
        for url in (f"sqlite:///{OUT}/erp_{size}.sqlite", pg):
            if url.startswith("sqlite"):
                Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            make(url, size)
            for buffered in (False, True):
                command = [sys.executable, __file__, "read", "--url", url]
                command += ["--chunk-rows", str(chunk_rows)] + ["--buffered"] * buffered
                figures = json.loads(subprocess.check_output(command, text=True).splitlines()[-1])
                print(_summary(figures))


def _summary(figures: dict) -> str:
    how = "one chunk (buffered)" if figures["buffered"] else f"{figures['chunks']} chunks"
    return (
        f"{figures['backend']:<10} {figures['rows']:>9,} rows  {how:<20} "
        f"{figures['seconds']:>6} s {figures['rows_per_s']:>9,} rows/s  peak RSS "
        f"{figures['peak_rss_mb']} MB (before reading: {figures['rss_before_mb']} MB)"
    )


def _shown(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make_cmd = commands.add_parser("make", help="write orders and order_lines tables")
    make_cmd.add_argument("--url", required=True)
    make_cmd.add_argument("--lines", type=int, default=1_000_000)
    read_cmd = commands.add_parser("read", help="stream order_lines.sql; print speed and RSS")
    read_cmd.add_argument("--url", required=True)
    read_cmd.add_argument("--chunk-rows", type=int, default=50_000)
    read_cmd.add_argument("--buffered", action="store_true")
    build_cmd = commands.add_parser("build", help="compare ways to build a chunk's table")
    build_cmd.add_argument("--rows", type=int, default=50_000)
    all_cmd = commands.add_parser("all", help="make + read on SQLite and PostgreSQL")
    all_cmd.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    all_cmd.add_argument("--chunk-rows", type=int, default=50_000)
    args = parser.parse_args()
    if args.command == "make":
        make(args.url, args.lines)
    elif args.command == "read":
        figures = read(args.url, args.chunk_rows, args.buffered)
        print(_summary(figures), file=sys.stderr)
        print(json.dumps(figures))
    elif args.command == "build":
        build(args.rows)
    else:
        run_all(args.sizes, args.chunk_rows)


if __name__ == "__main__":
    main()
