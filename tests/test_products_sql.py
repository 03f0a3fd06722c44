"""A products job reading its catalog from SQL (SQLite, PostgreSQL, MariaDB) syncs, sends
deltas and mirrors exactly as the same job reading a CSV file does: each twin syncs to its own
emulator over real HTTP, and the two targets must end up holding the same records."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from helpers import API_KEY, all_products

from pipelines.emulator import Emulator, EmulatorSettings
from pipelines.run.commands import PlanSettings, SyncSettings, plan, sync
from pipelines.run.plan import Plan
from pipelines.run.summary import RunSummary

ROWS = 300
START = datetime(2025, 3, 1, 8, 0)
LATER = datetime(2025, 6, 1, 12, 0)  # after every row's updated_at
COLUMNS = ("sku", "name", "price", "status", "updated_at")
QUERY = "SELECT sku, name, price, status, updated_at FROM catalog ORDER BY sku"
WATERMARK_QUERY = (
    "SELECT sku, name, price, status, updated_at FROM catalog\n"
    "WHERE updated_at >= :watermark_from OR :watermark_from IS NULL\n"
    "ORDER BY sku"
)
# The mapping both twins share; only the source differs.
MAPPING = {
    "entity": "products",
    "key": "sku",
    "fields": {
        "sku": "sku",
        "name": "name",
        "price": "price",
        "currencyCode": {"value": "USD"},
        "active": {"column": "status", "map": {"A": True, "I": False}},
    },
}
SERVER_FIELDS = {"productId", "organizationId", "createdAt", "updatedAt"}


def catalog() -> list[dict]:
    """ROWS products, the same on every run: every tenth inactive, some non-ASCII names,
    prices with 0, 1 and 2 significant decimals, updated_at one minute apart."""
    rows = []
    for i in range(1, ROWS + 1):
        name = f"Nøkkel — Brass Fitting {i}" if i % 7 == 0 else f"Steel Bracket {i}"
        rows.append(
            {
                "sku": f"SKU-{i:04d}",
                "name": name,
                "price": Decimal(i * 173 % 9_000) / 100 + 1,
                "status": "I" if i % 10 == 0 else "A",
                "updated_at": START + timedelta(minutes=i),
            }
        )
    return rows


# --- the catalog in a database and in a CSV file ----------------------------------------------


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
    pytest.param("mysql_url", id="mariadb", marks=pytest.mark.services),
]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """An empty database: a new SQLite file, or a fresh PostgreSQL schema / MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'erp.sqlite'}"
    return request.getfixturevalue(request.param)


class Catalog:
    """The ``catalog`` table: NUMERIC price and DATETIME updated_at on servers, text in SQLite
    (as sample_data/erp.sqlite keeps them); ``text_prices`` stores prices as text everywhere."""

    def __init__(self, url: str, *, text_prices: bool = False):
        self.engine = sa.create_engine(url)
        self.server = self.engine.dialect.name != "sqlite"
        self.text_prices = text_prices or not self.server
        self.table = sa.Table(
            "catalog",
            sa.MetaData(),
            sa.Column("sku", sa.String(20), primary_key=True),
            sa.Column("name", sa.String(100), nullable=False),
            sa.Column("price", sa.String(20) if self.text_prices else sa.Numeric(12, 2)),
            sa.Column("status", sa.String(1), nullable=False),
            sa.Column("updated_at", sa.DateTime() if self.server else sa.String(19)),
            mysql_charset="utf8mb4",
        )
        self.table.create(self.engine)

    def _stored(self, row: dict) -> dict:
        stored = dict(row)
        if self.text_prices:
            stored["price"] = str(row["price"])
        if not self.server:
            stored["updated_at"] = row["updated_at"].strftime("%Y-%m-%d %H:%M:%S")
        return stored

    def insert(self, rows: list[dict]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), [self._stored(row) for row in rows])

    def update(self, row: dict) -> None:
        values = self._stored(row)
        with self.engine.begin() as conn:
            conn.execute(self.table.update().where(self.table.c.sku == row["sku"]).values(**values))

    def delete(self, skus: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.sku.in_(skus)))

    def close(self) -> None:
        self.engine.dispose()


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "updated_at": row["updated_at"].strftime("%Y-%m-%d %H:%M")})


def write_job(path: Path, source: dict, **changes) -> Path:
    path.write_text(yaml.safe_dump({"job": path.stem, **MAPPING, "source": source, **changes}))
    return path


def sql_job(tmp_path: Path, name: str, query: str = QUERY, **changes) -> tuple[Path, Path]:
    """A job reading ``query`` (written to NAME.sql) from the database in ERP_DATABASE_URL."""
    query_file = tmp_path / f"{name}.sql"
    query_file.write_text(query + "\n", encoding="utf-8")
    source = {"type": "sql", "url_env": "ERP_DATABASE_URL", "query": str(query_file)}
    return write_job(tmp_path / f"{name}.yml", source, **changes), query_file


