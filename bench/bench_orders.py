"""Historical order import benchmark: N order lines (~N/4 orders) from SQLite and PostgreSQL.

The target runs as its own process: by default the counting sink (``counting_sink.py``),
which accepts every item and stores nothing, so the figures are the client's; with
``--target emulator`` the emulator, which stores every order (at 1,000,000 lines it spent
2.4x the client's CPU: it, not the client, set the pace). Products (the sample catalog) and
customers are synced first; then each orders import runs in a child process, so wall time,
CPU and peak RSS (the child's own VmHWM, nothing of this process's) are the import's own.

Per size and backend, four runs in order: ``first`` (an empty org: every order created),
``unchanged`` (incremental, nothing changed), ``1% incremental`` (1% of the orders edited in
the ERP, read from the watermark) and ``1% full read`` (1% edited again, the whole history
read and compared with the acknowledged state). Prints lines/s, orders read, sent and
received by the sink, client peak RSS and CPU, the target's CPU, RSS as the orders came in,
and the 10M/1M peak RSS ratio per run. The data is generated deterministically and COPY'd
into schema ``bench_orders_v2_<lines>`` (10,000,000 lines: ~2-5 min, kept for the next run).

    python bench/bench_orders.py --lines 1000000 10000000 --backends postgresql
    python bench/bench_orders.py --lines 100000 --backends sqlite --target emulator
    BENCH_PEAKS=1 python bench/bench_orders.py ...     # where each new RSS high was reached
    BENCH_TRACE=250000,750000 python bench/bench_orders.py --runs first ...  # tracemalloc
    NYMBLE_TEST_PG_URL=postgresql+psycopg://user@host/db python bench/bench_orders.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import KEY, start_emulator  # noqa: E402
from counting_sink import start_sink  # noqa: E402

OUT = Path("bench/out")
PG_URL = os.environ.get("NYMBLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_orders_v2"  # v2: order dates in the past at every size (see erp_orders)
FIRST_ORDER, LAST_ORDER = datetime(2015, 1, 1), datetime(2025, 1, 1)
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
WATERMARK_LINE = re.compile(r"^watermark:.*\n", re.MULTILINE)


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


def erp_orders(lines: int, skus: list[str]) -> Iterator[tuple[tuple, list[tuple]]]:
    """(order row, its line rows), shaped like sample_data/erp.sqlite, ~4 lines an order, in
    order_id order. Deterministic: the same ``lines`` give the same rows, generated as they
    are written (10,000,000 lines held at once would be ~3 GB)."""
    rng = random.Random(lines)
    customers = [f"CUST-{n:04d}" for n in range(1, 301)]
    # Ten years of history whatever the size, all in the past: a date after "now" is flagged
    # (future_order_date), and a generator stepping a fixed 7 minutes an order ran past today
    # after ~520,000 orders, so 10M lines wrote 2M warnings that 1M lines did not.
    start, step = FIRST_ORDER, (LAST_ORDER - FIRST_ORDER) / (lines // 4 + 1)
    order_id, made = 0, 0
    while made < lines:
        order_id += 1
        placed = start + step * order_id
        order = (
            order_id,
            f"SO-{1_000_000 + order_id}",
            rng.choice(customers),
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
        count = min(rng.randint(1, 7), lines - made)
        order_lines = []
        for line_no, sku in enumerate(rng.sample(skus, count), start=1):
            price = f"{rng.randint(100, 99999) / 100:.2f}" if line_no != 3 else "12.345"
            order_lines.append((order_id, line_no, sku, rng.choice([1, 2, 5, 10, 24]), price))
        made += count
        yield order, order_lines


def erp_rows(lines: int, skus: list[str]) -> tuple[list[tuple], list[tuple]]:
    """(orders, lines) rows of :func:`erp_orders`, as two lists."""
    orders, order_lines = [], []
    for order, its_lines in erp_orders(lines, skus):
        orders.append(order)
        order_lines += its_lines
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
    path = OUT / f"erp_orders_v2_{lines}.sqlite"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(partial) as db:  # two passes over the generator: flat memory
            db.executescript(SQLITE_SCHEMA)
            orders = (order for order, _ in erp_orders(lines, skus))
            db.executemany(f"INSERT INTO orders VALUES ({','.join('?' * 14)})", orders)
            rows = (line for _, its in erp_orders(lines, skus) for line in its)
            db.executemany("INSERT INTO order_lines VALUES (?,?,?,?,?)", rows)
        partial.rename(path)
    return f"sqlite:///{path}"


def postgres_erp(lines: int, skus: list[str]) -> str:
    schema = f"{SCHEMA}_{lines}"
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            found = conn.scalar(
                sa.text(
                    "SELECT count(*) FROM information_schema.tables WHERE "
                    "table_schema = :s AND table_name = 'order_lines'"
                ),
                {"s": schema},
            )
        if not found:
            _fill_postgres(engine, schema, lines, skus)
    finally:
        engine.dispose()
    return url


def _fill_postgres(engine: sa.Engine, schema: str, lines: int, skus: list[str]) -> None:
    """COPY both tables at once over two connections, in one pass over the generator; the
    schema appears whole or not at all (a run stopped half way leaves nothing behind)."""
    with engine.connect() as headers_conn, engine.connect() as lines_conn:
        headers_conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema}_partial CASCADE")
        headers_conn.exec_driver_sql(f"CREATE SCHEMA {schema}_partial")
        headers_conn.exec_driver_sql(f"SET search_path TO {schema}_partial")
        headers_conn.exec_driver_sql(PG_SCHEMA)
        headers_conn.commit()
        lines_conn.exec_driver_sql(f"SET search_path TO {schema}_partial")
        with (
            headers_conn.connection.cursor() as h,
            lines_conn.connection.cursor() as li,
            h.copy("COPY orders FROM STDIN") as orders_copy,
            li.copy("COPY order_lines FROM STDIN") as lines_copy,
        ):
            for order, its_lines in erp_orders(lines, skus):
                orders_copy.write_row(_server(order))
                for line in its_lines:
                    lines_copy.write_row((*line[:4], Decimal(line[4])))
        lines_conn.commit()
        headers_conn.exec_driver_sql("ANALYZE orders")
        headers_conn.exec_driver_sql("ANALYZE order_lines")
        headers_conn.exec_driver_sql(f"ALTER SCHEMA {schema}_partial RENAME TO {schema}")
        headers_conn.commit()


def _server(row: tuple) -> tuple:
    values = list(row)
    values[3] = datetime.strptime(values[3], ERP_DATE)
    values[11] = Decimal(values[11])
    values[13] = datetime.strptime(values[13], "%Y-%m-%d %H:%M:%S")
    return tuple(values)


def change_one_pct(url: str) -> int:
    """Change 1% of the orders (order_id % 100 == 7): their notes toggle between NULL and a
    text, and their updated_at moves past every other's, as an ERP edit would. Two calls put
    the notes back, so the database stays reusable. Returns the orders changed."""
    engine = sa.create_engine(url)
    later = (
        "(SELECT max(updated_at) FROM orders) + interval '1 minute'"
        if engine.dialect.name == "postgresql"
        else "datetime((SELECT max(updated_at) FROM orders), '+1 minute')"
    )
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                sa.text(
                    "UPDATE orders SET notes = CASE WHEN notes IS NULL THEN 'changed by the "
                    f"bench' ELSE NULL END, updated_at = {later} WHERE order_id % 100 = 7"
                )
            ).rowcount
    finally:
        engine.dispose()
    return changed


# --- runs -------------------------------------------------------------------------------------

# The runs of one size, in order: a first import into an empty org (everything created), an
# incremental rerun with nothing changed, then 1% of the orders changed, read incrementally
# (watermark), and 1% changed again, read whole and compared with the acknowledged state.
RUNS = ("first", "unchanged", "1% incremental", "1% full read")


def child(job: str, url: str, target: str, state: str) -> None:
    """In the child process: one sync; its summary, the process's own peak RSS (VmHWM: since
    exec, so nothing of the parent's is counted), CPU time and RSS as the orders came in, as
    JSON on stdout. With BENCH_TRACE=N1,N2 it also compares tracemalloc snapshots taken at N1
    and N2 orders read, into bench/out/trace_orders_N1_N2.txt (slow: a diagnosis tool)."""
    from pipelines.run.commands import SyncSettings
    from pipelines.run.commands import sync as sync_entity

    curve = _RssCurve(os.environ.get("BENCH_TRACE"))
    peaks = _PeakWatch() if os.environ.get("BENCH_PEAKS") else None
    settings = SyncSettings(
        job_path=Path(job),
        target=target,
        state_dir=Path(state),
        environ={"NYMBLE_API_KEY": KEY, "ERP_DATABASE_URL": url},
        log=lambda _: None,
        progress=curve.see,
    )
    summary = sync_entity(settings).to_dict()
    summary["vm_hwm_mb"] = _status_mb("self", "VmHWM")
    summary["cpu_s"] = sum(os.times()[:2])
    summary["rss_curve"] = curve.points
    if peaks is not None:
        summary["peaks"] = peaks.stop()
    print(json.dumps(summary))


class _PeakWatch:
    """BENCH_PEAKS=1: every 20 ms, if RSS passed its highest so far by 4 MB, where every
    thread was at that moment (its innermost project frames): what code a peak belongs to."""

    def __init__(self):
        import threading

        self.found: list[dict] = []
        self.high = 0.0
        self.done = threading.Event()
        self.main = threading.main_thread().ident
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        import traceback

        while not self.done.wait(0.02):
            rss = _status_mb("self", "VmRSS")
            if rss < self.high + 4:
                continue
            self.high = rss
            stacks = {}
            for ident, frame in sys._current_frames().items():
                frames = [f for f in traceback.extract_stack(frame) if "/pipelines/" in f.filename]
                if frames:
                    where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[-6:]]
                    stacks["main" if ident == self.main else str(ident)] = where
            self.found.append({"rss_mb": round(rss), "stacks": stacks})

    def stop(self) -> list[dict]:
        self.done.set()
        self.thread.join()
        return self.found[-12:]


class _RssCurve:
    """RSS as the run goes: (orders read, MB, CPU s so far) every 50,000 orders;
    optionally tracemalloc snapshots at two points, compared."""

    def __init__(self, trace: str | None):
        self.points: list[tuple[int, float]] = []
        self.step, self.next = 50_000, 0
        self.trace = [int(n) for n in trace.split(",")] if trace else []
        self.snapshots: list = []
        if self.trace:
            import tracemalloc

            tracemalloc.start(8)

    def see(self, summary) -> None:
        read = summary.rows_read
        if read >= self.next:
            cpu = round(sum(os.times()[:2]), 2)
            self.points.append((read, round(_status_mb("self", "VmRSS"), 1), cpu))
            self.next = read + self.step
        if self.trace and read >= self.trace[len(self.snapshots)]:
            self._snapshot(read)

    def _snapshot(self, read: int) -> None:
        import gc
        import tracemalloc

        gc.collect()
        self.snapshots.append((read, tracemalloc.take_snapshot()))
        if len(self.snapshots) < len(self.trace):
            return
        (a, first), (b, second) = self.snapshots
        self.trace = [*self.trace, 2**62]  # no more snapshots
        out = OUT / f"trace_orders_{a}_{b}.txt"
        with out.open("w") as f:
            f.write(f"tracemalloc: {a:,} orders read → {b:,} orders read\n")
            for kind in ("lineno", "traceback"):
                f.write(f"\n--- top differences by {kind} ---\n")
                for stat in second.compare_to(first, kind)[:25]:
                    f.write(f"{stat}\n")
                    if kind == "traceback":
                        f.writelines(f"      {line}\n" for line in stat.traceback.format()[-8:])


def _status_mb(pid: int | str, field: str) -> float:
    """A ``/proc/PID/status`` memory figure (kB there) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(job: Path, url: str, target: str, state: Path, server: int | None = None) -> dict:
    """One import in a child process: its summary, wall time, peak RSS and CPU, and the CPU
    the target's process (pid ``server``) spent meanwhile, to tell which side is the
    bottleneck."""
    cmd = [sys.executable, __file__, "_child", str(job), url, target, str(state)]
    load = os.getloadavg()[0]  # the machine is shared: what else was running as this began
    server_cpu = _cpu_s(server) if server else 0.0
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"import failed: {out[-2000:]!r}")
    summary = json.loads(out)
    summary.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, load=load)
    if server:
        summary["target_cpu_s"] = _cpu_s(server) - server_cpu
        summary["target_rss_mb"] = _status_mb(server, "VmRSS")
    return summary


