"""Adopt benchmark: a first run with an empty ledger against an org that already holds the
catalog, ``run --adopt``, where 1% of the source differs from what the org holds.

Setup (not timed): a generated catalog of ``--products`` rows is loaded into an emulator with a
database file, through a ledger that is then set aside (another tool loaded it); the database
is kept as a pristine copy. Each repetition restores that copy, then runs, each in a child
process with a new empty ledger:
``run --adopt`` on the catalog with 1% of rows changed (``bench/catalog.py apply_delta``), then
a plain ``run``. Printed: wall time, items the emulator received, requests, peak RSS, medians.

    python bench/bench_adopt.py                          # 100,000 products, 1% differing
    python bench/bench_adopt.py --products 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_reconcile import start_emulator  # noqa: E402
from bench_sync import JOB, KEY, free_port  # noqa: E402
from catalog import apply_delta, generate_catalog  # noqa: E402

OUT = Path("bench/out/adopt")


def setup(products: int) -> tuple[Path, Path, int]:
    """The loaded org (a pristine database copy), the job reading the changed catalog, and
    how many rows differ. Built once per size."""
    state = OUT / f"state_{products}"
    catalog, changed_csv = OUT / f"catalog_{products}.csv", OUT / f"changed_{products}.csv"
    job = OUT / f"adopt_{products}.yml"
    if not (state / "pristine.sqlite").exists():
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        generate_catalog(catalog, products)
        (state / "port").write_text(str(free_port()))
        loader = OUT / f"loader_{products}.yml"
        loader.write_text(JOB.format(path=catalog.resolve()))
        emulator, target = start_emulator(state)
        try:
            summary = nymble(["run", str(loader)], target, state / "earlier-tool")[0]
            print(f"  setup: {summary['created']:,} products loaded by the earlier tool")
        finally:
            emulator.terminate()
            emulator.wait()
        shutil.copy(state / "emulator.sqlite", state / "pristine.sqlite")
    changed = apply_delta(catalog, changed_csv, fraction=0.01)
    job.write_text(JOB.format(path=changed_csv.resolve()))
    return state, job, changed


def nymble(args: list[str], target: str, home: Path) -> tuple[dict, float, float]:
    """One CLI command in a child process: its JSON summary, wall seconds, peak RSS (MB)."""
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(home)}
    cmd = [sys.executable, "-m", "pipelines.cli", *args, "--target", target, "--json"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args[0]} failed: {out[-2000:]!r}")
    return json.loads(out), wall, usage.ru_maxrss / 1024


def received(target: str) -> tuple[int, int]:
    """(requests of every route, items received) the emulator counted so far."""
    stats = httpx.get(f"{target}/_emulator/stats").json()
    requests = sum(sum(by.values()) for by in stats["requests"].values())
    return requests, stats["items"]["received"]


def once(state: Path, job: Path) -> dict:
    shutil.copy(state / "pristine.sqlite", state / "emulator.sqlite")
    emulator, target = start_emulator(state)
    try:
        with tempfile.TemporaryDirectory(prefix="adopt-ledger-") as home:
            before = received(target)
            adopt, adopt_s, rss = nymble(["run", str(job), "--adopt"], target, Path(home))
            middle = received(target)
            plain, plain_s, _ = nymble(["run", str(job)], target, Path(home))
            after = received(target)
    finally:
        emulator.terminate()
        emulator.wait()
    return {
        "adopt": adopt,
        "adopt_s": adopt_s,
        "rss": rss,
        "adopt_items": middle[1] - before[1],
        "adopt_requests": middle[0] - before[0],
        "plain": plain,
        "plain_s": plain_s,
        "plain_items": after[1] - middle[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"adopt: {args.products:,} products held by the org, 1% changed", flush=True)
    state, job, changed = setup(args.products)
    runs = [once(state, job) for _ in range(args.repeat)]
    last = runs[-1]
    a, p = last["adopt"], last["plain"]
    print(
        f"  run --adopt: {changed:,} rows differ; sent {last['adopt_items']:,} items in "
        f"{last['adopt_requests']:,} requests (reads included); unchanged={a['unchanged']:,} "
        f"updated={a['updated']:,} created={a['created']:,} balanced={a['balanced']}\n"
        f"    median of {len(runs)}: {statistics.median(r['adopt_s'] for r in runs):.1f} s wall, "
        f"peak RSS {max(r['rss'] for r in runs):,.0f} MB\n"
        f"  next plain run: sent {last['plain_items']:,} items, unchanged={p['unchanged']:,}; "
        f"median {statistics.median(r['plain_s'] for r in runs):.1f} s wall",
        flush=True,
    )


if __name__ == "__main__":
    main()
