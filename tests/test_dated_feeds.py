"""Dated feeds over real HTTP against the emulator: a job names a pattern
(``exports/products_*.csv``) and each run reads its newest match, chosen once per run, named
in the ledger, and judged by every guard a fixed path is."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from helpers import API_KEY, PRODUCTS_JOB, all_products, bulk_requests, run_sync
from orders_helpers import ORDERS_CSV, edited_job, prepare_target, run_entity

from pipelines.errors import EXIT_CONFIG, EXIT_GATE, GateFailed, JobFileError, SourceError
from pipelines.extract.feed import SourceOpener
from pipelines.jobs.job_file import load_job
from pipelines.ledger import Ledger
from pipelines.run.commands import PlanSettings, SyncSettings, plan, validate
from pipelines.run.resources import default_ledger_url

SAMPLE = Path("sample_data/products.csv")
SAMPLE_PARQUET = Path("sample_data/products.parquet")
ROWS = 2000  # data lines of the sample; 1,994 distinct valid products
PRODUCTS = 1994


def export(directory: Path, day: str, rows: int = ROWS, *, suffix: str = "csv") -> Path:
    """The nightly export of ``day`` (``20261202``): the first ``rows`` sample rows."""
    directory.mkdir(exist_ok=True)
    path = directory / f"products_{day}.{suffix}"
    if suffix == "parquet":
        pq.write_table(pq.read_table(SAMPLE_PARQUET).slice(0, rows), path)
        return path
    lines = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return path


def dated_job(tmp_path: Path, source: dict, **changes) -> Path:
    """The sample products job reading ``source`` (a pattern), with top-level keys replaced."""
    spec = yaml.safe_load(PRODUCTS_JOB.read_text())
    spec.update({"source": source, **changes})
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    return job


def csv_pattern(tmp_path: Path, **keys) -> dict:
    return {"type": "csv", "path": str(tmp_path / "exports" / "products_*.csv"), **keys}


def choices(logged: list[str]) -> list[str]:
    """The logged choices of a pattern's file (not the encoding lines, "x.csv: reading as")."""
    return [m for m in logged if "*" in m.partition(": reading ")[0] and ": reading " in m]


def set_mtime(path: Path, seconds: int) -> None:
    os.utime(path, (seconds, seconds))


def runs(tmp_path: Path):
    """The ledger's runs of the sample job, newest first."""
    with Ledger.connect(default_ledger_url(tmp_path / "state")) as ledger:
        return ledger.recent_runs(job="products")


def settings(job: Path, emulator, tmp_path: Path, log, **options) -> PlanSettings:
    return PlanSettings(
        job_path=job,
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY},
        log=log,
        **options,
    )


def test_a_pattern_reads_the_newest_file_by_name_and_the_ledger_names_it(emulator, tmp_path):
    exports = tmp_path / "exports"
    oldest = export(exports, "20261130", 1500)
    export(exports, "20261201", 1800)
    newest = export(exports, "20261202")
    set_mtime(oldest, 2_000_000_000)  # modified last, yet first by name: name order decides
    logged: list[str] = []
    summary = run_sync(
        dated_job(tmp_path, csv_pattern(tmp_path)), emulator, tmp_path, log=logged.append
    )
    assert (summary.rows_read, summary.created) == (ROWS, PRODUCTS)
    pattern = exports / "products_*.csv"
    assert f"{pattern}: reading {newest} (newest of 3 by name)" in logged
    assert [r.source for r in runs(tmp_path)] == [str(newest)]


def test_pick_mtime_reads_the_last_modified_file_even_if_its_name_sorts_first(emulator, tmp_path):
    exports = tmp_path / "exports"
    renamed = export(exports, "A_resent", 1500)  # sorts first by name
    late = export(exports, "20261202")
    set_mtime(late, 1_900_000_000)
    set_mtime(renamed, 2_000_000_000)
    logged: list[str] = []
    job = dated_job(tmp_path, csv_pattern(tmp_path, pick="mtime"))
    summary = run_sync(job, emulator, tmp_path, log=logged.append)
    assert summary.rows_read == 1500
    assert any(f"reading {renamed} (newest of 2 by modification time)" in m for m in logged)
    assert runs(tmp_path)[0].source == str(renamed)


