"""Catalog sync benchmark: a full sync and a 1% daily delta against the emulator.

The emulator runs as its own process (as the real API would be elsewhere), each sync as a
``nymble-sync run`` subprocess, so wall time and peak RSS are the CLI's own. Prints rows/s,
records sent, requests and peak RSS for each size.

    python bench/bench_sync.py                      # 100,000 and 1,000,000 rows
    python bench/bench_sync.py --rows 100000 --repeat 3
    python bench/bench_sync.py --rows 1000000 --out /tmp/bench  # files and ledgers there
    python bench/bench_sync.py --rows 1000000 10000000 --sink   # the client alone (see below)

With ``--sink`` the target is ``bench/counting_sink.py``, which accepts every item and stores
nothing: the figures are the client's alone (at 10,000,000 rows the emulator's own SQLite
work would otherwise share the 2 cores with it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import httpx

OUT = Path("bench/out")
KEY = "bench-key"
JOB = """job: bench-products
entity: products
source: {{type: csv, path: {path}}}
key: sku
fields:
  sku: sku
  name: name
  description: description
  category: category
  price: price_retail
  quantityOnHand: qty_on_hand
  minimumOrderQuantity: min_order_qty
  weight: weight
  weightUnit: weight_unit
  upc: upc
  currencyCode: {{value: USD}}
  active: {{column: status, map: {{A: true, I: false}}}}
prices:
  - {{tier: Retail, price: price_retail}}
  - {{tier: Wholesale, price: price_wholesale}}
  - {{tier: Wholesale, price: price_wholesale_50, atQuantity: 50}}
attributes: {{color: color, size: size}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(*faults: str, db: Path | None = None) -> tuple[subprocess.Popen, str]:
    """An emulator in its own process (as the real API is elsewhere), with optional faults."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "pipelines.emulator",
        "--port",
        str(port),
        "--api-key",
        f"{KEY}=org_bench",
        *[a for f in faults for a in ("--fault", f)],
    ]
    cmd += ["--db", str(db)] if db is not None else []
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/_emulator/stats", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("emulator did not start")


def run(job: Path, url: str, state: Path) -> dict:
    """One sync in a child process; returns its JSON summary plus wall time and peak RSS."""
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(job), "--target", url, "--json"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"sync failed: {out[-2000:]!r}")
    summary = json.loads(out)
    cpu = usage.ru_utime + usage.ru_stime  # on a shared machine, steadier than wall time
    summary.update(wall_s=wall, cpu_s=cpu, peak_rss_mb=usage.ru_maxrss / 1024)
    return summary


def make_exports(source: Path, delta: Path, rows: int) -> int:
    """The nightly export (made once) and its 1% delta; returns the changed row count."""
    sys.path.insert(0, str(Path(__file__).parent))
    from catalog import apply_delta, generate_catalog

    if not source.exists():
        generate_catalog(source, rows)
    return apply_delta(source, delta, fraction=0.01)


def start_target(sink: bool) -> tuple[subprocess.Popen, str]:
    if not sink:
        return start_emulator()
    sys.path.insert(0, str(Path(__file__).parent))
    from counting_sink import start_sink

    return start_sink()


def measure(rows: int, out: Path = OUT, *, sink: bool = False) -> dict:
    source = out / f"catalog_{rows}.csv"
    delta = out / f"catalog_{rows}_delta.csv"
    # In a process of its own: Linux counts the RSS a process had when it exec'd a child
    # in that child's ru_maxrss, so a bench grown big by generating the catalog would
    # inflate every sync's peak RSS figure.
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        changed = pool.submit(make_exports, source, delta, rows).result()
    # Two job files with the same job name (so one ledger state), one per export: no copy of
    # a 250 MB file just before a timed run.
    full_job, delta_job = out / f"job_{rows}.yml", out / f"job_{rows}_delta.yml"
    full_job.write_text(JOB.format(path=source))
    delta_job.write_text(JOB.format(path=delta))
    # The export is on disk before the sync starts, as a nightly file is: otherwise the
    # kernel's write-back of the freshly written files competes with the run for the 2 cores.
    os.sync()
    state = out / f"state_{rows}"
    shutil.rmtree(state, ignore_errors=True)
    emulator, url = start_target(sink)
    try:
        full = run(full_job, url, state)
        daily = run(delta_job, url, state)
    finally:
        emulator.terminate()
        emulator.wait()
    assert daily["sent"] == changed, (daily["sent"], changed)
    return {"rows": rows, "changed": changed, "full": full, "delta": daily}


def report(result: dict) -> None:
    full, delta = result["full"], result["delta"]
    print(f"\n{result['rows']:,} rows")
    for name, r in (("full sync", full), ("1% delta", delta)):
        print(
            f"  {name:<10} {r['wall_s']:7.2f} s wall {r['cpu_s']:7.2f} s CPU"
            f"  {r['rows_read'] / r['wall_s']:>9,.0f} rows/s"
            f"  sent {r['sent']:>9,}  requests {r['requests']:>6,}"
            f"  peak RSS {r['peak_rss_mb']:6.0f} MB"
        )
    print(
        f"  delta/full time: {delta['wall_s'] / full['wall_s']:.0%}; "
        f"delta sent exactly the {result['changed']:,} changed rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=1, help="report the median run")
    parser.add_argument("--out", type=Path, default=OUT, help="exports, job files and state")
    parser.add_argument(
        "--sink", action="store_true", help="send to the counting sink, not the emulator"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for rows in args.rows:
        results = [measure(rows, args.out, sink=args.sink) for _ in range(args.repeat)]
        results.sort(key=lambda r: r["full"]["wall_s"])
        report(results[len(results) // 2])
        if args.repeat > 1:
            walls = [r["full"]["wall_s"] for r in results]
            print(
                f"  full sync wall over {args.repeat} runs: median "
                f"{statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f})"
            )


if __name__ == "__main__":
    main()
