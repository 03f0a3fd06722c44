"""Shard processes on one box: rows/s and peak RSS per worker for 1, 2 and 4 shards of one
catalog, and the throughput of 4 shards under one shared rate budget.

Every worker is a fresh ``nymble-sync run --shard K/N`` subprocess (peak RSS from ``wait4``)
against the loopback sink of ``bench_small.py`` (accepts every item; the API's own work is out
of the figures), each shard set on a fresh PostgreSQL ledger schema (one ledger, as workers on
several hosts would share). rows/s is the catalog's rows over the wall time of the slowest
shard: the time the whole import takes.

    python bench/bench_shards.py                       # 200,000 rows, 3 repeats
    python bench/bench_shards.py --rows 50000 --repeat 1
    NYMBLE_BENCH_PG_URL=postgresql+psycopg://... python bench/bench_shards.py

The machine has 2 cores: beyond 2 processes the shards share them, so this measures how
little sharding costs, not how far it scales.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_small import JOB, KEY, PYTHON, start_sink  # noqa: E402 - a sibling script

OUT = Path("bench/out/shards")
PG_URL = os.environ.get("NYMBLE_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def catalog(rows: int) -> Path:
    path = OUT / f"catalog_{rows}.csv"
    if not path.exists():
        subprocess.run(
            [sys.executable, "bench/catalog.py", "--rows", str(rows), "--out", str(path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    job = OUT / f"job_{rows}.yml"
    job.write_text(JOB.format(name="shards", path=path.resolve()))
    return job


def fresh_ledger() -> tuple[str, str]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def drop(schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def shard_set(job: Path, url: str, n: int, extra: list[str]) -> tuple[float, list[float], int]:
    """(wall seconds of the whole set, peak MB per worker, requests) for N shard processes."""
    ledger, schema = fresh_ledger()
    home = OUT / f"home_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(home)}
    env["NYMBLE_LEDGER_URL"] = ledger
    cmd = [*PYTHON, "-m", "pipelines.cli", "run", str(job), "--target", url, "--json", *extra]
    started = time.perf_counter()
    home.mkdir(parents=True)
    procs = []
    for k in range(n):
        out, err = (home / f"{k}.out").open("wb"), (home / f"{k}.err").open("wb")
        argv = [*cmd, "--shard", f"{k}/{n}"] if n > 1 else cmd
        procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=err))
    peaks, requests = [], 0
    for k, proc in enumerate(procs):
        _, status, usage = os.wait4(proc.pid, 0)  # peak RSS of this worker alone
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(
                f"shard {k} exited {code}: {(home / f'{k}.err').read_text()[-2000:]}"
            )
        requests += json.loads((home / f"{k}.out").read_text())["requests"]
        peaks.append(usage.ru_maxrss / 1024)
    wall = time.perf_counter() - started
    drop(schema)
    return wall, peaks, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate-limit", type=float, default=50.0)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    job = catalog(args.rows)
    sink, url = start_sink()
    try:
        print(f"{args.rows:,} rows, median of {args.repeat}; peak RSS per worker (max)")
        for n in (1, 2, 4):
            runs = [shard_set(job, url, n, []) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            peak = statistics.median(max(r[1]) for r in runs)
            print(
                f"  {n} shard(s): {args.rows / wall:>9,.0f} rows/s  {wall:6.2f} s  {peak:6.0f} MB"
            )
        limit = args.rate_limit
        batch = -(-args.rows // int(limit * 15))  # about 15 s of sending at the budget
        runs = [
            shard_set(job, url, 4, ["--rate-limit", str(limit), "--batch-size", str(batch)])
            for _ in range(args.repeat)
        ]
        wall = statistics.median(r[0] for r in runs)
        rate = statistics.median(r[2] / r[0] for r in runs)
        print(
            f"  4 shards, shared --rate-limit {limit:g}: {rate:,.1f} requests/s "
            f"({rate / limit:.0%} of the budget, process start-up included), "
            f"{args.rows / wall:,.0f} rows/s"
        )
    finally:
        sink.kill()


if __name__ == "__main__":
    main()
