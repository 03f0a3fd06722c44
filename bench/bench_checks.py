"""What validation costs on a 1,000,000-row catalog: the contract checks (vectorized masks,
always on) and a typical Great Expectations suite (opt-in, run per 50,000-row window).

    python bench/bench_checks.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import JOB, OUT  # noqa: E402
from catalog import generate_catalog  # noqa: E402

from pipelines.entities.products.product_checks import check_products  # noqa: E402
from pipelines.entities.products.product_mapping import map_products  # noqa: E402
from pipelines.extract.feed import SourceOpener  # noqa: E402
from pipelines.jobs.job_file import load_job  # noqa: E402
from pipelines.quality.expectations import ROW_ID, ExpectationSpec, run_suite  # noqa: E402

SUITE = [
    ExpectationSpec(
        expectation="expect_column_values_to_not_be_null", column="price", mostly=0.995
    ),
    ExpectationSpec(
        expectation="expect_column_values_to_be_between",
        column="price",
        min_value=0,
        max_value=100_000,
    ),
    ExpectationSpec(
        expectation="expect_column_values_to_match_regex", column="sku", regex="^SKU-[0-9]+$"
    ),
]
WINDOW = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    source = OUT / f"catalog_{rows}.csv"
    if not source.exists():
        generate_catalog(source, rows)
    job_path = OUT / f"job_checks_{rows}.yml"
    job_path.write_text(JOB.format(path=source))
    job = load_job(job_path)
    _, chunks = SourceOpener(log=lambda _: None).open(job.source)
    mapping = checks = suite = 0.0
    frames, pending = [], 0
    for chunk in chunks:
        started = time.perf_counter()
        table, _ = map_products(chunk, job)
        mapped = time.perf_counter()
        check_products(table, job)
        mapping += mapped - started
        checks += time.perf_counter() - mapped
        frames.append(
            pa.table({"price": table["price"], "sku": table["sku"], ROW_ID: pa.array(chunk.rows)})
        )
        pending += len(table)
        if pending >= WINDOW:
            suite += _suite(frames)
            frames, pending = [], 0
    if frames:
        suite += _suite(frames)
    print(
        f"{rows:,} rows: mapping {mapping:.2f} s; contract checks {checks:.2f} s "
        f"({checks / rows * 1e6:.2f} µs/row); GX suite of {len(SUITE)} expectations "
        f"{suite:.2f} s ({suite / rows * 1e6:.1f} µs/row) in {WINDOW:,}-row windows"
    )


def _suite(frames: list[pa.Table]) -> float:
    frame = pa.concat_tables(frames).to_pandas()
    started = time.perf_counter()
    result = run_suite(frame, SUITE)
    assert all(o.success for o in result.outcomes), [o.description for o in result.outcomes]
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
