"""Quality gates and user expectation suites (Great Expectations, for real)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.quality.expectations import ROW_ID, ExpectationSpec, check_specs, run_suite
from pipelines.quality.gates import GateSettings, evaluate_gates


def gates(**kw):
    return {g.name: g for g in evaluate_gates(settings=GateSettings(), **kw)}


def test_reject_rate_gate_blocks_above_the_limit_only():
    assert not gates(rows_read=1000, rejected=100, last_rows_read=None)["reject_rate"].blocks
    blocked = gates(rows_read=1000, rejected=101, last_rows_read=None)["reject_rate"]
    assert blocked.blocks and "10.1%" in blocked.message and "--override-gate" in blocked.message


def test_a_truncated_export_is_caught_by_the_row_count_gate():
    assert not gates(rows_read=800, rejected=0, last_rows_read=1000)["row_count"].blocks
    truncated = gates(rows_read=799, rejected=0, last_rows_read=1000)["row_count"]
    assert truncated.blocks and "truncated" in truncated.message
    assert not gates(rows_read=10, rejected=0, last_rows_read=None)["row_count"].blocks


def test_a_gate_can_be_overridden_by_name_for_one_run():
    result = {
        g.name: g
        for g in evaluate_gates(
            rows_read=100,
            rejected=0,
            last_rows_read=1000,
            settings=GateSettings(),
            overrides=frozenset({"row_count"}),
        )
    }
    assert not result["row_count"].passed and result["row_count"].overridden
    assert not result["row_count"].blocks


def frame(n=1000, null_every=50):
    price = np.arange(n, dtype=float)
    price[::null_every] = np.nan  # 2% missing
    return pd.DataFrame(
        {ROW_ID: np.arange(2, n + 2), "price": price, "sku": [f"S{i}" for i in range(n)]}
    )


@pytest.mark.parametrize(("mostly", "passes"), [(0.97, True), (0.98, True), (0.985, False)])
def test_mostly_thresholds_decide_pass_or_fail(mostly, passes):
    spec = ExpectationSpec(
        expectation="expect_column_values_to_not_be_null", column="price", mostly=mostly
    )
    outcome = run_suite(frame(), [spec]).outcomes[0]
    assert outcome.success is passes
    assert outcome.row_level and outcome.unexpected_count == 20
    assert outcome.unexpected_rows.tolist() == list(range(2, 1002, 50))  # spreadsheet rows


def test_table_level_expectations_are_gates_not_row_rejects():
    spec = ExpectationSpec(expectation="expect_table_row_count_to_be_between", min_value=2000)
    outcome = run_suite(frame(), [spec]).outcomes[0]
    assert not outcome.success and not outcome.row_level


def test_unknown_expectations_and_unmapped_columns_are_reported_before_reading():
    problems = check_specs(
        [
            ExpectationSpec(expectation="expect_column_values_to_be_purple", column="price"),
            ExpectationSpec(expectation="expect_column_values_to_not_be_null", column="prise"),
        ],
        {"price", "sku"},
    )
    assert "GX has no expectation 'expect_column_values_to_be_purple'" in problems[0]
    assert "column 'prise' is not a mapped field" in problems[1]


def _pending(first_row: int, count: int):
    from pipelines.load.batching import Pending

    rows = np.arange(first_row, first_row + count, dtype=np.int64)
    return Pending([f"P{r}" for r in rows.tolist()], rows, rows, rows, [b"{}"] * count)


def _gatekeeper(tmp_path, expectations=()):
    from pipelines.quality.gatekeeper import Gatekeeper
    from pipelines.run.summary import RunSummary
    from pipelines.transform.rejects import RejectsWriter

    summary = RunSummary(job="j", entity="products", target="local")
    keeper = Gatekeeper(
        settings=GateSettings(),
        expectations=list(expectations),
        summary=summary,
        rejects=RejectsWriter(tmp_path / "rejects.csv"),
        source="feed.csv",
        window_rows=100,
        log=lambda _: None,
    )
    return keeper, summary


def test_without_a_suite_only_the_first_window_is_held_then_the_gate_is_checked_per_chunk(
    tmp_path,
):
    from pipelines.errors import GateFailed

    keeper, summary = _gatekeeper(tmp_path)
    released = []
    for start in range(0, 100, 40):  # 40, 80: held; 120 rows read: the first window goes
        summary.rows_read += 40
        released.append(sum(len(p) for p in keeper.add(_pending(start, 40))))
    assert released == [0, 0, 120]
    summary.rows_read += 40  # after the first window, each chunk goes out at once
    assert sum(len(p) for p in keeper.add(_pending(120, 40))) == 40
    summary.rows_read += 40
    summary.rejected += 40  # 40 of 200 rejected: above the 10% limit, so nothing more goes
    with pytest.raises(GateFailed, match="reject_rate"):
        keeper.add(_pending(160, 40))