def measure(lines: int, backend: str, args) -> dict:
    state = OUT / f"orders_state_{backend}_{lines}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    if args.target == "sink":
        server, target = start_sink()
    else:
        server, target = start_emulator(db=state / "emulator.sqlite")
    try:
        seed_org(target, state)
        skus = skus_at(target)
        # In a process of its own: Linux counts the RSS a process had when it exec'd a child
        # in that child's ru_maxrss, so building a million rows here would inflate the
        # import's peak RSS figure.
        make = sqlite_erp if backend == "sqlite" else postgres_erp
        started = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            url = pool.submit(make, lines, skus).result()
        made_s = time.perf_counter() - started
        runs = _runs(lines, url, target, state, server.pid, args)
        stored = state / "emulator.sqlite"
        stored_mb = stored.stat().st_size / 2**20 if stored.exists() else 0
    finally:
        server.terminate()
        server.wait()
    return {"lines": lines, "backend": backend, "target": args.target, "runs": runs,
            "made_s": made_s, "emulator_db_mb": stored_mb}  # fmt: skip


def _runs(lines: int, url: str, target: str, state: Path, server: int, args) -> dict:
    incremental = OUT / f"orders_job_{lines}.yml"
    incremental.write_text(ORDERS_JOB.format(batch=args.batch, concurrency=args.concurrency))
    whole = OUT / f"orders_job_{lines}_whole.yml"  # the same job, read whole every time
    whole.write_text(WATERMARK_LINE.sub("", incremental.read_text()))
    runs = {}
    for name in args.runs:
        changed = change_one_pct(url) if name.startswith("1%") else 0
        job = whole if name == "1% full read" else incremental
        before = _sink_stats(target) if args.target == "sink" else None
        runs[name] = run(job, url, target, state, server) | {"changed": changed}
        if before is not None:  # what reached the target: nothing lost, nothing twice
            after = _sink_stats(target)
            runs[name]["received"] = after["orders"] - before["orders"]
    return runs


