"""Reconcile benchmark: a migrated catalog and order history compared against the emulator.

Setup (not timed): the emulator runs as its own process with a database file; a generated
catalog of ``--products`` rows is synced, then the sample customers, then ``--lines`` order
lines (~4 an order) from a generated ERP SQLite database. Then ``nymble-sync reconcile`` runs
for the products job and the orders job, each in a child process, ``--repeat`` times: wall
time (and, of the reconcile's own time, reading the target vs reading and comparing the
source), records compared per second, requests, and peak RSS (the child's ``ru_maxrss``).

The emulator lists by index and seeks past the end of the page it served last (emulator/
page_cursors.py): a page costs the same at any depth, so the target is read in linear time.

``--source-rows N`` also reconciles the products job with only the first N rows of its
catalog against the same target: with the 100,000-product run's figure, what memory a larger
target costs when the source is the same size (the rest of the target is "gone").

    python bench/bench_reconcile.py                                   # 100,000 + 100,000 lines
    python bench/bench_reconcile.py --products 1000000 --lines 1000000 --repeat 1
    python bench/bench_reconcile.py --products 1000000 --repeat 1 --source-rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from multiprocessing import get_context
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_orders import ORDERS_JOB, SQLITE_SCHEMA, erp_rows  # noqa: E402
from bench_sync import JOB, KEY, free_port  # noqa: E402
from catalog import generate_catalog  # noqa: E402

OUT = Path("bench/out/reconcile")
CUSTOMERS = Path("mappings/customers.yml")


def setup(products: int, lines: int) -> tuple[Path, dict[str, Path], str]:
    """A migrated emulator database, the two jobs, and the ERP database URL (built once per
    size; reused while the files exist)."""
    state = OUT / f"state_{products}_{lines}"
    jobs = {"products": OUT / f"products_{products}.yml", "orders": OUT / f"orders_{lines}.yml"}
    erp = OUT / f"erp_{products}_{lines}.sqlite"
    url = f"sqlite:///{erp.resolve()}"
    if not (state / "migrated").exists():
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        catalog = OUT / f"catalog_{products}.csv"
        if not catalog.exists():
            generate_catalog(catalog, products)
        jobs["products"].write_text(JOB.format(path=catalog.resolve()))
        jobs["orders"].write_text(ORDERS_JOB.format(batch=200, concurrency=4))
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            pool.submit(make_erp, erp, lines, products).result()
        (state / "port").write_text(str(free_port()))
        emulator, target = start_emulator(state)
        try:
            for job in (jobs["products"], CUSTOMERS, jobs["orders"]):
                migrate(job, target, state, url)
        finally:
            emulator.terminate()
            emulator.wait()
        (state / "migrated").touch()
    return state, jobs, url


def start_emulator(state: Path) -> tuple[subprocess.Popen, str]:
    """The emulator on the state's own port: the ledger knows a target by its URL, so the
    reconcile finds what the migration recorded (ownership, the references it knew)."""
    port = (state / "port").read_text().strip()
    db = state / "emulator.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "pipelines.emulator",
        "--port",
        port,
        "--api-key",
        f"{KEY}=org_bench",
    ]
    proc = subprocess.Popen([*cmd, "--db", str(db)], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/_emulator/stats", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("emulator did not start")


def make_erp(path: Path, lines: int, products: int) -> None:
    """Order lines over the first SKUs of the generated catalog (``SKU-0000001`` ...)."""
    skus = [f"SKU-{n:07d}" for n in range(1, min(products, 5000) + 1)]
    orders, order_lines = erp_rows(lines, skus)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(SQLITE_SCHEMA)
        db.executemany(f"INSERT INTO orders VALUES ({','.join('?' * 14)})", orders)
        db.executemany("INSERT INTO order_lines VALUES (?,?,?,?,?)", order_lines)


def migrate(job: Path, target: str, state: Path, url: str) -> None:
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
    env["ERP_DATABASE_URL"] = url
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(job), "--target", target, "--json"]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, check=False)
    summary = json.loads(done.stdout)
    print(
        f"  setup: {job.name}: {summary['status']}, {summary['created']:,} created "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def reconcile(job: Path, target: str, state: Path, url: str) -> dict:
    """One reconcile in a child process: its JSON report, wall time and peak RSS."""
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
    env["ERP_DATABASE_URL"] = url
    cmd = [sys.executable, "-m", "pipelines.cli", "reconcile", str(job), "--target", target]
    load = os.getloadavg()[0]  # the machine is shared: what else was running as this began
    started = time.perf_counter()
    proc = subprocess.Popen([*cmd, "--json"], env=env, stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"reconcile failed: {out[-2000:]!r}")
    report = json.loads(out)
    report.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024, load=load)
    return report


def first_rows(products: int, rows: int) -> Path:
    """The products job (same name: the ledger's ownership applies) on the first ``rows`` rows
    of the catalog."""
    catalog = OUT / f"catalog_{products}_first_{rows}.csv"
    with (OUT / f"catalog_{products}.csv").open("rb") as whole, catalog.open("wb") as part:
        part.writelines(islice(whole, rows + 1))  # the header, then `rows` rows (one a line)
    job = OUT / f"products_{products}_first_{rows}.yml"
    job.write_text(JOB.format(path=catalog.resolve()))
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source-rows", type=int, default=0, help="also: the first N rows")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"reconcile: {args.products:,} products, {args.lines:,} order lines", flush=True)
    state, jobs, url = setup(args.products, args.lines)
    if args.source_rows:
        jobs[f"products, first {args.source_rows:,} rows"] = first_rows(
            args.products, args.source_rows
        )
    emulator, target = start_emulator(state)
    try:
        for name, job in jobs.items():
            runs = [reconcile(job, target, state, url) for _ in range(args.repeat)]
            report(name, runs)
    finally:
        emulator.terminate()
        emulator.wait()


def report(name: str, runs: list[dict]) -> None:
    last = runs[-1]
    wall = statistics.median(r["wall_s"] for r in runs)
    target = statistics.median(r["target_read_s"] for r in runs)
    rest = statistics.median(r["elapsed_s"] - r["target_read_s"] for r in runs)
    compared = last["compared"] + last["target_records"]
    print(
        f"  {name}: {last['compared']:,} source records against {last['target_records']:,} "
        f"target records, agrees={last['agrees']}, {last['requests']:,} requests\n"
        f"    median of {len(runs)}: {wall:.1f} s wall: {target:.1f} s reading the target, "
        f"{rest:.1f} s the source and the rest; "
        f"{compared / wall:,.0f} records compared/s (both sides), "
        f"peak RSS {max(r['peak_rss_mb'] for r in runs):,.0f} MB "
        f"(load {min(r['load'] for r in runs):.1f})",
        flush=True,
    )


if __name__ == "__main__":
    main()
