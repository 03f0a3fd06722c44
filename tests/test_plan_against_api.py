"""`plan --against-api` for customers and orders: what the org holds, read through the API
and seen as the job would send it, so a change made behind the tool's back shows as an
update, field by field, while the ledger still says nothing changed."""

from __future__ import annotations

from pathlib import Path

from helpers import API_KEY
from orders_helpers import CUSTOMERS, ORDERS_CSV, prepare_target, run_entity

from pipelines.run.commands import PlanSettings, plan


def plan_for(job: Path, emulator, tmp_path: Path, **options):
    return plan(
        PlanSettings(
            job_path=job,
            target=emulator.base_url,
            state_dir=tmp_path / "state",
            environ={"NYMBLE_API_KEY": API_KEY},
            log=lambda _: None,
            **options,
        )
    )


def test_a_customer_changed_at_the_target_is_an_update_against_the_api(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    clean = plan_for(CUSTOMERS, emulator, tmp_path, against_api=True)
    assert (clean.basis, clean.unchanged, clean.update, clean.create) == ("api", 300, 0, 0)
    stored = api.get("/api/customers/CUST-0007").json()
    renamed = {**stored, "companyName": "Renamed Behind The Tool's Back"}
    assert api.put("/api/customers", json=renamed).is_success
    by_api = plan_for(CUSTOMERS, emulator, tmp_path, against_api=True)
    assert (by_api.unchanged, by_api.update) == (299, 1)
    [sample] = by_api.samples
    assert sample.external_id == "CUST-0007"
    assert sample.changes == {
        "companyName": ["Renamed Behind The Tool's Back", stored["companyName"]]
    }
    by_ledger = plan_for(CUSTOMERS, emulator, tmp_path)  # the ledger knows of no change
    assert (by_ledger.unchanged, by_ledger.update) == (300, 0)


def test_an_order_line_changed_at_the_target_is_named_by_its_path(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    first = run_entity(ORDERS_CSV, emulator, tmp_path)
    baseline = plan_for(ORDERS_CSV, emulator, tmp_path, against_api=True, sample=0)
    held = api.get("/api/orders/SO-100003").json()
    line = held["items"][1]
    edited = {**held, "items": [*held["items"]]}
    edited["items"][1] = {**line, "quantity": int(line["quantity"]) + 5}
    body = {k: v for k, v in edited.items() if k not in ("id", "createdAt", "updatedAt")}
    assert api.post("/api/orders/bulk", json=[body]).is_success
    after = plan_for(ORDERS_CSV, emulator, tmp_path, against_api=True, sample=50)
    assert after.update == baseline.update + 1
    assert after.unchanged == baseline.unchanged - 1
    assert (after.create, after.reject) == (0, first.rejected)
    diffs = {d.external_id: d.changes for d in after.samples}
    changed = diffs[held["externalId"]]
    assert changed["items[1].quantity"] == [int(line["quantity"]) + 5, int(line["quantity"])]
    assert set(changed) == {"items[1].quantity"}
