"""Throughput of the emulator's bulk product endpoint over loopback.

Starts `python -m pipelines.emulator` as a separate process, posts pre-serialized 500-item bodies
from a few client threads, and prints records/s: the median of 3 rounds of fresh products, then
the median of 3 rounds that update them again (a catalog resync), with the load average.
With ``--listing N`` it instead loads N products and reads list pages of 100 (the reconcile's
query: ``Active equals true``, default sort) at several depths: seconds per page for the first
page at a depth and for the 19 pages that follow it, and a whole sequential read in pages/s.

    .venv/bin/python bench/bench_emulator.py [--records 100000] [--threads 4]
    .venv/bin/python bench/bench_emulator.py --listing 300000 [--full-read]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench_key"
BATCH = 500


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _product(round_no: int, i: int) -> dict:
    return {
        "externalId": f"ERP-{round_no}-{i}",
        "sku": f"SKU-{round_no}-{i:07d}",
        "name": f"Bench product {i}",
        "description": "Heavy-duty widget, large format, for benchmark purposes.",
        "category": f"Category {i % 50}",
        "price": 10 + (i % 1000) / 100,
        "prices": [
            {"tier": "Wholesale", "price": 8 + (i % 100) / 100, "atQuantity": 1},
            {"tier": "Wholesale", "price": 7.5, "atQuantity": 50},
            {"tier": "Retail", "price": 12.99},
        ],
        "quantityOnHand": i % 500,
        "minimumOrderQuantity": 1,
        "quantityIncrement": 1,
        "weight": 1.2,
        "weightUnit": "lb",
        "upc": f"{i:012d}",
        "active": True,
        "productAttributes": {"color": "Blue", "size": "L"},
    }


def _bodies(round_no: int, records: int) -> list[bytes]:
    return [
        orjson.dumps([_product(round_no, i) for i in range(start, min(start + BATCH, records))])
        for start in range(0, records, BATCH)
    ]


def _start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipelines.emulator", "--port", str(port)]
    cmd += ["--api-key", f"{API_KEY}=org_bench"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_emulator/stats", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the emulator did not start")


def _post_all(base_url: str, bodies: list[bytes], threads: int) -> float:
    """Seconds to post every body; each thread keeps one keep-alive connection."""
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    clients = [httpx.Client(base_url=base_url, headers=headers, timeout=60) for _ in range(threads)]

    def post(job: tuple[int, bytes]) -> None:
        index, body = job
        response = clients[index % threads].post("/api/products/bulk", content=body)
        summary = orjson.loads(response.raise_for_status().content)
        if summary["failedCount"]:
            raise RuntimeError(f"{summary['failedCount']} items failed")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, enumerate(bodies)))
    elapsed = time.perf_counter() - started
    for client in clients:
        client.close()
    return elapsed


def _page_seconds(client: httpx.Client, number: int, **params: object) -> float:
    query = {"pageSize": 100, "pageNumber": number, "filters[0].field": "Active"}
    query |= {"filters[0].operator": "equals", "filters[0].value": "true", **params}
    started = time.perf_counter()
    body = orjson.loads(client.get("/api/products", params=query).raise_for_status().content)
    elapsed = time.perf_counter() - started
    if number <= body["totalPages"] and len(body["data"]) == 0:
        raise RuntimeError(f"page {number} is empty")
    return elapsed


def _listing(records: int, threads: int, full_read: bool) -> None:
    """Seconds per list page at depth: the first page read there, then the next 19."""
    port = _free_port()
    proc = _start_server(port)
    try:
        base = f"http://127.0.0.1:{port}"
        _post_all(base, _bodies(0, records), threads)
        pages = -(-records // 100)
        headers = {"x-api-key": API_KEY}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            for sort in ({}, {"sortOn": "Price", "sortDirection": "desc"}):
                for start in sorted({1, pages // 2, max(1, pages - 20)}):
                    first = _page_seconds(client, start, **sort)
                    rest = [_page_seconds(client, n, **sort) for n in range(start + 1, start + 20)]
                    label = f"sort {sort.get('sortOn', 'default')}, page {start:,}"
                    print(
                        f"{label}: first {first * 1000:,.1f} ms, next 19 median "
                        f"{statistics.median(rest) * 1000:,.1f} ms/page"
                    )
            if full_read:
                started = time.perf_counter()
                for number in range(1, pages + 1):
                    _page_seconds(client, number)
                elapsed = time.perf_counter() - started
                print(
                    f"all {pages:,} pages in order: {elapsed:.1f} s, {pages / elapsed:,.0f} pages/s"
                )
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--listing", type=int, default=0, help="products to list (list mode)")
    parser.add_argument("--full-read", action="store_true", help="list mode: read every page")
    args = parser.parse_args()
    if args.listing:
        print(f"listing {args.listing:,} products, pages of 100")
        _listing(args.listing, args.threads, args.full_read)
        print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return
    port = _free_port()
    rounds = [_bodies(r, args.records) for r in range(3)]
    proc = _start_server(port)
    try:
        base = f"http://127.0.0.1:{port}"
        creates = [args.records / _post_all(base, bodies, args.threads) for bodies in rounds]
        updates = [args.records / _post_all(base, bodies, args.threads) for bodies in rounds]
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{args.records:,} records per round, batches of {BATCH}, {args.threads} threads")
    for label, rates in (("create", creates), ("update", updates)):
        listed = ", ".join(f"{r:,.0f}" for r in rates)
        print(f"{label}: median {statistics.median(rates):,.0f} records/s (rounds: {listed})")
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
