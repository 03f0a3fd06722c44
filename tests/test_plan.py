"""`plan` over real HTTP against the emulator: its counts are what the next run does, it
writes nothing, and against the API it recognises products created outside the tool."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import httpx
import sqlalchemy as sa
import yaml
from helpers import API_KEY, run_sync

from pipelines.run.commands import PlanSettings, plan

SAMPLE = Path("sample_data/products.csv")
JOB = Path("mappings/products.yml")


def plan_for(job: Path, emulator, tmp_path: Path, **options):
    settings = PlanSettings(
        job_path=job,
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY},
        log=lambda _: None,
        **options,
    )
    return plan(settings)


def own_feed(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the sample catalog and a job reading it."""
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    spec = yaml.safe_load(JOB.read_text())
    spec["source"]["path"] = str(source)
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    return source, job


def edit_rows(source: Path, prices: dict[int, str], extra: list[list[str]] = ()) -> list[list]:
    """Set price_retail of rows (list index = CSV row - 1) and append rows."""
    with source.open(encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    column = lines[0].index("price_retail")
    for i, value in prices.items():
        lines[i][column] = value
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([*lines, *extra])
    return lines


def writes(emulator) -> int:
    routes = emulator.stats()["requests"]
    return sum(
        sum(by_status.values())
        for route, by_status in routes.items()
        if route.split()[0] in {"POST", "PUT", "PATCH", "DELETE"}
    )


def ledger_rows(tmp_path: Path) -> dict[str, int]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}")
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {n: conn.scalar(sa.text(f"SELECT count(*) FROM {n}")) for n in names}
    finally:
        engine.dispose()


def run_counts(summary) -> tuple[int, int, int, int]:
    return (summary.created, summary.updated, summary.unchanged, summary.rejected)


def plan_counts(p) -> tuple[int, int, int, int]:
    return (p.create, p.update, p.unchanged, p.reject)


def test_plan_counts_are_what_the_next_run_does_and_plan_writes_nothing(emulator, tmp_path):
    source, job = own_feed(tmp_path)
    first = plan_for(job, emulator, tmp_path)
    assert writes(emulator) == 0
    assert plan_counts(first) == (1994, 0, 0, 6) and first.rows_read == 2000
    assert Path(first.rejects_path).exists()
    assert plan_counts(first) == run_counts(run_sync(job, emulator, tmp_path))

    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        original = list(csv.reader(f))
    template = original[2]
    lines = edit_rows(source, {3: "11.11", 501: "22.22"}, extra=[["NEW-1", *template[1:]]])
    before_writes, before_ledger = writes(emulator), ledger_rows(tmp_path)
    second = plan_for(job, emulator, tmp_path)
    assert (writes(emulator), ledger_rows(tmp_path)) == (before_writes, before_ledger)
    assert plan_counts(second) == (1, 2, 1992, 6)
    price = lines[0].index("price_retail")
    diffs = {d.external_id: d.changes for d in second.samples}
    for i, value in {3: "11.11", 501: "22.22"}.items():
        sku = lines[i][0].strip()
        assert diffs[sku]["price"] == [float(original[i][price]), float(value)]
        assert diffs[sku]["prices"][1][0]["price"] == float(value)  # the Retail tier
        assert set(diffs[sku]) == {"price", "prices"}
    assert second.to_dict()["samples"][0]["changes"]
    assert plan_counts(second) == run_counts(run_sync(job, emulator, tmp_path))


def test_plan_sample_is_bounded_and_reads_a_handful_of_products(emulator, tmp_path):
    source, job = own_feed(tmp_path)
    run_sync(job, emulator, tmp_path)
    edit_rows(source, {i: "9.99" for i in range(2, 60)})
    before = emulator.stats()["requests"].get("GET /api/products/{sku}", {})
    result = plan_for(job, emulator, tmp_path, sample=3)
    after = emulator.stats()["requests"].get("GET /api/products/{sku}", {})
    assert len(result.samples) == 3 and result.update >= 50
    assert sum(after.values()) - sum(before.values()) == 3


def direct_body(row: dict[str, str], price: float | None = None) -> dict:
    """The product as the sample job maps it, built by hand (not by the mapper)."""

    def num(text):
        return float(text) if text.strip() else None

    retail = price if price is not None else num(row["price_retail"])
    prices = [
        {"tier": "Retail", "price": retail, "atQuantity": 1},
        {"tier": "Wholesale", "price": num(row["price_wholesale"]), "atQuantity": 1},
        {"tier": "Wholesale", "price": num(row["price_wholesale_50"]), "atQuantity": 50},
    ]
    text = {k: (v.strip() or None) for k, v in row.items()}
    return {
        "externalId": text["sku"],
        "sku": text["sku"],
        "name": text["name"],
        "description": text["description"],
        "category": text["category"],
        "price": retail,
        "quantityOnHand": int(row["qty_on_hand"]),
        "minimumOrderQuantity": int(row["min_order_qty"]) if text["min_order_qty"] else None,
        "weight": num(row["weight"]),
        "weightUnit": text["weight_unit"],
        "upc": text["upc"],
        "currencyCode": "USD",
        "active": text["status"] == "A",
        "prices": [p for p in prices if p["price"] is not None],
        "productAttributes": {"color": text["color"], "size": text["size"]},
    }


def test_against_api_recognises_products_created_outside_the_tool(emulator, api, tmp_path):
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))[10:15]
    bodies = [direct_body(r) for r in rows[:3]] + [direct_body(r, 0.5) for r in rows[3:]]
    response = api.post("/api/products/bulk", json=bodies)
    assert response.json()["createdCount"] == 5
    by_ledger = plan_for(JOB, emulator, tmp_path)
    assert plan_counts(by_ledger) == (1994, 0, 0, 6)
    by_api = plan_for(JOB, emulator, tmp_path, against_api=True)
    assert by_api.basis == "api"
    assert plan_counts(by_api) == (1989, 2, 3, 6)
    diffs = {d.external_id: d.changes for d in by_api.samples}
    assert {k: v["price"] for k, v in diffs.items()} == {
        r["sku"].strip(): [0.5, float(r["price_retail"])] for r in rows[3:]
    }


def test_plan_reads_through_an_injected_client_only(emulator, tmp_path):
    """The reader pages with the §5.4 envelope: a catalog bigger than one page is all read."""
    from pipelines.load.api_reader import ApiReader

    run_sync(JOB, emulator, tmp_path)
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as client:
        reader = ApiReader(client)
        held = [p["externalId"] for page in reader.pages() for p in page]
    assert len(held) == len(set(held)) == 1994
    assert reader.requests >= 20


def test_reads_of_the_org_are_retried_through_429s_and_5xx(emulator, tmp_path):
    """References, plan --against-api and mirror mode read the org; several shards or a busy
    org make those reads meet the rate limit too, and one 429 must not fail the run."""
    from pipelines.emulator.settings import FaultConfig
    from pipelines.load.api_reader import ApiReader

    run_sync(JOB, emulator, tmp_path)
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as client:
        calm = ApiReader(client)
        pages = sum(1 for _ in calm.pages())
        assert pages and calm.requests >= pages
    emulator.set_faults(FaultConfig(throttle_rate=0.2, error_rate=0.1, seed=7))
    waits: list[float] = []
    try:
        with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as client:
            reader = ApiReader(client)
            reader.sleep = waits.append  # no real waiting in a test
            held = [p["externalId"] for page in reader.pages() for p in page]
    finally:
        emulator.set_faults(FaultConfig())
    assert len(held) == len(set(held)) == 1994
    assert waits and reader.requests == calm.requests + len(waits)  # each failure tried again
