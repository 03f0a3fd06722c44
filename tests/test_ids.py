"""`ids` over real HTTP against the emulator: source key → Nymble ids of the records the job
owns, read from the target, as CSV, JSON or JSON lines."""

from __future__ import annotations

import csv
import json

import httpx
import pytest
from click.testing import CliRunner
from helpers import API_KEY, job_for, run_sync
from orders_helpers import CUSTOMERS, ORDERS_CSV, prepare_target, run_entity
from test_adopt import catalog

from pipelines.cli import main
from pipelines.errors import ConfigError
from pipelines.run.commands import IdsSettings, ids

CSV_GOOD = 491  # the sample's good orders (tests/test_orders.py)


def export(job, emulator, tmp_path, out):
    return ids(
        IdsSettings(
            job_path=job,
            target=emulator.base_url,
            state_dir=tmp_path / "state",
            environ={"NYMBLE_API_KEY": API_KEY},
            log=lambda _: None,
            out=out,
        )
    )


def test_products_map_to_their_product_ids_only_for_keys_the_job_owns(emulator, api, tmp_path):
    job = job_for(tmp_path, catalog(tmp_path / "products.csv", 250))
    assert run_sync(job, emulator, tmp_path).created == 250
    by_hand = {"externalId": "HAND-1", "sku": "HAND-1", "name": "made in the admin", "price": 1}
    assert api.put("/api/products", json=by_hand | {"currencyCode": "USD"}).is_success

    found = export(job, emulator, tmp_path, tmp_path / "map.csv")

    with (tmp_path / "map.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert (found.owned, found.written, found.not_found) == (250, 250, 0)
    assert found.target_records == 251  # the product made by hand is read, not written
    listed = {p["externalId"]: p["productId"] for p in _all(api, "/api/products")}
    assert {r["externalId"]: r["productId"] for r in rows} == {
        k: v for k, v in listed.items() if k != "HAND-1"
    }
    assert all(r["sku"] == r["externalId"] and r["productId"] for r in rows)


def test_orders_and_customers_map_as_json_and_json_lines(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    assert run_entity(ORDERS_CSV, emulator, tmp_path).created == CSV_GOOD

    orders = export(ORDERS_CSV, emulator, tmp_path, tmp_path / "orders.json")
    mapped = json.loads((tmp_path / "orders.json").read_text())
    assert orders.written == len(mapped) == CSV_GOOD
    held = {o["externalId"]: (o["id"], o["orderNumber"]) for o in _all(api, "/api/orders")}
    assert {m["externalId"]: (m["id"], m["orderNumber"]) for m in mapped} == held
    assert all(set(m) == {"externalId", "id", "orderNumber"} for m in mapped)

    customers = export(CUSTOMERS, emulator, tmp_path, tmp_path / "customers.jsonl")
    lines = (tmp_path / "customers.jsonl").read_text().splitlines()
    assert customers.written == len(lines) == 300
    assert {tuple(json.loads(line)) for line in lines} == {("customerNumber", "id")}


def test_ids_from_the_command_line_and_a_format_it_cannot_write(emulator, tmp_path):
    job = job_for(tmp_path, catalog(tmp_path / "products.csv", 30))
    run_sync(job, emulator, tmp_path)
    ledger = f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}"
    args = ["ids", str(job), "--target", emulator.base_url, "--ledger", ledger, "--json"]
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "m.csv")], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["written"] == 30
    assert len((tmp_path / "m.csv").read_text().splitlines()) == 31
    with pytest.raises(ConfigError, match=r"\.csv, \.json or \.jsonl"):
        export(job, emulator, tmp_path, tmp_path / "m.parquet")


def _all(api: httpx.Client, route: str) -> list[dict]:
    found, page = [], 1
    while True:
        body = api.get(route, params={"pageSize": 100, "pageNumber": page}).json()
        found += body["data"]
        if page >= body["totalPages"]:
            return found
        page += 1
