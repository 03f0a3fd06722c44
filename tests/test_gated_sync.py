"""Quality gates in real runs: a broken export stops before it reaches the emulator."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import API_KEY, all_products, bulk_requests, job_for, run_sync

from pipelines.cli import main
from pipelines.errors import GateFailed

SAMPLE = Path("sample_data/products.csv")


def truncate(source: Path, keep_rows: int) -> None:
    lines = source.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    source.write_text("".join(lines[: keep_rows + 1]), encoding="utf-8")


def test_a_truncated_export_stops_before_any_request(emulator, tmp_path):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    path = job_for(tmp_path, source)
    run_sync(path, emulator, tmp_path)
    truncate(source, 1000)  # half the catalog: the export was cut off
    before = bulk_requests(emulator)
    with pytest.raises(GateFailed, match="row_count.*truncated"):
        run_sync(path, emulator, tmp_path)
    assert bulk_requests(emulator) == before


def test_the_row_count_gate_can_be_overridden_for_one_run(emulator, tmp_path):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    path = job_for(tmp_path, source)
    run_sync(path, emulator, tmp_path)
    truncate(source, 1000)
    summary = run_sync(path, emulator, tmp_path, override_gates=("row_count",))
    assert summary.unchanged > 900 and any("overridden" in n for n in summary.notes)


def test_a_column_of_bad_prices_stops_the_run_before_it_sends(emulator, api, tmp_path):
    source = tmp_path / "products.csv"
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    price = rows[0].index("price_retail")
    for row in rows[1:]:
        if len(row) > price:
            row[price] = "n/a"  # the PIM export broke this column
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(GateFailed, match="reject_rate"):
        run_sync(job_for(tmp_path, source), emulator, tmp_path)
    assert bulk_requests(emulator) == 0 and all_products(api) == {}


def test_expectation_rows_are_rejected_and_a_failing_one_is_a_gate(emulator, api, tmp_path):
    allow_some = [
        {
            "expectation": "expect_column_values_to_be_between",
            "column": "price",
            "max_value": 250,
            "mostly": 0.5,
        }
    ]
    summary = run_sync(job_for(tmp_path, SAMPLE, expectations=allow_some), emulator, tmp_path)
    expensive = summary.rejected - 6  # the sample's own 6 bad rows
    assert expensive > 0 and summary.balanced
    assert all(p["price"] <= 250 for p in all_products(api).values())
    too_strict = [
        {
            "expectation": "expect_column_values_to_be_between",
            "column": "price",
            "max_value": 10,
            "mostly": 0.99,
        }
    ]
    before = bulk_requests(emulator)
    with pytest.raises(GateFailed, match="expectations"):
        run_sync(
            job_for(tmp_path, SAMPLE, expectations=too_strict, job="strict"), emulator, tmp_path
        )
    assert bulk_requests(emulator) == before


def test_expectations_judge_every_row_even_when_rows_are_recalled(emulator, tmp_path):
    def price_at_most(limit: float) -> list[dict]:
        return [
            {
                "expectation": "expect_column_values_to_be_between",
                "column": "price",
                "max_value": limit,
                "mostly": 0.99,
            }
        ]

    first = run_sync(job_for(tmp_path, SAMPLE, expectations=price_at_most(1e9)), emulator, tmp_path)
    assert first.created == 1994
    before = bulk_requests(emulator)
    # Unchanged rows are known from the memo now; the suite must still see their records.
    with pytest.raises(GateFailed, match="expectations"):
        run_sync(job_for(tmp_path, SAMPLE, expectations=price_at_most(10)), emulator, tmp_path)
    assert bulk_requests(emulator) == before


def test_validate_sends_nothing_and_reports_the_gates(emulator, tmp_path):
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(
        main, ["validate", "mappings/products.yml", "--target", emulator.base_url]
    )
    assert result.exit_code == 1, result.output  # rows rejected, no gate failed
    assert "gates passed" in result.output and "rejected" in result.output
    assert sum(sum(v.values()) for v in emulator.stats()["requests"].values()) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("sku,price_retail\n" + "".join(f"S{i},x\n" for i in range(50)))
    strict = job_for(
        tmp_path, bad, fields={"sku": "sku", "price": "price_retail"}, prices=[], attributes={}
    )
    result = CliRunner(env=env).invoke(
        main, ["validate", str(strict), "--target", emulator.base_url]
    )
    assert result.exit_code == 4 and "reject_rate FAILED" in result.output
