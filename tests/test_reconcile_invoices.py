"""`reconcile` of an order job with an ``invoices:`` source, over real HTTP against the emulator:
a migration whose ERP has invoices reconciles clean; an invoice's status or balance changed, an
invoice removed or one added behind the tool's back are each named with their exact values
(exit 1); a bad ``invoices:`` is a job-file error before anything is read; a source invoice
whose status is not a §4.3 state is rejected naming file, row, column and value.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from helpers import API_KEY
from openpyxl import Workbook
from orders_helpers import ERP, ORDERS_CSV, prepare_target, run_entity

from pipelines.cli import main
from pipelines.emulator import Emulator, EmulatorSettings
from pipelines.entities.orders.invoice_rows import read_invoices
from pipelines.errors import JobFileError
from pipelines.extract.feed import SourceOpener
from pipelines.extract.sql import make_engine
from pipelines.jobs.job_file import load_job
from pipelines.run.commands import ReconcileSettings, reconcile
from pipelines.run.invoice_index import TargetInvoices
from pipelines.run.invoice_match import open_invoices

SAMPLE_INVOICES = Path("sample_data/invoices.csv")
STATUS_MAP = {"D": "Draft", "I": "Issued", "PP": "PartiallyPaid", "P": "Paid", "V": "Voided",
              "X": "Cancelled"}  # fmt: skip
INVOICES = {
    "source": {"type": "csv", "path": str(SAMPLE_INVOICES)},
    "key": "order_id",
    "invoiceNumber": "invoice_number",
    "status": {"column": "status", "map": STATUS_MAP},
    "total": "total",
    "balanceDue": "balance_due",
    "currencyCode": "currency",
}


@pytest.fixture
def migrated(tmp_path):
    """The sample order migration (orders 1–500 from CSV) in an emulator keeping its data in
    a file, so a test can delete behind the API's back."""
    db = tmp_path / "emulator.sqlite"
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, db_path=str(db))
    with Emulator.start(settings) as emulator:
        prepare_target(emulator, tmp_path)
        run_entity(ORDERS_CSV, emulator, tmp_path)
        emulator.db = db
        yield emulator


@pytest.fixture
def api(migrated):
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    with httpx.Client(base_url=migrated.base_url, headers=headers) as client:
        yield client


def invoices_job(tmp_path: Path, base: Path = ORDERS_CSV, **invoices) -> Path:
    """``base`` with an ``invoices:`` block: the sample's, its keys replaced by ``invoices``
    (a value of None removes the key)."""
    spec = yaml.safe_load(base.read_text())
    block = {**INVOICES, **invoices}
    spec["invoices"] = {k: v for k, v in block.items() if v is not None}
    path = tmp_path / "invoices-job.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def reconcile_for(job: Path, emulator, tmp_path: Path, **options):
    return reconcile(
        ReconcileSettings(
            job_path=job,
            target=emulator.base_url,
            state_dir=tmp_path / "state",
            environ={"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": f"sqlite:///{ERP}"},
            log=lambda _: None,
            **options,
        )
    )


def exact_json(value) -> bytes:
    return orjson.dumps(value, default=lambda d: orjson.Fragment(format(d, "f")))


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def target_orders(api) -> dict[str, dict]:
    """Every order the org holds, by externalId."""
    found, page = {}, 1
    while True:
        body = api.get("/api/orders", params={"pageSize": 100, "pageNumber": page}).json()
        found |= {o["externalId"]: o for o in body["data"]}
        if page >= body["totalPages"]:
            return found
        page += 1


def target_invoices(api) -> list[dict]:
    found, page = [], 1
    while True:
        response = api.get("/api/invoices", params={"pageSize": 100, "pageNumber": page})
        body = json.loads(response.text, parse_float=Decimal)
        found += body["data"]
        if page >= body["totalPages"]:
            return found
        page += 1


def as_api(row: dict[str, str], order_id: str) -> dict:
    """A sample invoice row as the target holds it once migrated."""
    invoice = {
        "orderId": order_id,
        "invoiceNumber": row["invoice_number"],
        "status": STATUS_MAP[row["status"]],
        "total": Decimal(row["total"]),
        "balanceDue": Decimal(row["balance_due"]),
    }
    return invoice | ({"currencyCode": row["currency"]} if row["currency"] else {})


