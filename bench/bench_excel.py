"""Excel sources: reading a 200,000-row sheet into chunks, and ``nymble-sync validate`` over it.

The sheet (13 columns: text SKUs and UPCs with leading zeros, prices, integers, dates,
datetimes, booleans, some empty cells, a title block above the header) is written once into
``bench/out/`` with openpyxl's write-only mode. Every measurement runs in a fresh child
process, so its peak RSS is its own; wall times are medians of ``--repeat`` runs.

    python bench/bench_excel.py                   # nymble-sync's reader and validate
    python bench/bench_excel.py --compare         # and the raw readers: calamine vs openpyxl
    python bench/bench_excel.py --rows 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

OUT = Path("bench/out")
SHEET = "Products"
HEADER_ROW = 3
HEADER = [
    "sku", "name", "category", "price_retail", "price_wholesale", "qty_on_hand",
    "min_order_qty", "weight", "weight_unit", "upc", "launched", "updated_at", "active",
]  # fmt: skip
JOB = """job: bench-excel
entity: products
source: {{type: xlsx, path: {path}, sheet: {sheet}, header_row: {header_row}}}
key: sku
fields:
  sku: sku
  name: name
  category: category
  price: price_retail
  quantityOnHand: qty_on_hand
  minimumOrderQuantity: min_order_qty
  weight: weight
  weightUnit: weight_unit
  upc: upc
  currencyCode: {{value: USD}}
  active: {{column: active, map: {{"true": true, "false": false}}}}
prices:
  - {{tier: Retail, price: price_retail}}
  - {{tier: Wholesale, price: price_wholesale}}
"""
# What each child process runs: the path is argv[1]; it prints JSON with "rows".
CHILDREN = {
    "calamine": """
import sys, json, time
from python_calamine import CalamineWorkbook
started, cpu = time.perf_counter(), time.process_time()
with open(sys.argv[1], "rb") as f:
    sheet = CalamineWorkbook.from_filelike(f).get_sheet_by_name("Products")
rows = sum(1 for _ in sheet.iter_rows())
print(json.dumps({"rows": rows, "read_s": time.perf_counter() - started,
                  "cpu_s": time.process_time() - cpu}))
""",
    "openpyxl": """
import sys, json, time
from openpyxl import load_workbook
started, cpu = time.perf_counter(), time.process_time()
book = load_workbook(sys.argv[1], read_only=True, data_only=True)
rows = sum(1 for _ in book["Products"].iter_rows(values_only=True))
book.close()
print(json.dumps({"rows": rows, "read_s": time.perf_counter() - started,
                  "cpu_s": time.process_time() - cpu}))
""",
    "chunks": """
import sys, json, time
from pathlib import Path
import pyarrow, numpy  # imported before the clock starts, as a run has them already
from pipelines.extract.excel import open_sheet
started, cpu = time.perf_counter(), time.process_time()
names, chunks = open_sheet(Path(sys.argv[1]), sheet="Products", header_row=3)
rows = count = 0
for chunk in chunks:
    rows += chunk.table.num_rows
    count += 1
read_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"rows": rows, "chunks": count, "read_s": read_s, "cpu_s": cpu_s}))
""",
}


def make_sheet(path: Path, rows: int, *, seed: int = 1) -> None:
    """The benchmark workbook, values drawn with numpy; openpyxl's write-only mode streams."""
    from openpyxl import Workbook

    rng = np.random.default_rng(seed)
    price = np.round(rng.uniform(0.5, 2000, rows), 2)
    wholesale = np.round(price * 0.8, 2)
    qty = rng.integers(0, 5000, rows)
    moq = rng.integers(1, 20, rows)
    weight = np.round(rng.uniform(0.01, 50, rows), 3)
    days = rng.integers(0, 3650, rows)
    seconds = rng.integers(0, 86_400, rows)
    active = rng.random(rows) < 0.8
    categories = ["Fasteners", "Hand Tools", "Safety", "Electrical", "Plumbing"]
    day0, time0 = dt.date(2015, 1, 1), dt.datetime(2020, 1, 1)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(SHEET)
    sheet.append(["Product master (benchmark)"])
    sheet.append([])
    sheet.append(HEADER)
    for i in range(rows):
        sheet.append([
            f"{i + 1:07d}", f"Product {i + 1}", categories[i % 5], float(price[i]),
            None if i % 7 == 0 else float(wholesale[i]), int(qty[i]),
            None if i % 3 == 0 else int(moq[i]), float(weight[i]), "lb" if i % 4 else "kg",
            f"{40_000_000_000 + i:012d}", day0 + dt.timedelta(days=int(days[i])),
            time0 + dt.timedelta(days=int(days[i]), seconds=int(seconds[i])), bool(active[i]),
        ])  # fmt: skip
    partial = path.with_suffix(".partial")
    book.save(partial)
    partial.rename(path)  # an interrupted run leaves no half-written cache