# --- running the jobs ---------------------------------------------------------------------------


def settings(job: Path, target: Emulator, state: Path, url: str, kind=SyncSettings, **options):
    return kind(
        job_path=job,
        target=target.base_url,
        state_dir=state,
        environ={"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": url},
        log=lambda _: None,
        **options,
    )


def counts(summary: RunSummary) -> tuple[int, int, int, int]:
    return (summary.created, summary.updated, summary.unchanged, summary.rejected)


def predicted(forecast: Plan) -> tuple[int, int, int, int]:
    return (forecast.create, forecast.update, forecast.unchanged, forecast.reject)


def held(client: httpx.Client) -> dict[str, dict]:
    """What the target holds, less what the server generates (ids, timestamps)."""
    return {
        sku: {k: v for k, v in product.items() if k not in SERVER_FIELDS}
        for sku, product in all_products(client).items()
    }


@pytest.fixture
def twin_emulator():
    """A second emulator, for the CSV twin."""
    with Emulator.start(EmulatorSettings(api_keys={API_KEY: "org_test"})) as emu:
        yield emu


@pytest.fixture
def twin_api(twin_emulator):
    headers = {"x-api-key": API_KEY}
    with httpx.Client(base_url=twin_emulator.base_url, headers=headers) as client:
        yield client


@dataclass
class Twins:
    """One catalog twice: a table read by a SQL job syncing to ``sql_target``, and a CSV file
    read by a CSV job with the same mapping syncing to ``csv_target``."""

    db: Catalog
    url: str
    rows: list[dict]
    csv_path: Path
    sql_job: Path
    csv_job: Path
    sql_target: Emulator
    csv_target: Emulator
    tmp: Path

    def run_sql(self, **options) -> RunSummary:
        state = self.tmp / "sql-state"
        return sync(settings(self.sql_job, self.sql_target, state, self.url, **options))

    def run_csv(self, **options) -> RunSummary:
        state = self.tmp / "csv-state"
        return sync(settings(self.csv_job, self.csv_target, state, self.url, **options))

    def plan_sql(self) -> Plan:
        state = self.tmp / "sql-state"
        return plan(settings(self.sql_job, self.sql_target, state, self.url, kind=PlanSettings))

    def change(self, skus: list[str], **values) -> None:
        """Set ``values`` on these rows in the table and in the CSV file alike."""
        for row in self.rows:
            if row["sku"] in skus:
                row.update(values, updated_at=LATER)
                self.db.update(row)
        write_csv(self.csv_path, self.rows)

    def delete(self, skus: list[str]) -> None:
        self.rows = [row for row in self.rows if row["sku"] not in skus]
        self.db.delete(skus)
        write_csv(self.csv_path, self.rows)


def make_twins(tmp_path, db_url, emulator, twin_emulator, **job_changes) -> Twins:
    rows = catalog()
    db = Catalog(db_url)
    db.insert(rows)
    csv_path = tmp_path / "catalog.csv"
    write_csv(csv_path, rows)
    job, _ = sql_job(tmp_path, "catalog_sql", **job_changes)
    csv_source = {"type": "csv", "path": str(csv_path)}
    csv_job = write_job(tmp_path / "catalog_csv.yml", csv_source, **job_changes)
    return Twins(db, db_url, rows, csv_path, job, csv_job, emulator, twin_emulator, tmp_path)


@pytest.fixture
def twins(tmp_path, db_url, emulator, twin_emulator):
    made = make_twins(tmp_path, db_url, emulator, twin_emulator)
    yield made
    made.db.close()


@pytest.fixture
def mirror_twins(tmp_path, db_url, emulator, twin_emulator):
    made = make_twins(
        tmp_path, db_url, emulator, twin_emulator, missing="deactivate", max_deactivate_pct=10
    )
    yield made
    made.db.close()


# --- the tests ----------------------------------------------------------------------------------


def test_first_run_holds_the_same_records_as_the_csv_job(twins, api, twin_api):
    from_sql, from_csv = twins.run_sql(), twins.run_csv()
    assert from_sql.balanced and from_sql.status == "succeeded"
    assert (from_sql.rows_read, from_sql.created, from_sql.rejected) == (ROWS, ROWS, 0)
    assert counts(from_sql) == counts(from_csv)

    records = held(api)
    assert records == held(twin_api)
    assert len(records) == ROWS
    for row in twins.rows[::37]:  # the values themselves, not only the agreement
        record = records[row["sku"]]
        assert (record["name"], record["price"]) == (row["name"], float(row["price"]))
        assert record["active"] is (row["status"] == "A")
        assert record["currencyCode"] == "USD"


