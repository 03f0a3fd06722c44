"""Pacing against server rate limiters: one worker against each limiter algorithm, with and
without rate-limit headers.

An emulator process enforces ``rate_limit`` requests/s per organization with each algorithm
(token bucket, fixed window, sliding log) and each header style; one worker (the loader's
``Sender`` + ``Pacer`` + ``Dispatcher``, 4 requests in flight, as a run sends) posts small
product batches for about ``--seconds``. The emulator's own counts give the share of the
limit used (requests it accepted per second over the run, divided by the limit) and the share
of requests it answered 429; every record must land. Then the per-request cost of reading the
headers and of the pacer is timed.

    python bench/bench_limiters.py                     # 3 algorithms × 4 header styles, 45 s
    python bench/bench_limiters.py --seconds 20 --headers none x_ratelimit
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from bench_load import KEY, batches  # noqa: E402
from bench_sync import start_emulator  # noqa: E402

from pipelines.load.dispatch import Dispatcher  # noqa: E402
from pipelines.load.pacing import Pacer  # noqa: E402
from pipelines.load.rate_headers import read_quota  # noqa: E402
from pipelines.load.sender import RetryPolicy, Sender  # noqa: E402

ALGORITHMS = ("token_bucket", "fixed_window", "sliding_log")
HEADERS = ("none", "x_ratelimit", "ietf_draft", "ietf_structured")
ROUTE = "POST /api/products/bulk"


def one_case(algorithm: str, headers: str, limit: float, seconds: float, size: int) -> dict:
    """One worker against one limiter; the emulator's counts of what it accepted and refused."""
    proc, url = start_emulator(
        f"rate_limit={limit}",
        f"rate_limit_algorithm={algorithm}",
        f"rate_limit_headers={headers}",
    )
    requests = int(limit * seconds)
    work = batches(requests * size, size, f"{algorithm[:2]}{headers[:2]}")
    outcomes = {"failed": 0}

    def done(_batch, result) -> None:
        outcomes["failed"] += sum(o.status == "failed" for o in result.outcomes)

    try:
        with httpx.Client(base_url=url, headers={"x-api-key": KEY}, timeout=30) as client:
            pacer = Pacer(4)
            sender = Sender(client, "/api/products/bulk", policy=RetryPolicy(), pacer=pacer)
            dispatcher = Dispatcher(sender, 4, done)
            started = time.perf_counter()
            for batch in work:
                dispatcher.submit(batch)
            dispatcher.drain()
            elapsed = time.perf_counter() - started
            dispatcher.close()
        stats = httpx.get(f"{url}/_emulator/stats").json()
    finally:
        proc.terminate()
        proc.wait()
    counts = stats["requests"].get(ROUTE, {})
    accepted, refused = counts.get("200", 0), counts.get("429", 0)
    return {
        "used": accepted / elapsed / limit,
        "refused": refused / max(1, accepted + refused),
        "accepted": accepted,
        "answered_429": refused,
        "seconds": elapsed,
        "landed": stats["records"].get("org_bench", {}).get("products", 0),
        "records": requests * size,
        "failed": outcomes["failed"],
    }


def overhead() -> tuple[float, float]:
    """Median µs per response to read X-RateLimit headers, and per pacer acquire + release
    (paced, but with a rate so high that it never sleeps)."""
    headers = httpx.Headers(
        {
            "content-type": "application/json; charset=utf-8",
            "content-length": "512",
            "date": "Wed, 02 Dec 2026 10:00:00 GMT",
            "server": "nymble-emulator",
            "x-ratelimit-limit": "20",
            "x-ratelimit-remaining": "7",
            "x-ratelimit-reset": "0.412",
        }
    )
    quota = read_quota(headers)
    parse, pace = [], []
    for _ in range(5):
        n = 20_000
        t = time.perf_counter()
        for _ in range(n):
            read_quota(headers)
        parse.append((time.perf_counter() - t) / n * 1e6)
        pacer = Pacer(4)
        pacer.estimate.announce(1e9, 1.0)
        t = time.perf_counter()
        for _ in range(n):
            pacer.acquire()
            pacer.release(throttled=False, latency_s=0.001, quota=quota)
        pace.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(parse), statistics.median(pace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="length of each case")
    parser.add_argument("--limit", type=float, default=20.0, help="requests/s the server allows")
    parser.add_argument("--batch", type=int, default=5, help="products per request")
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    parser.add_argument(
        "--headers",
        nargs="+",
        choices=HEADERS,
        default=list(HEADERS),
    )
    args = parser.parse_args()
    print(f"one worker, 4 in flight, {args.batch} products a request, ~{args.seconds:g} s a case")
    print(
        f"{'algorithm':<14}{'headers':<17}{'limit used':>11}{'429s':>8}"
        f"{'accepted':>10}{'429 n':>7}{'seconds':>9}  landed"
    )
    for algorithm in args.algorithms:
        for headers in args.headers:
            r = one_case(algorithm, headers, args.limit, args.seconds, args.batch)
            landed = (
                "all"
                if r["landed"] == r["records"] and not r["failed"]
                else (f"{r['landed']} of {r['records']}, {r['failed']} failed")
            )
            print(
                f"{algorithm:<14}{headers:<17}{r['used']:>11.1%}{r['refused']:>8.2%}"
                f"{r['accepted']:>10}{r['answered_429']:>7}{r['seconds']:>9.1f}  {landed}",
                flush=True,
            )
    parse_us, pace_us = overhead()
    print(f"per request: reading rate-limit headers {parse_us:.1f} µs, pacer {pace_us:.1f} µs")


if __name__ == "__main__":
    main()