def test_a_parquet_pattern_reads_the_newest_file(emulator, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201", 900, suffix="parquet")
    newest = export(exports, "20261202", suffix="parquet")
    job = dated_job(tmp_path, {"type": "parquet", "path": str(exports / "products_*.parquet")})
    summary = run_sync(job, emulator, tmp_path)
    assert summary.rows_read == pq.read_metadata(SAMPLE_PARQUET).num_rows
    assert runs(tmp_path)[0].source == str(newest)


def test_a_truncated_nightly_export_is_refused_by_the_row_count_gate(emulator, api, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201")
    job = dated_job(tmp_path, csv_pattern(tmp_path))
    run_sync(job, emulator, tmp_path)
    held, requests = all_products(api), bulk_requests(emulator)

    half = export(exports, "20261202", ROWS // 2)  # the PIM's export broke off halfway
    with pytest.raises(GateFailed, match="row_count") as refused:
        run_sync(job, emulator, tmp_path)
    assert refused.value.exit_code == EXIT_GATE == 4
    with pytest.raises(GateFailed, match="row_count"):  # named on the command line: alike
        run_sync(job, emulator, tmp_path, source=half)
    assert bulk_requests(emulator) == requests
    assert all_products(api) == held
    assert [(r.status, r.source) for r in runs(tmp_path)[:2]] == [("gated", str(half))] * 2


def test_partial_reads_a_small_file_but_skips_the_guards_with_a_note(emulator, api, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201")
    job = dated_job(tmp_path, csv_pattern(tmp_path), missing="deactivate", max_deactivate_pct=100)
    run_sync(job, emulator, tmp_path)
    held = all_products(api)
    half = export(exports, "20261202", ROWS // 2)
    with pytest.raises(GateFailed, match="row_count"):  # mirror mode's cap allows it all
        run_sync(job, emulator, tmp_path)

    summary = run_sync(job, emulator, tmp_path, source=half, partial=True)
    assert (summary.rows_read, summary.deactivated, summary.status) == (ROWS // 2, 0, "partial")
    assert any("mirror mode skipped" in note for note in summary.notes)
    assert all_products(api) == held  # the half it read was unchanged; nothing deactivated
    assert runs(tmp_path)[0].source == str(half)


def test_partial_notes_that_the_row_count_gate_was_skipped(emulator, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201")
    job = dated_job(tmp_path, csv_pattern(tmp_path))  # no mirror mode: no mirror note either
    run_sync(job, emulator, tmp_path)
    half = export(exports, "20261202", ROWS // 2)
    summary = run_sync(job, emulator, tmp_path, source=half, partial=True)
    assert any("row-count" in note or "row_count" in note for note in summary.notes)


def test_a_partial_run_is_not_the_baseline_of_the_row_count_gate(emulator, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201")
    job = dated_job(tmp_path, csv_pattern(tmp_path))
    run_sync(job, emulator, tmp_path)
    subset = export(tmp_path / "subset", "few", 100)
    run_sync(job, emulator, tmp_path, source=subset, partial=True)
    export(exports, "20261202", ROWS // 2)  # truncated: half of the last whole feed
    with pytest.raises(GateFailed, match="row_count"):
        run_sync(job, emulator, tmp_path)


def test_mirror_mode_deactivates_what_the_newest_file_lacks(emulator, api, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201")
    job = dated_job(tmp_path, csv_pattern(tmp_path), missing="deactivate", max_deactivate_pct=100)
    run_sync(job, emulator, tmp_path)
    day2 = export(exports, "20261202", ROWS - 50)  # 50 rows short: within the row-count gate
    gone = set(all_products(api)) - _skus(day2)
    assert gone

    summary = run_sync(job, emulator, tmp_path)
    assert summary.deactivated == len(gone)
    held = all_products(api)
    assert all(held[sku]["active"] is False for sku in gone)
    assert runs(tmp_path)[0].source == str(day2)


def test_a_file_landing_mid_run_is_left_for_the_next_run(emulator, api, tmp_path):
    """Mirror mode opens the feed twice (keys first); both reads are of the file chosen at
    the first, though a newer one lands in between."""
    exports = tmp_path / "exports"
    export(exports, "20261201")
    job = dated_job(tmp_path, csv_pattern(tmp_path), missing="deactivate", max_deactivate_pct=100)
    run_sync(job, emulator, tmp_path)
    day2 = export(exports, "20261202", ROWS - 50)
    reads: list[str] = []

    def log(message: str) -> None:
        if choices([message]):
            reads.append(message)
            export(exports, "20261203")  # lands as soon as day 2 is chosen

    summary = run_sync(job, emulator, tmp_path, log=log)
    assert len(reads) == 1 and str(day2) in reads[0]
    assert summary.rows_read == ROWS - 50
    assert summary.deactivated == len(set(all_products(api)) - _skus(day2))
    assert runs(tmp_path)[0].source == str(day2)
    assert run_sync(job, emulator, tmp_path).updated == summary.deactivated  # day 3 next


def test_a_pattern_that_matches_nothing_names_it_and_the_directory(emulator, tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / ".products_20261202.csv").write_text("sku\n")  # a transfer's temp
    job = dated_job(tmp_path, csv_pattern(tmp_path))
    with pytest.raises(SourceError) as err:
        run_sync(job, emulator, tmp_path)
    assert err.value.exit_code == EXIT_CONFIG == 2
    pattern = tmp_path / "exports" / "products_*.csv"
    assert str(err.value) == f"{pattern}: no file matches this pattern in {tmp_path / 'exports'}"
    assert bulk_requests(emulator) == 0

    missing = dated_job(tmp_path, {"type": "csv", "path": str(tmp_path / "nope" / "*.csv")})
    with pytest.raises(SourceError, match=f"{tmp_path / 'nope'} is not a directory"):
        validate(settings(missing, emulator, tmp_path, lambda _: None))


def test_a_relative_pattern_matches_from_the_current_directory(emulator, tmp_path, monkeypatch):
    export(tmp_path / "exports", "20261202")
    job = dated_job(tmp_path, {"type": "csv", "path": "exports/products_*.csv"})
    (tmp_path / "cron").mkdir()
    monkeypatch.chdir(tmp_path / "cron")  # started from the wrong directory: it says where
    with pytest.raises(SourceError, match=f"{tmp_path / 'cron' / 'exports'} is not a directory"):
        run_sync(job, emulator, tmp_path)
    monkeypatch.chdir(tmp_path)
    logged: list[str] = []
    run_sync(job, emulator, tmp_path, log=logged.append)
    assert "exports/products_*.csv: reading exports/products_20261202.csv (the only match)" in (
        logged
    )
    assert runs(tmp_path)[0].source == "exports/products_20261202.csv"


def test_plan_and_validate_pick_the_file_a_run_reads(emulator, tmp_path):
    exports = tmp_path / "exports"
    export(exports, "20261201", 1500)
    newest = export(exports, "20261202", 1800)
    job = dated_job(tmp_path, csv_pattern(tmp_path))
    logs: dict[str, list[str]] = {"plan": [], "validate": [], "run": []}
    planned = plan(settings(job, emulator, tmp_path, logs["plan"].append))
    checked = validate(settings(job, emulator, tmp_path, logs["validate"].append))
    ran = run_sync(job, emulator, tmp_path, log=logs["run"].append)
    assert planned.rows_read == checked.summary.rows_read == ran.rows_read == 1800
    chosen = {tuple(choices(log)) for log in logs.values()}
    assert chosen == {(f"{exports / 'products_*.csv'}: reading {newest} (newest of 2 by name)",)}


def test_source_replaces_the_pattern_outright(emulator, tmp_path):
    export(tmp_path / "exports", "20261202")
    elsewhere = export(tmp_path / "elsewhere", "resent")
    logged: list[str] = []
    job = dated_job(tmp_path, csv_pattern(tmp_path))
    run_sync(job, emulator, tmp_path, source=elsewhere, log=logged.append)
    assert not choices(logged)  # the pattern is not even matched
    assert runs(tmp_path)[0].source == str(elsewhere)


def test_an_orders_job_reads_the_newest_headers_and_lines(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    exports = tmp_path / "erp"
    exports.mkdir()
    for day in ("20261201", "20261202"):
        shutil.copy("sample_data/orders.csv", exports / f"orders_{day}.csv")
        shutil.copy("sample_data/order_lines.csv", exports / f"lines_{day}.csv")
    (exports / "lines_20261201.csv").write_text("order_id,sku,qty,unit_price\n")  # stale
    job = edited_job(
        tmp_path,
        ORDERS_CSV,
        source__path=str(exports / "orders_*.csv"),
        items__source__path=str(exports / "lines_*.csv"),
    )
    summary = run_entity(job, emulator, tmp_path)
    assert (summary.rows_read, summary.created) == (500, 491)  # as test_orders reads them
    with Ledger.connect(default_ledger_url(tmp_path / "state")) as ledger:
        assert ledger.recent_runs(job="orders_csv")[0].source == str(
            exports / "orders_20261202.csv"
        )


def test_a_price_list_pattern_reads_the_newest_list(emulator, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    shutil.copy("sample_data/price_list.csv", lists / "prices_20261202.csv")
    spec = yaml.safe_load(PRODUCTS_JOB.read_text())
    del spec["prices"]
    spec["price_list"] = {
        "source": {"type": "csv", "path": str(lists / "prices_*.csv")},
        "key": "sku",
    }
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    spec["price_list"]["source"]["path"] = str(lists / "prices_20261202.csv")
    plain = tmp_path / "plain.yml"
    plain.write_text(yaml.safe_dump(spec))
    expected = validate(settings_for(plain, emulator, tmp_path)).summary.skipped  # to send
    assert run_sync(job, emulator, tmp_path).created == expected > 0


def test_the_opener_chooses_once_per_run_for_lines_and_price_lists_alike(tmp_path):
    """Sources besides the main one (order lines, price lists) go through the same choice;
    ``--source`` replaces only the main one, and ``pick`` beside a plain path is ignored."""
    exports = tmp_path / "exports"
    first = export(exports, "20261201", 10)
    job = load_job(dated_job(tmp_path, csv_pattern(tmp_path)))
    lines = job.source  # the same spec, read as a side source
    override = export(tmp_path / "elsewhere", "x", 5)
    opener = SourceOpener(override=override, log=lambda _: None)
    assert opener.path(job.source) == override
    assert opener.path(lines, main=False) == first
    export(exports, "20261202", 20)
    assert opener.name(lines, main=False) == str(first)  # chosen for the whole run
    assert opener.size(lines, main=False) == 11
    fresh = SourceOpener(log=lambda _: None)  # the next run
    assert fresh.path(lines, main=False) == exports / "products_20261202.csv"

    plain = load_job(dated_job(tmp_path, {"type": "csv", "path": str(first), "pick": "mtime"}))
    assert SourceOpener(log=lambda _: None).path(plain.source) == first


def test_pick_is_name_or_mtime(tmp_path):
    with pytest.raises(JobFileError, match=r"source.pick: Input should be 'name' or 'mtime'"):
        load_job(dated_job(tmp_path, csv_pattern(tmp_path, pick="size")))
    assert load_job(dated_job(tmp_path, csv_pattern(tmp_path))).source.pick == "name"


def _skus(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row["sku"].strip() for row in csv.DictReader(f)}


def settings_for(job: Path, emulator, tmp_path: Path) -> SyncSettings:
    return SyncSettings(
        job_path=job,
        target=emulator.base_url,
        state_dir=tmp_path / "validate-state",
        environ={"NYMBLE_API_KEY": API_KEY},
        log=lambda _: None,
    )