def seed(api, invoices: list[dict]) -> list[dict]:
    response = api.post(
        "/_emulator/invoices", content=exact_json({"org": "org_test", "invoices": invoices})
    )
    assert response.status_code == 201, response.text
    return json.loads(response.text, parse_float=Decimal)["data"]


def seed_sample(api, rows: list[dict[str, str]]) -> dict[str, dict]:
    """The sample invoices of every order the target holds, as another process migrated
    them; returns the seeded invoices by number."""
    orders = target_orders(api)
    wanted = [as_api(r, orders[r["order_id"]]["id"]) for r in rows if r["order_id"] in orders]
    return {i["invoiceNumber"]: i for i in seed(api, wanted)}


def sums(rows: list[dict[str, str]], orders: dict[str, dict]) -> dict[str, list]:
    """The sample rows' invoices, totals and balances per currency, computed here: an invoice
    that states no currency counts in its order's."""
    found: dict[str, list] = {}
    for row in rows:
        currency = row["currency"] or orders[row["order_id"]]["currencyCode"]
        into = found.setdefault(currency, [0, Decimal(0), Decimal(0)])
        into[0] += 1
        into[1] += Decimal(row["total"])
        into[2] += Decimal(row["balance_due"])
    return found


def money(check) -> dict[str, tuple]:
    return {
        r["currency"]: (r["invoices_source"], r["total_source"], r["balance_source"],
                        r["invoices_target"], r["total_target"], r["balance_target"])
        for r in check.money
    }  # fmt: skip


def differences(path: str) -> list[dict[str, str]]:
    return read_rows(Path(path))


# --- a migration with its invoices -----------------------------------------------------------


def test_a_migration_whose_erp_has_invoices_reconciles_clean(migrated, api, tmp_path):
    rows = read_rows(SAMPLE_INVOICES)
    seed_sample(api, rows)
    orders = target_orders(api)
    ours = [r for r in rows if r["order_id"] in orders]
    assert 400 < len(ours) < len(rows)

    result = reconcile_for(invoices_job(tmp_path), migrated, tmp_path)
    check = result.invoices
    assert result.agrees and result.exit_code == 0, result.samples
    assert (check.source_rows, check.source_rejected) == (len(rows), 0)
    assert (check.compared, check.agree, check.not_compared) == (
        len(ours),
        len(ours),
        len(rows) - len(ours),
    )
    assert (check.differ, check.missing, check.extra, check.rejected_at_target) == (0, 0, 0, 0)
    expected = sums(ours, orders)
    assert set(expected) == {"CAD", "USD"} and any(not r["currency"] for r in ours)
    assert money(check) == {c: (*s, *s) for c, s in expected.items()}
    assert result.differences_path is None and check.rejects_path is None
    assert "invoices" in result.to_dict() and result.to_dict()["invoices"]["agrees"]