def child(code: str, path: Path) -> dict:
    """Run ``code`` in a fresh interpreter; its output plus wall time and peak RSS."""
    return _measure([sys.executable, "-c", code, str(path)])


def validate(job: Path, state: Path) -> dict:
    env = {"NYMBLE_SYNC_HOME": str(state)}
    cmd = [sys.executable, "-m", "pipelines.cli", "validate", str(job), "--json"]
    return _measure(cmd, env=env, ok=(0, 1))  # 1: rows were rejected (none are here)


def _measure(cmd: list[str], *, env: dict | None = None, ok=(0,)) -> dict:
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=err
        )
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) not in ok:
            err.seek(0)
            raise RuntimeError(f"{cmd[:4]} failed: {err.read().decode()[-2000:]}")
    result = json.loads(out)
    result.setdefault("cpu_s", usage.ru_utime + usage.ru_stime)  # else the whole command's
    result.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024)
    return result


def median_of(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["wall_s"])
    middle = dict(runs[len(runs) // 2])
    middle["walls"] = [round(r["wall_s"], 2) for r in runs]
    return middle


def report(name: str, result: dict, rows: int) -> None:
    """Rows per second of the read itself where the child timed it (interpreter start and
    imports left out), else of the whole command; and the CPU seconds it took, a figure that
    other work on the machine disturbs less than wall time."""
    seconds = result.get("read_s", result["wall_s"])
    print(
        f"  {name:<28} {seconds:6.2f} s  {rows / seconds:>9,.0f} rows/s"
        f"  CPU {result['cpu_s']:6.2f} s  peak RSS {result['peak_rss_mb']:5.0f} MB"
        f"  (wall of each run: {result['walls']})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="report the median run")
    parser.add_argument("--compare", action="store_true", help="time the raw readers too")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"excel_{args.rows}.xlsx"
    if not path.exists():
        started = time.perf_counter()
        # In a process of its own: a child exec'd by a grown process counts that RSS as its own.
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            pool.submit(make_sheet, path, args.rows).result()
        print(f"wrote {path} in {time.perf_counter() - started:.0f} s")
    os.sync()  # the cache is on disk before anything is timed
    print(f"\n{args.rows:,} rows x {len(HEADER)} columns, {path.stat().st_size / 1e6:.1f} MB")
    job = OUT / f"excel_job_{args.rows}.yml"
    job.write_text(JOB.format(path=path.resolve(), sheet=SHEET, header_row=HEADER_ROW))
    plan = [("chunks", "nymble-sync reader (chunks)")]
    if args.compare:
        plan = [
            ("openpyxl", "openpyxl read-only, raw"),
            ("calamine", "python-calamine, raw"),
        ] + plan
    for name, label in plan:
        runs = [
            child(CHILDREN[name], path) for _ in range(1 if name == "openpyxl" else args.repeat)
        ]
        result = median_of(runs)
        assert result["rows"] in (args.rows, args.rows + HEADER_ROW), result
        report(label, result, args.rows)
    checked = median_of([validate(job, OUT / "excel_state") for _ in range(args.repeat)])
    assert checked["rows_read"] == args.rows and checked["rejected"] == 0, checked
    report("nymble-sync validate", checked, args.rows)


if __name__ == "__main__":
    main()
