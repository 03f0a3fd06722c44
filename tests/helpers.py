"""Small helpers for end-to-end tests: run a job against the emulator, read what it holds."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml

from pipelines.run.commands import SyncSettings, sync
from pipelines.run.summary import RunSummary

API_KEY = "test-key-0123456789"
PRODUCTS_JOB = Path("mappings/products.yml")


def job_for(tmp_path: Path, source: Path, **changes) -> Path:
    """The sample products job reading ``source`` (Parquet by its suffix, else CSV), with
    top-level keys replaced."""
    spec = yaml.safe_load(PRODUCTS_JOB.read_text())
    if source.suffix == ".parquet":
        spec["source"] = {"type": "parquet", "path": str(source)}
    else:
        spec["source"]["path"] = str(source)
    spec.update(changes)
    path = tmp_path / "job.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run_sync(job: Path, emulator, tmp_path: Path, **options) -> RunSummary:
    settings = SyncSettings(
        job_path=job,
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY},
        **{"log": lambda _: None, **options},
    )
    return sync(settings)


def all_products(api: httpx.Client) -> dict[str, dict]:
    """Every product the org holds, active or not, keyed by externalId."""
    products: dict[str, dict] = {}
    for active in ("true", "false"):
        page = 1
        while True:
            body = api.get(
                "/api/products",
                params={
                    "pageSize": 100,
                    "pageNumber": page,
                    "filters[0].field": "Active",
                    "filters[0].operator": "equals",
                    "filters[0].value": active,
                },
            ).json()
            products.update({p["externalId"]: p for p in body["data"]})
            if page >= body["totalPages"]:
                break
            page += 1
    return products


def bulk_requests(emulator) -> int:
    routes = emulator.stats()["requests"].get("POST /api/products/bulk", {})
    return sum(routes.values())