def test_invoices_changed_behind_the_tools_back_are_each_named(migrated, api, tmp_path):
    rows = read_rows(SAMPLE_INVOICES)
    seeded = seed_sample(api, rows)
    orders = target_orders(api)
    by_number = {r["invoice_number"]: r for r in rows}
    usd = [n for n, i in seeded.items() if i.get("currencyCode") == "USD"]
    paid = next(n for n in usd if seeded[n]["status"] == "Paid")
    issued = next(n for n in usd if seeded[n]["status"] == "Issued")
    removed = next(n for n in usd if n not in (paid, issued))
    changed = {**seeded[paid], "status": "Issued"}
    lowered = {**seeded[issued], "balanceDue": seeded[issued]["balanceDue"] - Decimal("0.01")}
    seed(api, [changed, lowered])  # the same ids: replaced
    with sqlite3.connect(migrated.db) as conn:
        conn.execute("DELETE FROM invoices WHERE id = ?", (seeded[removed]["id"],))
    order_key = by_number[paid]["order_id"]
    [extra] = seed(api, [{"orderId": orders[order_key]["id"], "invoiceNumber": "INV-HAND-1",
                          "status": "Issued", "currencyCode": "USD",
                          "total": Decimal("10.05"), "balanceDue": Decimal("10.05")}])  # fmt: skip

    out = tmp_path / "differences.csv"
    runner = CliRunner(env={"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path / "s")})
    args = ["reconcile", str(invoices_job(tmp_path)), "--target", migrated.base_url]
    done = runner.invoke(main, [*args, "--json", "--differences", str(out)])
    assert done.exit_code == 1, done.output
    data = json.loads(done.stdout)
    check = data["invoices"]
    assert (check["differ"], check["missing"], check["extra"]) == (2, 1, 1)
    assert check["fields"] == {"status": 1, "balanceDue": 1}
    verdicts = (data["agrees"], check["agrees"], data["differ"], data["missing"])
    assert verdicts == (False, False, 0, 0)
    key = {n: by_number[n]["order_id"] for n in (paid, issued, removed)}
    named = {(r["key"], r["kind"], r["field"], r["source_value"], r["target_value"])
             for r in differences(str(out))}  # fmt: skip
    row = by_number[removed]
    assert named == {
        (key[paid], "invoice_differs", f"invoices[{paid}].status", "Paid", "Issued"),
        (key[issued], "invoice_differs", f"invoices[{issued}].balanceDue",
         format(seeded[issued]["balanceDue"], "f"), format(lowered["balanceDue"], "f")),
        (key[removed], "invoice_missing", f"invoices[{removed}]",
         _summary(row), ""),
        (order_key, "invoice_extra", "invoices[INV-HAND-1]", "",
         '{"status":"Issued","total":"10.05","balanceDue":"10.05","currencyCode":"USD"}'),
    }  # fmt: skip
    [usd_row] = [r for r in check["money"] if r["currency"] == "USD"]
    total_delta = Decimal("10.05") - Decimal(row["total"])
    balance_delta = Decimal("-0.01") - Decimal(row["balance_due"]) + Decimal("10.05")
    assert Decimal(usd_row["total_difference"]) == total_delta
    assert Decimal(usd_row["balance_difference"]) == balance_delta
    assert usd_row["invoices_target"] - usd_row["invoices_source"] == 0  # one gone, one added
    assert all(not r["differs"] for r in check["money"] if r["currency"] != "USD")
    assert extra["invoiceNumber"] == "INV-HAND-1"
    table = runner.invoke(main, args)
    assert table.exit_code == 1 and "invoices (sample_data/invoices.csv): DIFFER" in table.stdout


def _summary(row: dict[str, str]) -> str:
    """How the differences CSV shows a missing invoice: the fields it has, as JSON."""
    fields = {"status": STATUS_MAP[row["status"]],
              "total": Decimal(row["total"]).normalize(),
              "balanceDue": Decimal(row["balance_due"]).normalize(),
              "currencyCode": row["currency"] or None}  # fmt: skip
    shown = {k: v for k, v in fields.items() if v is not None}
    return orjson.dumps(shown, default=lambda d: format(d, "f")).decode()


def test_an_order_gone_from_the_target_takes_its_invoices_with_it(migrated, api, tmp_path):
    rows = read_rows(SAMPLE_INVOICES)
    seed_sample(api, rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["order_id"]] = counts.get(r["order_id"], 0) + 1
    orders = target_orders(api)
    gone = next(k for k in orders if counts.get(k, 0) == 2)  # an order billed twice
    with sqlite3.connect(migrated.db) as conn:
        conn.execute("DELETE FROM orders WHERE external_id = ?", (gone,))
    result = reconcile_for(invoices_job(tmp_path), migrated, tmp_path)
    assert (result.missing, result.invoices.missing, result.exit_code) == (1, 2, 1)
    named = [r for r in differences(result.differences_path) if r["key"] == gone]
    assert sorted(r["kind"] for r in named) == ["invoice_missing", "invoice_missing", "missing"]
    assert result.linkage.invoices_of_other_orders == 2  # still at the target, orphaned


# --- the job file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("invoices", "key", "words"),
    [
        ({"invoiceNumber": None}, "invoices.invoiceNumber", "is required"),
        ({"status": {"column": "status", "map": {"P": "Payed"}}}, "invoices.status.map.P",
         "'Payed' is not an invoice status"),
        ({"totl": "total"}, "invoices.totl", "is not a known key"),
        ({"source": {"type": "xls", "path": "x.xls"}}, "invoices.source", "is not supported"),
    ],
)  # fmt: skip
def test_invoices_mistakes_are_named_when_the_job_is_read(tmp_path, invoices, key, words):
    with pytest.raises(JobFileError) as caught:
        load_job(invoices_job(tmp_path, **invoices))
    assert any(p.key == key and words in str(p) for p in caught.value.problems), caught.value


def test_a_missing_invoice_column_fails_before_the_target_is_read_and_run_ignores_it(
    migrated, tmp_path
):
    job = invoices_job(tmp_path, balanceDue="balance")
    before = migrated.stats()["requests"]
    with pytest.raises(JobFileError) as caught:
        reconcile_for(job, migrated, tmp_path)
    [problem] = caught.value.problems
    assert problem.key == "invoices.balanceDue"
    assert "column 'balance' is not in sample_data/invoices.csv" in str(problem)
    assert "balance_due" in problem.fix
    assert migrated.stats()["requests"] == before  # not one read of the target
    broken = invoices_job(tmp_path, source={"type": "csv", "path": str(tmp_path / "none.csv")})
    summary = run_entity(broken, migrated, tmp_path)  # run never reads invoices:
    assert summary.balanced and summary.unchanged == 491
    nothing = reconcile_for(invoices_job(tmp_path), migrated, tmp_path).invoices
    assert nothing.missing == nothing.compared > 400 and nothing.agree == 0  # none migrated


def test_a_status_outside_the_contract_is_rejected_naming_file_row_and_column(
    migrated, api, tmp_path
):
    rows = read_rows(SAMPLE_INVOICES)
    seeded = seed_sample(api, rows)
    orders = target_orders(api)
    ours = [r for r in rows if r["order_id"] in orders]
    source = tmp_path / "invoices.csv"
    written = [{**r, "status": STATUS_MAP[r["status"]]} for r in ours]
    written[3]["status"] = "Open"  # not a §4.3 state; spreadsheet row 5
    with source.open("w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, list(written[0]))
        writer.writeheader()
        writer.writerows(written)
    job = invoices_job(tmp_path, source={"type": "csv", "path": str(source)}, status="status")

    result = reconcile_for(job, migrated, tmp_path)
    check = result.invoices
    assert result.exit_code == 1 and not check.agrees
    counted = (check.source_rows, check.source_rejected, check.compared, check.agree)
    assert counted == (len(ours), 1, len(ours) - 1, len(ours) - 1)
    assert (check.missing, check.extra, check.rejected_at_target) == (0, 0, 1)
    assert all(not r["differs"] for r in check.money)  # the rejected invoice is out of both
    [reject] = read_rows(Path(check.rejects_path))
    assert reject["source"] == str(source) and reject["row"] == "5"
    assert (reject["column"], reject["value"], reject["rule"]) == (
        "status",
        "Open",
        "unknown_status",
    )
    assert reject["external_id"] == ours[3]["order_id"]
    assert "Draft, Issued, PartiallyPaid, Paid, Voided, Cancelled" in reject["message"]
    assert ours[3]["invoice_number"] in seeded


def test_amounts_are_read_in_the_jobs_number_style_and_compared_exactly(migrated, api, tmp_path):
    """A German-written invoice file, one total of twenty significant digits: the emulator
    keeps it exactly and reconcile compares it exactly; a cent off is named."""
    orders = target_orders(api)
    first, second = sorted(orders, key=int)[:2]
    source = tmp_path / "rechnungen.csv"
    source.write_text(
        "Auftrag;Rechnung;Status;Betrag;Offen\n"
        f"{first};R-1;paid;1.234,50;0,00\n"
        f"{second};R-2;ISSUED;1.234.567.890.123.456,7891;1.234.567.890.123.456,7891\n",
        encoding="utf-8",
    )
    big = Decimal("1234567890123456.7891")
    seed(api, [
        {"orderId": orders[first]["id"], "invoiceNumber": "r-1", "status": "Paid",
         "total": Decimal("1234.5"), "balanceDue": 0},
        {"orderId": orders[second]["id"], "invoiceNumber": "R-2", "status": "Issued",
         "total": big, "balanceDue": big + Decimal("0.0001")},
    ])  # fmt: skip
    held = {i["invoiceNumber"]: i for i in target_invoices(api)}
    assert held["R-2"]["total"] == big  # kept exactly, not through a float
    spec = yaml.safe_load(ORDERS_CSV.read_text())
    german = {"decimal": ",", "thousands": "."}
    spec["number"] = {"columns": {"Betrag": german, "Offen": german}}
    spec["invoices"] = {
        "source": {"type": "csv", "path": str(source), "delimiter": ";"},
        "key": "Auftrag", "invoiceNumber": "Rechnung", "status": "Status",
        "total": "Betrag", "balanceDue": "Offen",
    }  # fmt: skip
    job = tmp_path / "german.yml"
    job.write_text(yaml.safe_dump(spec))

    result = reconcile_for(job, migrated, tmp_path)
    check = result.invoices
    assert (check.compared, check.agree, check.differ) == (2, 1, 1)  # R-1 matches r-1
    [change] = [r for r in differences(result.differences_path) if r["kind"] != "unowned"]
    assert change == {"key": second, "kind": "invoice_differs",
                      "field": "invoices[R-2].balanceDue", "source_value": format(big, "f"),
                      "target_value": format(big + Decimal("0.0001"), "f")}  # fmt: skip
    [row] = check.money
    assert row["total_source"] == row["total_target"] == big + Decimal("1234.5")
    assert row["balance_difference"] == Decimal("0.0001")


def test_the_sample_erp_invoices_reconcile_clean(tmp_path):
    """mappings/orders_sql_totals.yml on sample_data/erp.sqlite with sample_data/invoices.csv."""
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"})
    job = Path("mappings/orders_sql_totals.yml")
    with (
        Emulator.start(settings) as emulator,
        httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as api,
    ):
        prepare_target(emulator, tmp_path)
        assert run_entity(job, emulator, tmp_path).created == 4965
        rows = read_rows(SAMPLE_INVOICES)
        seed_sample(api, rows)
        result = reconcile_for(job, emulator, tmp_path)
    check = result.invoices
    assert result.exit_code == 0 and check.agrees, result.samples
    assert check.compared + check.not_compared == check.source_rows == len(rows)
    assert check.agree == check.compared > 4500


# --- the parts on their own ------------------------------------------------------------------


def _write_source(kind: str, rows: list[dict[str, str]], folder: Path) -> dict:
    """The rows as a source of ``kind``: amounts typed where the kind has types (Parquet
    decimals, Excel numbers, SQLite text as ERPs keep it)."""
    if kind == "csv":
        path = folder / "invoices.csv"
        with path.open("w", encoding="utf-8", newline="") as file:
            writer = csv.DictWriter(file, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return {"type": "csv", "path": str(path)}
    if kind == "parquet":
        table = pa.table({name: [r[name] or None for r in rows] for name in rows[0]})
        for name in ("total", "balance_due"):
            typed = pa.array([Decimal(r[name]) for r in rows], pa.decimal128(12, 2))
            table = table.set_column(table.schema.get_field_index(name), name, typed)
        order_ids = pa.array([int(r["order_id"]) for r in rows], pa.int64())
        table = table.set_column(0, "order_id", order_ids)
        pq.write_table(table, folder / "invoices.parquet")
        return {"type": "parquet", "path": str(folder / "invoices.parquet")}
    if kind == "xlsx":
        book = Workbook()
        sheet = book.active
        sheet.append(list(rows[0]))
        for r in rows:
            amounts = (float(r["total"]), float(r["balance_due"]))
            sheet.append([int(r["order_id"]), *list(r.values())[1:5], *amounts])
        book.save(folder / "invoices.xlsx")
        return {"type": "xlsx", "path": str(folder / "invoices.xlsx")}
    with sqlite3.connect(folder / "erp.sqlite") as conn:
        conn.execute(f"CREATE TABLE invoices ({', '.join(rows[0])})")
        conn.executemany(
            f"INSERT INTO invoices VALUES ({', '.join('?' * len(rows[0]))})",
            [tuple(r.values()) for r in rows],
        )
    (folder / "invoices.sql").write_text("SELECT * FROM invoices ORDER BY invoice_number")
    query = str(folder / "invoices.sql")
    return {"type": "sql", "url_env": "ERP_DATABASE_URL", "query": query, "chunk_rows": 100}


@pytest.mark.parametrize("kind", ["csv", "parquet", "xlsx", "sql"])
def test_invoices_read_alike_from_every_source_kind(tmp_path, kind):
    rows = read_rows(SAMPLE_INVOICES)[:700]
    found = {}
    for name, where in (("csv", tmp_path / "plain"), (kind, tmp_path / kind)):
        where.mkdir(exist_ok=True)
        job = load_job(invoices_job(where, source=_write_source(name, rows, where)))
        engine = make_engine(f"sqlite:///{where / 'erp.sqlite'}") if name == "sql" else None
        opener = SourceOpener(engines={"ERP_DATABASE_URL": engine} if engine else {}, log=print)
        with ExitStack() as stack:
            feed = open_invoices(job, opener, stack)
            read = [(r, rejects) for r, rejects, _keys in read_invoices(job, feed.chunks)]
        assert all(not rejects for _r, rejects in read)
        found[name] = {
            (k, c, o)
            for r, _ in read
            for k, c, o in zip(r.keys, r.content, r.order_keys.to_pylist(), strict=True)
        }
        if engine is not None:
            engine.dispose()
    assert len(found["csv"]) == len(rows) and found[kind] == found["csv"]


def test_a_source_row_hashes_as_the_same_invoice_from_the_api_does(tmp_path):
    """Equal content hashes spare the field-by-field look, so the columnar hash of a source
    row and the hash of the API's JSON must agree on every way of writing an amount; a row
    naming the same order's invoice again is rejected, naming the first, even when the first
    was rejected itself."""
    source = tmp_path / "invoices.csv"
    source.write_text(
        "order_id,invoice_number,status,total,balance_due,currency\n"
        "1,A-1,paid,100.10,0.00,USD\n"
        "1,A-2,Issued,5,-0.50,\n"
        "2,A-1,PARTIALLYPAID,1234567890123456.7891,0.0001,CAD\n"
        "1,a-1,Paid,1,1,USD\n"
        "3,B-1,Paid,abc,0,USD\n"
        "3,B-1,Paid,7,0,USD\n",
        encoding="utf-8",
    )
    job = load_job(invoices_job(tmp_path, source={"type": "csv", "path": str(source)},
                                status="status"))  # fmt: skip
    opener = SourceOpener(log=lambda _: None)
    with ExitStack() as stack:
        [(rows, rejects, keys)] = read_invoices(job, open_invoices(job, opener, stack).chunks)
    api = [
        ("Paid", Decimal("100.1"), 0, "USD"),
        ("Issued", 5.0, Decimal("-0.5"), None),
        ("PartiallyPaid", Decimal("1234567890123456.78910"), Decimal("1E-4"), "CAD"),
    ]
    held = TargetInvoices(balance=True, currency=True)
    for i, (status, total, balance, currency) in enumerate(api):
        fields = {"status": status.lower(), "total": total, "balanceDue": balance}
        fields |= {"currencyCode": currency} if currency else {}
        held.add([{"invoiceNumber": rows.numbers[i].as_py(), **fields}], np.array([i]),
                 np.array([rows.order_hashes[i]]), np.array([True]))  # fmt: skip
    held.finish()
    found, pos = held.locate(rows.keys)
    assert found.all() and list(held["content"][pos]) == list(rows.content)
    assert [(r.row, r.rule, r.value) for r in rejects] == [
        (5, "duplicate_invoice", "a-1"),
        (6, "not_a_number", "abc"),
        (7, "duplicate_invoice", "B-1"),
    ]
    assert "(row 2)" in rejects[0].message and "(row 6)" in rejects[2].message
    assert len(rows) == 3 and len(keys) == 1  # the unreadable B-1 still names its invoice
    held.close()
