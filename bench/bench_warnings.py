"""Time what issue 14's warnings and `why` add: product warnings over mapped chunks, and one
record looked up in a ledger of a million outcomes, exactly and in another case.

Products: a deterministic catalog (``bench/catalog.py``) is read and mapped once; then
``product_warnings`` runs over every mapped chunk, against ``map_products`` + ``check_products``
(what preparing a chunk costs anyway). Ledger: 1,000,000 outcomes recorded as 2,000 batches
on SQLite (or ``--url``), then ``record_history`` for an id as stored, the same id lower-cased
(found through the hashes of its case spellings), and a long id lower-cased (its stored ids
read), each the median of ``--repeat`` lookups.

    .venv/bin/python bench/bench_warnings.py [--rows 1000000] [--records 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalog import generate_catalog  # noqa: E402

from pipelines.entities.products.product_checks import (  # noqa: E402
    check_products,
    product_warnings,
)
from pipelines.entities.products.product_mapping import map_products  # noqa: E402
from pipelines.extract.files import read_csv  # noqa: E402
from pipelines.jobs.job_file import load_job  # noqa: E402
from pipelines.ledger import Ledger  # noqa: E402
from pipelines.transform.serialize import key_hashes  # noqa: E402

JOB = {
    "job": "bench",
    "entity": "products",
    "key": "sku",
    "fields": {
        "sku": "sku",
        "name": "name",
        "price": "price_retail",
        "minimumOrderQuantity": "min_order_qty",
        "weight": "weight",
        "weightUnit": "weight_unit",
        "currencyCode": {"value": "USD"},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", default=None, help="ledger URL; default: SQLite in a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        warnings_bench(Path(tmp), args.rows, args.repeat)
        url = args.url or f"sqlite:///{tmp}/ledger.db"
        with Ledger.connect(url) as ledger:
            why_bench(ledger, args.records, args.repeat)


def warnings_bench(tmp: Path, rows: int, repeat: int) -> None:
    source = generate_catalog(tmp / "catalog.csv", rows)
    spec = JOB | {"source": {"type": "csv", "path": str(source)}}
    (tmp / "job.yml").write_text(yaml.safe_dump(spec))
    job = load_job(tmp / "job.yml")
    chunks = list(read_csv(source, block_bytes=1 << 20))
    mapping, warning = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        tables = []
        for chunk in chunks:
            table, _failures = map_products(chunk, job)
            check_products(table, job)
            tables.append(table)
        mapping.append(time.perf_counter() - started)
        started = time.perf_counter()
        flagged = sum(int(w.mask.sum()) for t in tables for w in product_warnings(t, job))
        warning.append(time.perf_counter() - started)
    m, w = statistics.median(mapping), statistics.median(warning)
    print(
        f"product warnings: {rows:,} rows in {len(chunks)} chunks: {w:.3f} s "
        f"(map + check: {m:.3f} s; warnings add {w / m:.1%}); {flagged:,} rows flagged"
    )


def why_bench(ledger: Ledger, records: int, repeat: int) -> None:
    ids = [f"Sku-{i:08d}" for i in range(records)]
    long_id = "Widget-Blue-Large-Europe"  # 19 letters: more spellings than are hashed
    ids[records // 3] = long_id
    keys = key_hashes(pa.array(ids))
    scope = {"job": "bench", "target_id": "T", "target_label": "bench", "entity": "products"}
    run_id = ledger.begin_run(**scope, source="-", full=True)
    for lo in range(0, records, 500):
        part = ids[lo : lo + 500]
        ledger.record_outcomes(
            run_id,
            batch_id=f"{lo:032x}",
            target_id="T",
            entity="products",
            external_ids=part,
            key_hashes=keys[lo : lo + 500],
            content_hashes=np.zeros(len(part), np.int64),
            statuses=["created"] * len(part),
            messages=[None] * len(part),
        )
    exact = ids[records // 2]
    for label, asked, stored in [
        ("as stored", exact, exact),
        ("lower-cased", exact.lower(), exact),
        ("long id, lower-cased", long_id.lower(), long_id),
    ]:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            [event] = ledger.record_history(asked)
            times.append(time.perf_counter() - started)
        assert event.external_id == stored
        print(f"why, {records:,} outcomes, {label:<21} {statistics.median(times) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
