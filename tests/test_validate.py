"""Contract checks on mapped products: each rule rejects exactly its rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.entities.products.product_checks import check_products, product_warnings
from pipelines.entities.products.product_mapping import map_products
from pipelines.extract.files import read_csv
from pipelines.jobs.job_file import load_job
from pipelines.quality.row_checks import split_rejects

JOB = """
entity: products
source: {type: csv, path: feed.csv}
key: sku
fields:
  sku: sku
  price: price
  currencyCode: currency
  minimumOrderQuantity: moq
  weight: weight
  weightUnit: unit
  active: {column: status, map: {A: true, I: false}}
prices:
  - {tier: Retail, price: price}
"""

HEADER = "sku,price,currency,moq,weight,unit,status\n"
ROWS = {  # spreadsheet row → (line, rule it breaks or None)
    2: ("A1,10.00,USD,1,1.5,lb,A", None),
    3: (",10.00,USD,1,1.5,lb,A", "required"),
    4: ("A3,-1,USD,1,1.5,lb,A", "negative_price"),
    5: ("A4,abc,USD,1,1.5,lb,A", "not_a_number"),
    6: ("A5,10.00,XYZ,1,1.5,lb,A", "unknown_currency"),
    7: ("A6,10.00,EUR,0,1.5,kg,A", "below_minimum"),
    8: ("A7,10.00,CAD,2,-3,lb,A", "negative_weight"),
    9: ("A8,10.00,USD,2.5,1,lb,A", "not_a_number"),
    10: ("A9,10.00,USD,1,1,lb,Z", "unmapped_value"),
    11: ("A/10,10.00,USD,1,1,stone,I", None),
}


@pytest.fixture
def checked(tmp_path: Path):
    (tmp_path / "job.yml").write_text(JOB)
    (tmp_path / "feed.csv").write_text(HEADER + "\n".join(v[0] for v in ROWS.values()) + "\n")
    job = load_job(tmp_path / "job.yml")
    chunk = next(read_csv(tmp_path / "feed.csv"))
    table, failures = map_products(chunk, job)
    failures += check_products(table, job)
    return table, chunk, failures


def test_each_rule_rejects_exactly_its_rows(checked):
    table, chunk, failures = checked
    kept, rows, rejects = split_rejects(table, chunk.rows, failures, source="feed.csv")
    assert {r.row: r.rule for r in rejects} == {
        row: rule for row, (_, rule) in ROWS.items() if rule
    }
    assert rows.tolist() == [2, 11]
    by_rule = {r.rule: r for r in rejects}
    assert (by_rule["unknown_currency"].column, by_rule["unknown_currency"].value) == (
        "currency",
        "XYZ",
    )


def test_warnings_name_unusual_units_and_skus_unusable_in_paths(checked, tmp_path):
    table, chunk, _ = checked
    found = product_warnings(table, load_job(tmp_path / "job.yml"))
    assert {(w.rule, w.column): chunk.rows[w.mask].tolist() for w in found} == {
        ("uncommon_unit", "unit"): [11],
        ("slash_in_sku", "sku"): [11],
    }


@pytest.mark.parametrize("run_limit, memory_keys", [(None, None), (4096, None), (4096, 20_000)])
def test_key_tracker_names_the_first_row_of_every_repeated_key_across_many_chunks(
    run_limit, memory_keys
):
    """Against a plain dict, over enough chunks that the sorted runs merge many times (and,
    with a small run limit, stop merging; with few keys in memory, go to files on disk), with
    repeats inside chunks and across them."""
    import pyarrow as pa

    from pipelines.admit.seen_keys import SeenKeys

    rng = np.random.default_rng(7)
    tracker = SeenKeys("externalId", "sku")
    if run_limit:
        tracker.RUN_LIMIT = run_limit
    if memory_keys:
        tracker.MEMORY_KEYS = memory_keys
    first_seen: dict[int, int] = {}
    next_row = 2
    for _ in range(60):
        size = int(rng.integers(1, 6000))
        keys = rng.integers(1, 200_000, size).astype(np.int64)  # many repeats
        rows = np.arange(next_row, next_row + size, dtype=np.int64)
        next_row += size
        values = pa.array([str(k) for k in keys.tolist()])
        candidates = rng.random(size) > 0.05  # rows already rejected are not candidates
        failure = tracker.check(values, keys, rows, candidates)
        expected = {}
        for i, (key, row) in enumerate(zip(keys.tolist(), rows.tolist(), strict=True)):
            if not candidates[i]:
                continue
            if key in first_seen:
                expected[i] = first_seen[key]
            else:
                first_seen[key] = row
        flagged = {} if failure is None else failure.related
        assert flagged == expected
        if failure is not None:
            assert np.nonzero(failure.mask)[0].tolist() == sorted(expected)
    assert tracker.keys().tolist() == sorted(first_seen)
