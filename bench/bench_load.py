"""Loader benchmarks against the emulator's faults (issue: loading at network speed).

1. latency: 50 ms added per request; throughput vs the bound concurrency × batch / latency.
2. rate limit: the server allows 20 requests/s; achieved rate, share of 429s, all landed.
3. fault mix: 10% 5xx + 5% 429 + 1% dropped + 1% commit-then-fail through a whole
   `nymble-sync run`: every valid record lands exactly once and the run exits 0.

    python bench/bench_load.py [--records 40000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import JOB, OUT, start_emulator  # noqa: E402
from catalog import generate_catalog  # noqa: E402

from pipelines.load.batching import Batch, Pending  # noqa: E402
from pipelines.load.dispatch import Dispatcher  # noqa: E402
from pipelines.load.pacing import Pacer  # noqa: E402
from pipelines.load.sender import RetryPolicy, Sender  # noqa: E402

KEY = "bench-key"


def batches(records: int, size: int, tag: str) -> list[Batch]:
    bodies = [
        orjson.dumps(
            {
                "externalId": f"{tag}-{i}",
                "sku": f"{tag}-{i}",
                "name": "x",
                "price": 1.25,
                "prices": [{"tier": "Retail", "price": 1.25}],
            }
        )
        for i in range(records)
    ]
    out = []
    for start in range(0, records, size):
        chunk = bodies[start : start + size]
        n = len(chunk)
        out.append(
            Batch.of(
                Pending(
                    [""] * n,
                    np.zeros(n, np.int64),
                    np.zeros(n, np.int64),
                    np.zeros(n, np.int64),
                    chunk,
                )
            )
        )
    return out


def send_all(url: str, work: list[Batch], concurrency: int) -> dict:
    """Send batches through the real loader stack; count outcomes, requests and 429s."""
    totals = {"ok": 0, "failed": 0, "requests": 0, "throttled": 0}

    def done(_batch, result):
        totals["ok"] += sum(o.status != "failed" for o in result.outcomes)
        totals["failed"] += sum(o.status == "failed" for o in result.outcomes)
        totals["requests"] += result.requests
        totals["throttled"] += result.throttled

    with httpx.Client(
        base_url=url,
        headers={"x-api-key": KEY},
        timeout=30,
        limits=httpx.Limits(max_connections=2 * concurrency),
    ) as client:
        pacer = Pacer(concurrency)
        sender = Sender(client, "/api/products/bulk", policy=RetryPolicy(), pacer=pacer)
        dispatcher = Dispatcher(sender, concurrency, done)
        started = time.perf_counter()
        for batch in work:
            dispatcher.submit(batch)
        dispatcher.drain()
        dispatcher.close()
        totals["seconds"] = time.perf_counter() - started
    return totals


def held(url: str) -> int:
    return (
        httpx.get(f"{url}/_emulator/stats")
        .json()["records"]
        .get("org_bench", {})
        .get("products", 0)
    )


def latency(records: int) -> None:
    proc, url = start_emulator("latency_ms=50")
    try:
        r = send_all(url, batches(records, 500, "lat"), 4)
    finally:
        proc.terminate()
    bound = 4 * 500 / 0.050
    rate = r["ok"] / r["seconds"]
    print(
        f"latency 50 ms: {rate:,.0f} records/s = {rate / bound:.0%} of the bound "
        f"{bound:,.0f} (4 × 500 / 50 ms); {r['requests']} requests"
    )


def rate_limit(requests: int) -> None:
    proc, url = start_emulator("rate_limit=20")
    try:
        r = send_all(url, batches(requests * 20, 20, "rl"), 4)
        landed = held(url)
    finally:
        proc.terminate()
    achieved = (r["requests"] - r["throttled"]) / r["seconds"]
    print(
        f"rate limit 20/s: achieved {achieved:.1f} accepted requests/s = {achieved / 20:.0%} "
        f"of the limit; {r['throttled']} of {r['requests']} requests answered 429 "
        f"({r['throttled'] / r['requests']:.1%}); landed {landed:,} of {requests * 20:,}"
    )


def fault_mix(rows: int) -> None:
    source = OUT / f"catalog_{rows}.csv"
    if not source.exists():
        generate_catalog(source, rows)
    job = OUT / f"job_mix_{rows}.yml"
    job.write_text(JOB.format(path=source))
    proc, url = start_emulator(
        "error_rate=0.1",
        "throttle_rate=0.05",
        "drop_rate=0.01",
        "commit_then_fail_rate=0.01",
        "seed=3",
    )
    state = OUT / f"state_mix_{rows}"
    subprocess.run(["rm", "-rf", str(state)], check=True)
    try:
        env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", str(job), "--target", url, "--json"],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        stats = httpx.get(f"{url}/_emulator/stats").json()
        landed = stats["records"].get("org_bench", {}).get("products", 0)
    finally:
        proc.terminate()
    summary = json.loads(run.stdout)
    print(
        f"fault mix: exit {run.returncode}; {landed:,} products held for {rows:,} rows "
        f"(sent {summary['sent']:,}, failed {summary['failed']}); {summary['requests']} "
        f"requests, {summary['retries']} retries; faults fired {stats['faults']}; {seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    latency(args.records)
    rate_limit(args.requests)
    fault_mix(args.rows)


if __name__ == "__main__":
    main()
