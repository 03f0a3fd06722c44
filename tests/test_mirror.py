"""Mirror mode over real HTTP against the emulator: products this job synced that vanish from
a complete feed are deactivated (never deleted), within a cap decided before any send."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from helpers import all_products, bulk_requests, run_sync
from test_plan import plan_for

from pipelines.errors import EXIT_GATE, GateFailed

SAMPLE = Path("sample_data/products.csv")
JOB = Path("mappings/products.yml")


def mirror_job(tmp_path: Path, **changes) -> tuple[Path, Path]:
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    spec = yaml.safe_load(JOB.read_text())
    spec["source"]["path"] = str(source)
    spec.update({"missing": "deactivate", **changes})
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    return source, job


def drop_rows(source: Path, keep) -> list[str]:
    """Keep the data lines for which ``keep(i)`` holds (i counts data lines from 0); return
    the SKUs of the good rows dropped. Every sample row is one line."""
    lines = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    header, data = lines[0], lines[1:]
    kept = [line for i, line in enumerate(data) if keep(i)]
    dropped = [line for i, line in enumerate(data) if not keep(i)]
    source.write_text(header + "".join(kept), encoding="utf-8")
    still = {row[0].strip() for row in csv.reader(kept)}
    return sorted({row[0].strip() for row in csv.reader(dropped)} - still)


def test_vanished_products_are_deactivated_and_others_kept(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    first = run_sync(job, emulator, tmp_path)
    assert (first.created, first.deactivated) == (1994, 0)
    active_before = {k: p["active"] for k, p in all_products(api).items()}
    gone = drop_rows(source, lambda i: i not in (0, 1, 500))
    assert plan_for(job, emulator, tmp_path).deactivate == 3

    second = run_sync(job, emulator, tmp_path)
    assert (second.deactivated, second.created, second.updated) == (3, 0, 0)
    assert second.balanced and second.rows_read == 1997
    assert second.status == "partial"  # the sample's bad rows, not the deactivations
    held = all_products(api)
    assert len(held) == 1994  # deactivated, never deleted
    for sku in gone:
        assert held[sku]["active"] is False
        one = api.get(f"/api/products/{quote(sku, safe='')}")
        assert one.status_code == 200 and one.json()["name"]  # other fields kept (§6.7)
    assert {k: p["active"] for k, p in held.items() if k not in gone} == {
        k: v for k, v in active_before.items() if k not in gone
    }

    requests = bulk_requests(emulator)
    third = run_sync(job, emulator, tmp_path)  # already deactivated: nothing to send
    assert (third.deactivated, third.unchanged, bulk_requests(emulator)) == (0, 1991, requests)

    shutil.copy(SAMPLE, source)  # they come back: sent again in full
    back = run_sync(job, emulator, tmp_path)
    assert (back.updated, back.deactivated) == (3, 0)
    assert all(all_products(api)[sku]["active"] == active_before[sku] for sku in gone)


def test_mass_deactivation_is_refused_before_anything_is_sent(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    run_sync(job, emulator, tmp_path)
    held = all_products(api)
    gone = [sku for sku in drop_rows(source, lambda i: i % 5 >= 2) if sku in held]  # 40%
    requests = bulk_requests(emulator)
    with pytest.raises(GateFailed) as refused:  # decided before the feed is even read
        run_sync(job, emulator, tmp_path)
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_GATE == 4
    assert f"{len(gone):,} of the 1,994 products" in message
    assert "--allow-mass-deactivate" in message and "max_deactivate_pct" in message
    assert bulk_requests(emulator) == requests
    assert all_products(api) == held  # nothing changed at all

    allowed = run_sync(
        job, emulator, tmp_path, allow_mass_deactivate=True, override_gates=("row_count",)
    )
    assert allowed.deactivated == len(gone)
    held = all_products(api)
    assert all(held[sku]["active"] is False for sku in gone)


def test_a_subset_run_with_partial_never_deactivates(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    run_sync(job, emulator, tmp_path)
    subset = tmp_path / "subset.csv"
    drop_rows(subset, lambda i: i < 50)
    requests = bulk_requests(emulator)
    summary = run_sync(job, emulator, tmp_path, source=subset, partial=True)
    assert (summary.deactivated, summary.unchanged) == (0, 50)
    assert any("mirror mode skipped" in note for note in summary.notes)
    assert bulk_requests(emulator) == requests
    assert plan_for(job, emulator, tmp_path, source=subset, partial=True).deactivate == 0


def test_keep_is_the_default_and_leaves_vanished_products_alone(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path, missing="keep")
    run_sync(job, emulator, tmp_path)
    before = {k: p["active"] for k, p in all_products(api).items()}
    drop_rows(source, lambda i: i >= 1000)
    summary = run_sync(job, emulator, tmp_path, override_gates=("row_count",))  # shrank on purpose
    assert summary.deactivated == 0
    assert {k: p["active"] for k, p in all_products(api).items()} == before


def test_only_products_this_job_synced_are_deactivated(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    run_sync(job, emulator, tmp_path)
    other = [{"externalId": "OTHER-1", "sku": "OTHER-1", "name": "Not ours", "active": True}]
    api.post("/api/products/bulk", json=other)
    drop_rows(source, lambda i: i != 7)
    summary = run_sync(job, emulator, tmp_path)
    assert summary.deactivated == 1
    assert all_products(api)["OTHER-1"]["active"] is True