def _sink_stats(target: str) -> dict:
    return httpx.get(f"{target}/_sink/stats", timeout=10).json()


def seed_org(target: str, state: Path) -> None:
    """The sample catalog and customers, which the orders reference."""
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
    cmd = [sys.executable, "-m", "pipelines.cli", "run", "mappings/products.yml"]
    subprocess.run([*cmd, "--target", target], env=env, check=False, capture_output=True)
    run(Path("mappings/customers.yml"), "", target, state)


def report(result: dict) -> None:
    lines, runs = result["lines"], result["runs"]
    first = next(iter(runs.values()))
    stored = result["emulator_db_mb"]
    print(
        f"\n{lines:,} lines from {result['backend']} to the {result['target']} (data made in "
        f"{result['made_s']:.0f} s{f'; emulator database {stored:,.0f} MB' if stored else ''}):"
        f" {first['rows_read']:,} orders read first, load average {first['load']:.1f} at start"
    )
    print(f"  {'run':<15} {'wall s':>7} {'lines/s':>8} {'orders read':>11} {'sent':>9} "
          f"{'received':>9} {'client peak':>11} {'client CPU':>10} {'target CPU':>10}")  # fmt: skip
    for name, r in runs.items():
        lines_read = _lines_read(r)
        received = "-" if r.get("received") is None else f"{r['received']:,}"
        print(
            f"  {name:<15} {r['wall_s']:7.1f} {lines_read / r['wall_s']:8,.0f} "
            f"{r['rows_read']:>11,} {r['sent']:>9,} {received:>9} "
            f"{r['vm_hwm_mb']:>8,.0f} MB {r['cpu_s']:>8.1f} s {r.get('target_cpu_s', 0):>8.1f} s"
        )
        curve = r.get("rss_curve") or []
        if len(curve) > 2:
            shown = curve[:: max(1, len(curve) // 8)] + curve[-1:]
            points = ", ".join(f"{n:,}: {mb:.0f}" for n, mb, _ in shown)
            print(f"      RSS (MB) as orders were read: {points}")


def _lines_read(summary: dict) -> int:
    """Order lines the run read (its notes say so)."""
    for note in summary.get("notes", []):
        if note.endswith("order lines read"):
            return int(note.split()[0].replace(",", ""))
    return 0


def ratios(results: list[dict]) -> None:
    for backend in {r["backend"] for r in results}:
        mine = {r["lines"]: r["runs"] for r in results if r["backend"] == backend}
        if len(mine) < 2:
            continue
        small, large = mine[min(mine)], mine[max(mine)]
        for name in small.keys() & large.keys():
            a, b = small[name]["vm_hwm_mb"], large[name]["vm_hwm_mb"]
            print(
                f"{backend}, {name}: client peak RSS {max(mine):,} lines / {min(mine):,} lines "
                f"= {b:,.0f} / {a:,.0f} MB = {b / a:.2f}x"
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
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=RUNS, metavar="RUN",
                        help=f"which runs, in order (default all: {', '.join(RUNS)})")  # fmt: skip
    parser.add_argument("--target", choices=["sink", "emulator"], default="sink",
                        help="sink (default): the counting sink, so the client is measured; "
                        "emulator: the emulator, which stores every order")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for n in args.lines:
        for backend in args.backends:
            results.append(measure(n, backend, args))
            if args.json:  # before the report: figures that took minutes are never lost
                args.json.write_text(json.dumps(results, indent=1))
            report(results[-1])
    ratios(results)


if __name__ == "__main__":
    main()
