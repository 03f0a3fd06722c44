"""Invoice reconcile benchmark: the parts `reconcile` adds for an order job's ``invoices:``,
at migration scale, in one process without HTTP (the emulator's invoice list pages by offset,
so millions of invoices through it would measure the emulator).

Setup (not timed): ``--invoices`` invoices of ``--invoices / 2`` orders (some orders billed
twice) as a CSV the way an ERP exports them, and the same invoices as the API's JSON. Timed,
each in a fresh child process, ``--repeat`` times: the order index (keys only), the target's
invoices added to the invoice index 5,000 at a time (as the linkage pass batches the API's
pages; parsing the pages' JSON is timed too) and sorted, then the
source CSV read, checked and matched against it, every invoice agreeing but ``--differ`` of
them. Printed: seconds for the target side and the source side, invoices per second, the
index's bytes per invoice, the child's peak RSS (``ru_maxrss``) and CPU seconds (steadier than
wall time on a shared machine), with medians.

    python bench/bench_invoices.py                                  # 1,000,000 invoices
    python bench/bench_invoices.py --invoices 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

OUT = Path("bench/out/invoices")
STATUSES = {"P": "Paid", "I": "Issued", "PP": "PartiallyPaid", "V": "Voided"}
PAGE = 5_000  # what order_linkage hands the invoice index at once (API pages of 100)


def setup(invoices: int, differ: int) -> tuple[Path, Path]:
    """The source CSV and the target's invoices (JSON lines), built once per size."""
    OUT.mkdir(parents=True, exist_ok=True)
    source, target = OUT / f"invoices_{invoices}.csv", OUT / f"target_{invoices}_{differ}.jsonl"
    if source.exists() and target.exists():
        return source, target
    rng = random.Random(7)
    orders = invoices // 2
    rows = []
    for n in range(invoices):
        order = n % orders + 1
        total = Decimal(rng.randint(100, 10_000_00)) / 100
        code = rng.choice(list(STATUSES))
        balance = total if code == "I" else Decimal("0.00")
        rows.append((order, f"INV-{n + 1:08d}", code, "USD", f"{total:.2f}", f"{balance:.2f}"))
    with source.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["order_id", "invoice_number", "status", "currency", "total", "balance"])
        writer.writerows(rows)
    changed = set(rng.sample(range(invoices), differ))
    with target.open("w", encoding="utf-8") as file:
        for n, (order, number, code, currency, total, balance) in enumerate(rows):
            body = {
                "id": f"id-{n}", "orderId": f"order-{order}", "invoiceNumber": number,
                "status": STATUSES[code], "currencyCode": currency, "total": total,
                "balanceDue": str(Decimal(balance) + (1 if n in changed else 0)),
            }  # fmt: skip
            file.write(json.dumps(body) + "\n")
    return source, target


def job_file(source: Path) -> Path:
    spec = yaml.safe_load(Path("mappings/orders_csv.yml").read_text())
    spec["invoices"] = {
        "source": {"type": "csv", "path": str(source)},
        "key": "order_id", "invoiceNumber": "invoice_number",
        "status": {"column": "status", "map": STATUSES},
        "total": "total", "balanceDue": "balance", "currencyCode": "currency",
    }  # fmt: skip
    path = OUT / "job.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def measure(source: Path, target: Path, invoices: int) -> dict:
    """One timed pass, in this (child) process."""
    from pipelines.extract.feed import SourceOpener
    from pipelines.jobs.job_file import load_job
    from pipelines.run.invoice_index import TargetInvoices
    from pipelines.run.invoice_match import InvoiceMatch, open_invoices
    from pipelines.run.target_index import TargetIndex
    from pipelines.transform.projection import Projection
    from pipelines.transform.serialize import key_hashes

    job = load_job(job_file(source))
    orders = invoices // 2
    found = {"differ": 0}
    adding = [0.0]  # seconds in the invoice index itself (add and sort), not in parsing

    def report(key, kind, field, ours, theirs) -> None:
        found["differ"] += 1

    with ExitStack() as stack:
        started = time.perf_counter()
        index = stack.enter_context(
            TargetIndex(Projection(pa.schema([("externalId", pa.string())])), spill_dir=OUT)
        )
        for first in range(1, orders + 1, 5000):
            index.add([{"externalId": str(k)} for k in range(first, min(first + 5000, orders + 1))])
        index.finish()
        index.seen[:] = True
        held = stack.enter_context(TargetInvoices(balance=True, currency=True, spill_dir=OUT))
        with target.open("rb") as lines:
            page: list[dict] = []
            for line in lines:
                page.append(json.loads(line, parse_float=Decimal))
                if len(page) == PAGE:
                    _add(held, index, page, key_hashes, adding)
                    page = []
            if page:
                _add(held, index, page, key_hashes, adding)
        sorting = time.perf_counter()
        held.finish()
        adding[0] += time.perf_counter() - sorting
        target_s = time.perf_counter() - started
        index_bytes = sum(a.nbytes for a in held.columns.values()) + held.keys.nbytes
        started = time.perf_counter()
        feed = open_invoices(job, SourceOpener(log=lambda _: None), stack)
        match = InvoiceMatch(job, index, held, report, {})
        check = match.run(feed, OUT / "rejects.csv")
        source_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "target_s": target_s, "index_s": adding[0], "source_s": source_s, "agree": check.agree,
        "differ": check.differ, "named": found["differ"],
        "bytes_per_invoice": index_bytes / invoices, "peak_mb": usage.ru_maxrss / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }  # fmt: skip


def _add(held, index, page: list[dict], key_hashes, adding: list[float]) -> None:
    """A page of invoices with their orders' index positions (``orderId`` is ``order-K``)."""
    keys = key_hashes(pa.array([p["orderId"].removeprefix("order-") for p in page]))
    found, _same, pos = index.locate(keys, keys)
    started = time.perf_counter()
    held.add(page, pos, index.keys[pos], found)
    adding[0] += time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--differ", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    source, target = setup(args.invoices, args.differ)
    if args.child:
        print(json.dumps(measure(source, target, args.invoices)))
        return
    runs = []
    for _ in range(args.repeat):
        command = [sys.executable, __file__, "--child", "--invoices", str(args.invoices),
                   "--differ", str(args.differ)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.splitlines()[-1]))
        print(runs[-1])
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rate = args.invoices / med["source_s"]
    print(
        f"{args.invoices:,} invoices, {args.differ:,} differing (medians of {len(runs)}): "
        f"target side {med['target_s']:.1f} s (of which the invoice index {med['index_s']:.1f} s, "
        f"the rest parsing JSON and the order index), source side {med['source_s']:.1f} s "
        f"({rate:,.0f} invoices/s), index {med['bytes_per_invoice']:.0f} bytes/invoice, "
        f"peak RSS {med['peak_mb']:.0f} MB, CPU {med['cpu_s']:.1f} s (the whole child, imports and "
        f"setup included); agree {med['agree']:,.0f}, differ {med['differ']:,.0f}"
    )
    assert np.isclose(med["differ"], args.differ)


if __name__ == "__main__":
    main()
