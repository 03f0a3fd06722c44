"""Time the ledger's hot paths, a lookup and compaction on a SQLite file.

Records 1,000,000 outcomes in 500-record ``record_outcomes`` calls (as the loader does, one
call per acknowledged batch), loads them back with ``acked_state``, looks one record up
with ``record_history``, then records two more full runs and times ``compact`` folding the
first two (``keep_runs=1``).

    .venv/bin/python bench/bench_ledger.py [--rows 1000000] [--batch 500] [--url sqlite:///...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.ledger import Ledger  # noqa: E402
from pipelines.transform.serialize import key_hashes  # noqa: E402

TARGET = {"target_id": "T", "entity": "product"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--url", default=None, help="default: a SQLite file in a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/ledger.db"
        with Ledger.connect(url) as ledger:
            run(ledger, args.rows, args.batch)


def run(ledger: Ledger, rows: int, batch: int) -> None:
    ids = [f"SKU-{i:08d}" for i in range(rows)]
    keys = key_hashes(pa.array(ids))
    rng = np.random.default_rng(42)
    contents = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, rows, dtype=np.int64)
    # Every 100th record fails, so acked_state has something to leave out.
    statuses = ["failed" if i % 100 == 0 else "created" for i in range(rows)]
    messages = ["HTTP 422: bad price" if s == "failed" else None for s in statuses]

    recorded = full_run(ledger, ids, keys, contents, statuses, messages, batch)
    print(
        f"record_outcomes: {rows:,} records in {batch}-record calls: {recorded:.2f} s "
        f"({recorded / (rows / batch) * 1e6:.0f} µs a call)"
    )
    started = time.perf_counter()
    acked_keys, _acked_contents = ledger.acked_state(**TARGET)
    loaded = time.perf_counter() - started
    assert len(acked_keys) == rows - (rows + 99) // 100
    assert bool(np.all(np.diff(acked_keys) > 0))
    print(f"acked_state:     {len(acked_keys):,} keys loaded and sorted: {loaded:.2f} s")

    started = time.perf_counter()
    [event] = ledger.record_history(ids[rows // 2], target_id="T")
    print(f"record_history:  one id: {(time.perf_counter() - started) * 1000:.1f} ms")
    assert event.external_id == ids[rows // 2]

    updated = ["updated"] * rows
    for _ in range(2):  # two more full runs: every record sent again, now all acknowledged
        full_run(ledger, ids, keys, contents + 1, updated, [None] * rows, batch)
    started = time.perf_counter()
    folded = ledger.compact(**TARGET, keep_runs=1)
    compacted = time.perf_counter() - started
    print(f"compact:         3 full runs, {folded:,} rows of the first 2 folded: {compacted:.2f} s")
    started = time.perf_counter()
    after, _ = ledger.acked_state(**TARGET)
    print(
        f"acked_state after compaction: {len(after):,} keys: {time.perf_counter() - started:.2f} s"
    )


def full_run(ledger, ids, keys, contents, statuses, messages, batch) -> float:
    """Seconds to record one run's outcomes, ``batch`` records a call."""
    run_id = ledger.begin_run(job="bench", target_label="bench", source="-", full=True, **TARGET)
    started = time.perf_counter()
    for lo in range(0, len(ids), batch):
        hi = lo + batch
        ledger.record_outcomes(
            run_id,
            batch_id=f"{lo:032x}",
            external_ids=ids[lo:hi],
            key_hashes=keys[lo:hi],
            content_hashes=contents[lo:hi],
            statuses=statuses[lo:hi],
            messages=messages[lo:hi],
            **TARGET,
        )
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
