"""Cost of reading API pages with exact numbers (``load/decimal_json.py``) against plain orjson.

An in-process emulator serves a page of 100 products and a page of 100 orders (4 lines each);
each body is parsed ``--repeat`` times by orjson, by ``loads_exact`` and by the stdlib with
every float a Decimal (``json.loads(parse_float=Decimal)``, what reconcile's exact reads use),
and once more for an order page holding one amount a double cannot hold. Prints the median
microseconds per page.

    .venv/bin/python bench/bench_exact_reads.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pipelines.emulator import Emulator, EmulatorSettings  # noqa: E402
from pipelines.load.decimal_json import loads_exact  # noqa: E402

KEY = "bench-key"


def _pages(client: httpx.Client) -> dict[str, bytes]:
    customer = {"customerNumber": "C1", "companyName": "Bench", "companyEmail": "b@x.y"}
    client.put("/api/customers", json=customer | {"pricing": "Retail"}).raise_for_status()
    products = [
        {"sku": f"SKU-{i:04d}", "name": f"Bench product {i}", "price": 10 + i / 100,
         "prices": [{"tier": "Retail", "price": 12.99}, {"tier": "Wholesale", "price": 8.5}],
         "weight": 1.25, "upc": f"{i:012d}", "externalId": f"P-{i}"}
        for i in range(100)
    ]  # fmt: skip
    client.post("/api/products/bulk", json=products).raise_for_status()
    orders = [
        {"externalId": f"O-{i}", "orderNumber": f"SO-{i:05d}", "customer": {"customerNumber": "C1"},
         "items": [{"sku": f"SKU-{(i + k) % 100:04d}", "quantity": 1 + k, "price": 9.95 + k}
                   for k in range(4)]}
        for i in range(100)
    ]  # fmt: skip
    client.post("/api/orders/bulk", json=orders).raise_for_status()
    query = {"pageSize": 100}
    pages = {
        name: client.get(f"/api/{name}", params=query).content for name in ("products", "orders")
    }
    long = dict(
        orders[0], items=[{"sku": "SKU-0000", "quantity": 1, "price": "12345678901234.5678"}]
    )
    body = json.dumps([long]).replace('"12345678901234.5678"', "12345678901234.5678")
    client.post("/api/orders/bulk", content=body).raise_for_status()
    pages["orders, one long amount"] = client.get("/api/orders", params=query).content
    return pages


def _median_us(parse: Callable[[bytes], object], body: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        parse(body)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    emulator = Emulator.start(EmulatorSettings(api_keys={KEY: "org_bench"}))
    try:
        with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": KEY}) as client:
            pages = _pages(client)
    finally:
        emulator.stop()
    parsers = {
        "orjson": orjson.loads,
        "loads_exact": loads_exact,
        "json Decimal": partial(json.loads, parse_float=Decimal),
    }
    print(f"median µs per page of 100 records ({args.repeat} parses each)")
    print(f"{'page':<26}{'bytes':>9}" + "".join(f"{name:>15}" for name in parsers))
    for name, body in pages.items():
        cells = "".join(f"{_median_us(p, body, args.repeat):>15,.0f}" for p in parsers.values())
        print(f"{name:<26}{len(body):>9,}{cells}")


if __name__ == "__main__":
    main()
