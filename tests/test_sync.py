"""The product catalog sync end to end, over real HTTP against the emulator."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import API_KEY, all_products, bulk_requests, job_for, run_sync

SAMPLE = Path("sample_data/products.csv")
JOB = Path("mappings/products.yml")
BAD_ROWS = {
    57: "required",
    311: "negative_price",
    602: "not_a_number",
    988: "duplicate_externalId",
    1375: "not_a_number",
    1730: "malformed_row",
}


def read_sample(path: Path = SAMPLE) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def expected_product(row: dict[str, str]) -> dict:
    """What the API should hold for one good sample row, computed independently of the mapper."""

    def num(text):
        return float(text) if text.strip() else None

    prices = [
        {"tier": "Retail", "price": num(row["price_retail"]), "atQuantity": 1},
        {"tier": "Wholesale", "price": num(row["price_wholesale"]), "atQuantity": 1},
        {"tier": "Wholesale", "price": num(row["price_wholesale_50"]), "atQuantity": 50},
    ]
    return {
        "externalId": row["sku"].strip(),
        "sku": row["sku"].strip(),
        "name": row["name"].strip(),
        "category": row["category"].strip(),
        "price": num(row["price_retail"]),
        "quantityOnHand": int(row["qty_on_hand"]),
        "upc": row["upc"].strip() or None,
        "active": row["status"].strip() == "A",
        "currencyCode": "USD",
        "weightUnit": row["weight_unit"].strip() or None,
        "prices": [p for p in prices if p["price"] is not None],
        "productAttributes": {
            "color": row["color"].strip() or None,
            "size": row["size"].strip() or None,
        },
    }


def good_rows(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    # CSV row numbers start at 2; the malformed row 1730 is absent from DictReader's alignment
    # only in field count, so identify bad rows by number.
    out = {}
    for number, row in enumerate(rows, start=2):
        if number not in BAD_ROWS and None not in row:
            out[row["sku"].strip()] = row
    return out


def test_first_run_creates_every_valid_product_with_all_fields_and_tiers(emulator, api, tmp_path):
    summary = run_sync(JOB, emulator, tmp_path)
    assert summary.balanced
    assert (summary.rows_read, summary.rejected, summary.created) == (2000, 6, 1994)
    held = all_products(api)
    expected = good_rows(read_sample())
    assert set(held) == set(expected)
    for sku in list(expected)[::97]:  # every field of a spread of products
        want, got = expected_product(expected[sku]), held[sku]
        for field, value in want.items():
            if field == "prices":
                assert [
                    {k: p[k] for k in ("tier", "price", "atQuantity")} for p in got[field]
                ] == value, sku
            else:
                assert got.get(field) == value, (sku, field)


def test_upc_leading_zeros_and_non_ascii_names_survive(emulator, api, tmp_path):
    run_sync(JOB, emulator, tmp_path)
    held = all_products(api)
    rows = good_rows(read_sample())
    zero_upcs = [s for s, r in rows.items() if r["upc"].startswith("0")]
    assert zero_upcs and all(held[s]["upc"].startswith("0") for s in zero_upcs)
    accented = [s for s, r in rows.items() if any(ord(c) > 127 for c in r["name"])]
    assert accented and all(held[s]["name"] == rows[s]["name"].strip() for s in accented)


def test_second_run_sends_nothing(emulator, tmp_path):
    run_sync(JOB, emulator, tmp_path)
    before = bulk_requests(emulator)
    second = run_sync(JOB, emulator, tmp_path)
    assert (second.unchanged, second.created + second.updated, second.batches) == (1994, 0, 0)
    assert bulk_requests(emulator) == before


def test_changing_three_rows_sends_exactly_three(emulator, api, tmp_path):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    run_sync(job, emulator, tmp_path)
    with source.open(encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    price = lines[0].index("price_retail")
    changed = {3: "11.11", 501: "22.22", 2000: "33.33"}  # list index = CSV row - 1
    for i, value in changed.items():
        lines[i][price] = value
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(lines)
    second = run_sync(job, emulator, tmp_path)
    assert (second.updated, second.created, second.unchanged) == (3, 0, 1991)
    held = all_products(api)
    for i, value in changed.items():
        assert held[lines[i][0].strip()]["price"] == float(value)


def test_bad_rows_are_reported_with_file_row_column_and_reason(emulator, api, tmp_path):
    rejects = tmp_path / "rejects.csv"
    summary = run_sync(JOB, emulator, tmp_path, rejects_path=rejects)
    assert summary.rejects_path == str(rejects)
    with rejects.open(encoding="utf-8") as f:
        lines = list(csv.DictReader(f))
    assert {int(r["row"]): r["rule"] for r in lines} == BAD_ROWS
    by_row = {int(r["row"]): r for r in lines}
    assert by_row[602]["source"] == str(SAMPLE)
    assert (by_row[602]["column"], by_row[602]["value"]) == ("qty_on_hand", "twelve")
    assert "(row 140)" in by_row[988]["message"]
    assert len(all_products(api)) == 1994


def test_parquet_source_gives_the_same_catalog(emulator, api, tmp_path):
    job = job_for(tmp_path, Path("sample_data/products.parquet"))
    summary = run_sync(job, emulator, tmp_path)
    assert (summary.rows_read, summary.rejected, summary.created) == (1999, 5, 1994)
    assert set(all_products(api)) == set(good_rows(read_sample()))


def test_long_price_list_is_joined_by_key(emulator, api, tmp_path):
    spec = yaml.safe_load(JOB.read_text())
    del spec["prices"]
    spec["price_list"] = {
        "source": {"type": "csv", "path": "sample_data/price_list.csv"},
        "key": "sku",
    }
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    run_sync(job, emulator, tmp_path)
    with open("sample_data/price_list.csv", encoding="utf-8") as f:
        entries = list(csv.DictReader(f))
    held = all_products(api)
    sku = entries[0]["sku"]
    want = sorted(
        (e["tier"], int(e["quantity"]), float(e["price"])) for e in entries if e["sku"] == sku
    )
    got = sorted((p["tier"], p["atQuantity"], p["price"]) for p in held[sku]["prices"])
    assert got == want


def test_a_run_killed_midway_is_completed_by_running_again(tmp_path):
    """Kill -9 a real CLI process mid-run; the rerun leaves exactly the source catalog."""
    from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig

    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(latency_ms=150))
    with Emulator.start(settings) as emu:
        env = {**os.environ, "NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
        cmd = [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            str(JOB),
            "--target",
            emu.base_url,
            "--batch-size",
            "50",
            "--concurrency",
            "2",
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while bulk_requests(emu) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        landed = bulk_requests(emu)
        assert 6 <= landed < 40, "the kill must land mid-run"
        emu.set_faults(FaultConfig())
        rerun = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True)
        assert rerun.returncode == 1, rerun.stderr  # 1: finished, sample rows rejected
        import httpx

        with httpx.Client(base_url=emu.base_url, headers={"x-api-key": API_KEY}) as api:
            held = all_products(api)
        expected = good_rows(read_sample())
        assert set(held) == set(expected)
        assert all(held[s]["price"] == expected_product(r)["price"] for s, r in expected.items())
        assert "interrupted run" in rerun.stderr
        from pipelines.ledger import Ledger
        from pipelines.run.resources import default_ledger_url

        with Ledger.connect(default_ledger_url(tmp_path), create=False) as ledger:
            crashed = ledger.recent_runs(limit=2)[-1]
        assert crashed.status == "crashed"
        # Its heartbeats kept its counts: it shows what it had read, not nothing.
        assert crashed.counts["rows_read"] > 0


@pytest.mark.parametrize("target", ["production", "http://example.com"])
def test_unsafe_targets_are_refused_before_anything_is_read(target, tmp_path):
    from pipelines.errors import TargetError
    from pipelines.run.commands import SyncSettings, sync

    with pytest.raises(TargetError):
        sync(
            SyncSettings(
                job_path=JOB,
                target=target,
                state_dir=tmp_path,
                environ={"NYMBLE_API_KEY": "k"},
                log=lambda _: None,
            )
        )


@pytest.mark.services
def test_a_shared_postgresql_ledger_works_like_the_default(emulator, tmp_path, pg_url):
    first = run_sync(JOB, emulator, tmp_path, ledger_url=pg_url)
    second = run_sync(JOB, emulator, tmp_path / "elsewhere", ledger_url=pg_url)
    assert first.created == 1994
    assert (second.unchanged, second.batches) == (1994, 0)  # state came from PostgreSQL


def test_state_is_scoped_per_target(tmp_path):
    """A run against one emulator must not make a run against another skip anything."""
    from pipelines.emulator import Emulator, EmulatorSettings

    settings = EmulatorSettings(api_keys={API_KEY: "org_test"})
    with Emulator.start(settings) as one, Emulator.start(settings) as two:
        run_sync(JOB, one, tmp_path)
        other = run_sync(JOB, two, tmp_path)
    assert (other.created, other.unchanged) == (1994, 0)
