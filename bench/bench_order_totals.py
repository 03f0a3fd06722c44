"""What carrying an ERP's totals costs the per-chunk work of an orders run (map, check, hash,
serialize: ``prepare_orders``): the same orders prepared by a job that maps SKU, quantity and
price only, and by one that also maps subtotal, tax, orderTotal and a percentage discount per
line (turned into lineTotal, rounded half up) with both totals checks. Prints the median of
``--repeat`` runs per job, in order lines per second; then what the emulator's exact decimals
cost per bulk request of 50 orders (parse and store), against orjson's floats.

    python bench/bench_order_totals.py                   # 20,000 orders (~50,000 lines) a chunk
    python bench/bench_order_totals.py --orders 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import timeit
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from pipelines.emulator.exact_json import dumps, loads
from pipelines.entities.orders.grouping import ITEMS, OrderChunk
from pipelines.entities.orders.order_job import parse_orders_job
from pipelines.entities.orders.order_prepare import prepare_orders

CENT = Decimal("0.01")
BASE = {
    "entity": "orders",
    "source": {"type": "sql", "url_env": "X", "query": "q.sql"},
    "key": "order_id",
    "fields": {"orderNumber": "order_number", "customer.customerNumber": "customer_number",
               "currencyCode": "currency", "shippingDetails.shippingTotal": "ship_total"},
    "items": {"sku": "sku", "quantity": "qty", "price": "unit_price"},
}  # fmt: skip
TOTALS = {
    **BASE,
    "fields": {**BASE["fields"], "subtotal": "subtotal", "tax": "tax", "orderTotal": "total"},
    "items": {**BASE["items"], "discount": {"column": "disc_pct", "kind": "percent"},
              "rounding": "half_up"},
}  # fmt: skip


def make_chunk(orders: int, seed: int = 7) -> OrderChunk:
    """Orders as the SQLite sample stores them: money as text, 1–5 lines each."""
    rng = random.Random(seed)
    heads: dict[str, list] = {k: [] for k in (
        "order_id", "order_number", "customer_number", "currency", "ship_total", "subtotal",
        "tax", "total")}  # fmt: skip
    offsets, lines = [0], {k: [] for k in ("sku", "qty", "unit_price", "disc_pct")}
    for order_id in range(1, orders + 1):
        subtotal = Decimal(0)
        for _ in range(rng.randint(1, 5)):
            qty, price = rng.choice([1, 2, 5, 12]), Decimal(rng.randrange(100, 99999)) / 100
            pct = rng.choice(["0", "5", "12.5"])
            total = (qty * price * (100 - Decimal(pct)) / 100).quantize(CENT, ROUND_HALF_UP)
            subtotal += total
            for key, value in zip(lines, (f"SKU-{rng.randrange(2000):05d}", str(qty),
                                          str(price), pct), strict=True):  # fmt: skip
                lines[key].append(value)
        offsets.append(len(lines["sku"]))
        tax = (subtotal * Decimal("0.0825")).quantize(CENT, ROUND_HALF_UP)
        row = (order_id, f"SO-{order_id}", f"C-{order_id % 300}", "USD", "12.00",
               f"{subtotal:.2f}", f"{tax:.2f}", f"{subtotal + tax + 12:.2f}")  # fmt: skip
        for key, value in zip(heads, row, strict=True):
            heads[key].append(value)
    items = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays([pa.array(v) for v in lines.values()], names=list(lines)),
    )
    table = pa.table(heads).append_column(ITEMS, items)
    return OrderChunk(table, np.arange(1, orders + 1), "bench")


def median_seconds(raw: dict, chunk: OrderChunk, repeat: int) -> float:
    job = parse_orders_job(raw, Path("bench.yml"))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        prepared = prepare_orders(chunk, job)
        times.append(time.perf_counter() - start)
    assert prepared.passed.all(), [(f.rule, f.message) for f in prepared.failures]
    return statistics.median(times)


def emulator_json(chunk: OrderChunk, repeat: int) -> None:
    """A bulk body of 50 orders as the tool sends them (with totals), parsed and stored."""
    prepared = prepare_orders(chunk, parse_orders_job(TOTALS, Path("bench.yml")))
    body = b"[" + b",".join(prepared.bodies[:50]) + b"]"
    lines = sum(len(o["items"]) for o in orjson.loads(body))
    for name, load, dump in (("orjson floats", orjson.loads, orjson.dumps),
                             ("exact decimals", loads, dumps)):  # fmt: skip
        runs = timeit.repeat(lambda: dump(load(body)), number=200, repeat=repeat)  # noqa: B023
        micros = statistics.median(runs) / 200 * 1e6
        print(f"  {name:<28} {micros:6.0f} µs a request  {micros / lines:5.2f} µs a line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    chunk = make_chunk(args.orders)
    lines = chunk.line_count
    print(f"{args.orders:,} orders, {lines:,} lines; median of {args.repeat}")
    for name, raw in (("sku/quantity/price", BASE), ("+ totals, discount, checks", TOTALS)):
        seconds = median_seconds(raw, chunk, args.repeat)
        print(f"  {name:<28} {seconds:6.3f} s  {lines / seconds:>12,.0f} lines/s")
    print("emulator, one bulk request of 50 orders (parse and store)")
    emulator_json(chunk, args.repeat)


if __name__ == "__main__":
    main()
