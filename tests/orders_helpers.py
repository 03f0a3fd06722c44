"""Shared by test_orders.py and test_customers.py: run entity jobs against the emulator."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import httpx
import yaml
from helpers import API_KEY, run_sync

from pipelines.run.commands import SyncSettings
from pipelines.run.commands import sync as sync_entity
from pipelines.run.summary import RunSummary

ROOT = Path(__file__).resolve().parents[1]
ERP = ROOT / "sample_data" / "erp.sqlite"
ORDERS_CSV = Path("mappings/orders_csv.yml")
ORDERS_SQL = Path("mappings/orders_sql.yml")
CUSTOMERS = Path("mappings/customers.yml")
PRODUCTS = Path("mappings/products.yml")


def run_entity(
    job: Path, emulator, tmp_path: Path, *, url: str | None = None, **options
) -> RunSummary:
    environ = {"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": url or f"sqlite:///{ERP}"}
    settings = SyncSettings(
        job_path=job,
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ=environ,
        log=lambda _: None,
        **options,
    )
    return sync_entity(settings)


def prepare_target(emulator, tmp_path: Path) -> None:
    """Products and customers first, as a migration does."""
    assert run_sync(PRODUCTS, emulator, tmp_path).created == 1994
    assert run_entity(CUSTOMERS, emulator, tmp_path).created == 300


def edited_job(tmp_path: Path, base: Path, name: str = "job.yml", **changes) -> Path:
    spec = yaml.safe_load(base.read_text())
    for dotted, value in changes.items():
        node = spec
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def order(api: httpx.Client, number: str) -> dict | None:
    """The order as the API returns it, numbers parsed as Decimal (their exact text)."""
    response = api.get(f"/api/orders/{number}")
    if response.status_code == 404:
        return None
    return json.loads(response.text, parse_float=Decimal)


def order_count(api: httpx.Client) -> int:
    return api.get("/api/orders", params={"pageSize": 1}).json()["totalRecords"]


def rejects_by_id(path: str | None) -> dict[str, dict]:
    with open(path, encoding="utf-8", newline="") as file:
        return {row["external_id"]: row for row in csv.DictReader(file)}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))