def test_rerun_sends_nothing_and_three_changed_rows_send_three(twins, api, twin_api):
    twins.run_sql(), twins.run_csv()
    again_sql, again_csv = twins.run_sql(), twins.run_csv()
    assert counts(again_sql) == counts(again_csv) == (0, 0, ROWS, 0)
    assert again_sql.batches == 0

    changed = ["SKU-0001", "SKU-0150", "SKU-0300"]
    twins.change(changed, price=Decimal("12.34"), name="Renamed bracket")
    delta_sql, delta_csv = twins.run_sql(), twins.run_csv()
    assert counts(delta_sql) == counts(delta_csv) == (0, 3, ROWS - 3, 0)

    records = held(api)
    assert records == held(twin_api)
    for sku in changed:
        assert (records[sku]["price"], records[sku]["name"]) == (12.34, "Renamed bracket")


def test_mirror_mode_deactivates_rows_deleted_from_the_table(mirror_twins, api, twin_api):
    twins = mirror_twins
    assert counts(twins.run_sql()) == counts(twins.run_csv()) == (ROWS, 0, 0, 0)
    gone = ["SKU-0042", "SKU-0201"]  # both active
    assert all(held(api)[sku]["active"] for sku in gone)

    twins.delete(gone)
    from_sql, from_csv = twins.run_sql(), twins.run_csv()
    assert (from_sql.deactivated, from_sql.rows_read) == (2, ROWS - 2)
    assert (from_csv.deactivated, from_csv.rows_read) == (2, ROWS - 2)
    assert counts(from_sql) == counts(from_csv) == (0, 0, ROWS - 2, 0)

    records = held(api)
    assert records == held(twin_api)
    assert len(records) == ROWS  # deactivated, never deleted
    assert {sku for sku, p in records.items() if not p["active"]} == {
        row["sku"] for row in catalog() if row["status"] == "I"
    } | set(gone)


def test_plan_predicts_the_run(twins):
    first_plan = twins.plan_sql()
    assert first_plan.rows_read == ROWS
    assert predicted(first_plan) == counts(twins.run_sql()) == (ROWS, 0, 0, 0)

    twins.change(["SKU-0007", "SKU-0071", "SKU-0171"], status="I")
    second_plan = twins.plan_sql()
    assert predicted(second_plan) == counts(twins.run_sql()) == (0, 3, ROWS - 3, 0)


def test_a_bad_price_is_rejected_naming_the_query_file_and_result_row(
    db_url, emulator, api, tmp_path
):
    rows = catalog()
    rows[41]["price"] = "abc"  # SKU-0042: the 42nd row of the result, sorted by sku
    db = Catalog(db_url, text_prices=True)
    try:
        db.insert(rows)
        job, query_file = sql_job(tmp_path, "catalog_sql")
        rejects = tmp_path / "rejects.csv"
        forecast = plan(settings(job, emulator, tmp_path / "state", db_url, kind=PlanSettings))
        summary = sync(settings(job, emulator, tmp_path / "state", db_url, rejects_path=rejects))
    finally:
        db.close()
    assert predicted(forecast) == counts(summary) == (ROWS - 1, 0, 0, 1)
    assert summary.balanced and summary.rejects_path == str(rejects)
    with rejects.open(encoding="utf-8", newline="") as file:
        (reject,) = list(csv.DictReader(file))
    assert reject["source"] == str(query_file)
    assert reject["row"] == "42"
    assert (reject["external_id"], reject["column"]) == ("SKU-0042", "price")
    assert (reject["value"], reject["rule"]) == ("abc", "not_a_number")
    records = all_products(api)
    assert len(records) == ROWS - 1 and "SKU-0042" not in records


def test_a_watermark_reads_only_rows_changed_since_the_last_run(db_url, emulator, api, tmp_path):
    rows = catalog()
    db = Catalog(db_url)
    try:
        db.insert(rows)
        job, _ = sql_job(
            tmp_path, "catalog_incremental", WATERMARK_QUERY, watermark={"column": "updated_at"}
        )
        state = tmp_path / "state"
        first = sync(settings(job, emulator, state, db_url))
        assert (first.rows_read, first.created) == (ROWS, ROWS)

        changed = ["SKU-0003", "SKU-0100", "SKU-0222"]
        for row in rows:
            if row["sku"] in changed:
                row.update(price=Decimal("99.5"), updated_at=LATER)
                db.update(row)
        second = sync(settings(job, emulator, state, db_url))
    finally:
        db.close()
    # The three changed rows, and SKU-0300 again: it holds the last run's watermark (>=).
    assert second.rows_read == 4
    assert counts(second) == (0, 3, 1, 0)
    records = all_products(api)
    assert len(records) == ROWS
    assert all(records[sku]["price"] == 99.5 for sku in changed)
