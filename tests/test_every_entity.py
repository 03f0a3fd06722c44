"""`run`, `plan` and `validate` for every entity, over real HTTP against the emulator: a plan
counts what the next run does, plan and validate write nothing, orders waiting for a customer
or a SKU are held rather than judged bad data, plan samples show the fields that changed, and
the command line exits 0 or 1 for each sample job."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from helpers import API_KEY
from orders_helpers import (
    CUSTOMERS,
    ERP,
    ORDERS_CSV,
    ORDERS_SQL,
    PRODUCTS,
    edited_job,
    prepare_target,
    rejects_by_id,
    run_entity,
)

from pipelines.cli import main
from pipelines.ledger import Ledger
from pipelines.run.commands import PlanSettings, SyncSettings, plan, validate
from pipelines.run.resources import default_ledger_url

SAMPLE = Path("sample_data")
WAITING = {"unknown_customer", "unknown_sku"}  # an order held until its reference exists
NEW_DATE = "2030-01-01 00:00:00"  # `updated_at` of an order the ERP changed


# --- the four sample jobs, each on its own copy of its source ---------------------------------


def rewrite_csv(
    path: Path, change: Callable[[dict], None] = lambda _: None, extra: list[dict] = ()
) -> list[dict]:
    """Apply ``change`` to every well-formed row of a CSV file (a malformed row, the sample's
    defect, is kept as it is) and append ``extra`` rows; the rows before the change are
    returned."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        header, *lines = list(csv.reader(file))
    original, out = [], [header]
    for line in lines:
        if len(line) != len(header):
            out.append(line)
            continue
        row = dict(zip(header, line, strict=True))
        original.append(dict(row))
        change(row)
        out.append([row[c] for c in header])
    out += [[row[c] for c in header] for row in extra]
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows(out)
    return original


def _setter(key: Callable[[dict], object], edits: dict) -> Callable[[dict], None]:
    def change(row: dict) -> None:
        row.update(edits.get(key(row), {}))

    return change


@dataclass(frozen=True)
class Feed:
    job: Path
    url: str  # ERP_DATABASE_URL
    src: Path  # the directory holding this test's copy of the source


@dataclass(frozen=True)
class Case:
    """A sample job, how to give it a source of its own, and a small change to that source:
    two records updated, one created. ``samples`` is what a plan shows of the two updates."""

    id: str
    job: Path
    entity: str
    copy: Callable[[Path], dict]  # copies the source into a directory; job-file changes
    edit: Callable[[Feed], None]
    samples: dict[str, dict[str, list]]
    also: frozenset[str] = frozenset()  # fields a sample shows besides, changed with them
    orders: bool = False  # needs products and customers at the target first
    sql: bool = False

    def own_feed(self, tmp_path: Path) -> Feed:
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        changes = self.copy(src)
        job = edited_job(tmp_path, self.job, f"{self.id}.yml", **changes)
        url = f"sqlite:///{src / 'erp.sqlite'}" if self.sql else f"sqlite:///{ERP}"
        return Feed(job, url, src)


def _copy_products(src: Path) -> dict:
    shutil.copy(SAMPLE / "products.csv", src / "products.csv")
    return {"source__path": str(src / "products.csv")}


def _edit_products(feed: Feed) -> None:
    prices = {"FST-10012-SV": {"price_retail": "6.25"}, "ELC-10018-RD": {"price_retail": "14.99"}}
    path = feed.src / "products.csv"
    with path.open(encoding="utf-8-sig", newline="") as file:
        template = next(r for r in csv.DictReader(file) if r["sku"] == "ELC-10015-NC")
    rewrite_csv(path, _setter(lambda r: r["sku"], prices), [{**template, "sku": "NEW-00001"}])


def _copy_customers(src: Path) -> dict:
    shutil.copy(SAMPLE / "customers.csv", src / "customers.csv")
    return {"source__path": str(src / "customers.csv")}


def _edit_customers(feed: Feed) -> None:
    names = {
        "CUST-0001": {"company_name": "Cedar Building Supply Co"},
        "CUST-0003": {"company_name": "Harbor Tool & Fastener Inc"},  # has no rep
    }
    path = feed.src / "customers.csv"
    rows = rewrite_csv(path, _setter(lambda r: r["customer_number"], names))
    template = next(r for r in rows if r["customer_number"] == "CUST-0002")
    new = {**template, "customer_number": "CUST-0301", "company_name": "Newcomer Supply"}
    rewrite_csv(path, extra=[new])


def _copy_orders_csv(src: Path) -> dict:
    for name in ("orders.csv", "order_lines.csv"):
        shutil.copy(SAMPLE / name, src / name)
    return {
        "source__path": str(src / "orders.csv"),
        "items__source__path": str(src / "order_lines.csv"),
    }


def _edit_orders_csv(feed: Feed) -> None:
    """Order 2: its second line's quantity 5 → 7. Order 3: po_number. New order 501."""
    headers = rewrite_csv(
        feed.src / "orders.csv",
        _setter(lambda r: r["order_id"], {"3": {"po_number": "PO-9544-R"}}),
    )
    first = next(r for r in headers if r["order_id"] == "1")
    new = {**first, "order_id": "501", "order_number": "SO-100501", "po_number": "PO-501"}
    rewrite_csv(feed.src / "orders.csv", extra=[new])
    lines = rewrite_csv(
        feed.src / "order_lines.csv",
        _setter(lambda r: (r["order_id"], r["line_no"]), {("2", "2"): {"qty": "7"}}),
    )
    extra = [{**li, "order_id": "501"} for li in lines if li["order_id"] == "1"]
    rewrite_csv(feed.src / "order_lines.csv", extra=extra)


def _copy_erp(src: Path) -> dict:
    shutil.copy(ERP, src / "erp.sqlite")
    return {}


def _edit_orders_sql(feed: Feed) -> None:
    """As ``_edit_orders_csv``, in the ERP's database: the changed orders' `updated_at` bumped,
    as the ERP does, so the incremental read sees them."""
    with sqlite3.connect(feed.src / "erp.sqlite") as db:
        db.execute("UPDATE order_lines SET qty = 7 WHERE order_id = 2 AND line_no = 2")
        db.execute("UPDATE orders SET po_number = 'PO-9544-R' WHERE order_id = 3")
        db.execute("UPDATE orders SET updated_at = ? WHERE order_id IN (2, 3)", (NEW_DATE,))
        columns = [row[1] for row in db.execute("PRAGMA table_info(orders)")]
        picked = ", ".join(
            {"order_id": "5001", "order_number": "'SO-105001'", "updated_at": "?"}.get(c, c)
            for c in columns
        )
        db.execute(
            f"INSERT INTO orders SELECT {picked} FROM orders WHERE order_id = 1", (NEW_DATE,)
        )
        db.execute(
            "INSERT INTO order_lines SELECT 5001, line_no, sku, qty, unit_price "
            "FROM order_lines WHERE order_id = 1"
        )


ORDER_SAMPLES = {"2": {"items[1].quantity": [5, 7]}, "3": {"poNumber": ["PO-9544", "PO-9544-R"]}}

CASES = [
    Case(
        "products",
        PRODUCTS,
        "products",
        _copy_products,
        _edit_products,
        {"FST-10012-SV": {"price": [5.59, 6.25]}, "ELC-10018-RD": {"price": [15.54, 14.99]}},
        also=frozenset({"prices"}),  # the Retail tier changes with the price
    ),
    Case(
        "customers",
        CUSTOMERS,
        "customers",
        _copy_customers,
        _edit_customers,
        {
            "CUST-0001": {"companyName": ["Cedar Building Supply", "Cedar Building Supply Co"]},
            "CUST-0003": {"companyName": ["Harbor Tool & Fastener", "Harbor Tool & Fastener Inc"]},
        },
    ),
    Case(
        "orders_csv",
        ORDERS_CSV,
        "orders",
        _copy_orders_csv,
        _edit_orders_csv,
        ORDER_SAMPLES,
        orders=True,
    ),
    Case(
        "orders_sql",
        ORDERS_SQL,
        "orders",
        _copy_erp,
        _edit_orders_sql,
        ORDER_SAMPLES,
        orders=True,
        sql=True,
    ),
]
ORDER_CASES = [c for c in CASES if c.orders]


def by_id(case: Case) -> str:
    return case.id


# --- running the commands ---------------------------------------------------------------------


def settings(feed: Feed, emulator, tmp_path: Path, cls=SyncSettings, **options):
    return cls(
        job_path=feed.job,
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": feed.url},
        log=lambda _: None,
        **options,
    )


def plan_of(feed: Feed, emulator, tmp_path: Path, **options):
    return plan(settings(feed, emulator, tmp_path, PlanSettings, **options))


def validate_of(feed: Feed, emulator, tmp_path: Path):
    return validate(settings(feed, emulator, tmp_path))


def run_of(feed: Feed, emulator, tmp_path: Path):
    summary = run_entity(feed.job, emulator, tmp_path, url=feed.url)
    assert summary.balanced, summary
    return summary


def ready(case: Case, emulator, tmp_path: Path) -> Feed:
    """The case's own source, with products and customers at the target for an orders job."""
    if case.orders:
        prepare_target(emulator, tmp_path)
    return case.own_feed(tmp_path)


def plan_counts(p) -> dict[str, int]:
    return {
        "rows_read": p.rows_read,
        "create": p.create,
        "update": p.update,
        "unchanged": p.unchanged,
        "reject": p.reject,
    }


def run_counts(s) -> dict[str, int]:
    return {
        "rows_read": s.rows_read,
        "create": s.created,
        "update": s.updated,
        "unchanged": s.unchanged,
        "reject": s.rejected,
    }


def writes(emulator) -> dict[str, int]:
    """Requests that could change what the API holds, by route."""
    return {
        route: sum(by_status.values())
        for route, by_status in emulator.stats()["requests"].items()
        if route.split()[0] in {"POST", "PUT", "PATCH", "DELETE"}
    }


def ledger_runs(tmp_path: Path) -> list[tuple]:
    ledger = Ledger.connect(default_ledger_url(tmp_path / "state"))
    try:
        return [
            (r.run_id, r.job, r.status, r.counts, r.finished_at)
            for r in ledger.recent_runs(limit=1000)
        ]
    finally:
        ledger.close()


def ledger_content(tmp_path: Path) -> dict[str, list]:
    """Every row of every non-empty ledger table (no file: nothing)."""
    path = tmp_path / "state" / "ledger.sqlite"
    if not path.exists():
        return {}
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            content = {
                t: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {t}"))), key=repr)
                for t in tables
            }
    finally:
        engine.dispose()
    return {t: rows for t, rows in content.items() if rows}


# --- 1. a plan counts what the next run does --------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_plan_counts_are_what_the_next_run_does(case, emulator, tmp_path):
    feed = ready(case, emulator, tmp_path)
    first_plan = plan_counts(plan_of(feed, emulator, tmp_path))
    first = run_of(feed, emulator, tmp_path)
    assert first_plan == run_counts(first)
    assert first.created > 0 and first.updated == 0

    case.edit(feed)
    second_plan = plan_counts(plan_of(feed, emulator, tmp_path))
    assert (second_plan["create"], second_plan["update"]) == (1, 2)
    second = run_of(feed, emulator, tmp_path)
    assert second_plan == run_counts(second)
    # and once sent, nothing is left to do
    third = plan_counts(plan_of(feed, emulator, tmp_path))
    assert (third["create"], third["update"]) == (0, 0)


# --- 2. plan and validate write nothing -------------------------------------------------------


def _assert_read_only(feed: Feed, emulator, tmp_path: Path) -> None:
    before = (writes(emulator), ledger_runs(tmp_path), ledger_content(tmp_path))
    by_ledger = plan_of(feed, emulator, tmp_path)
    report = validate_of(feed, emulator, tmp_path)
    assert by_ledger.rows_read == report.summary.rows_read > 0
    assert plan_of(feed, emulator, tmp_path, against_api=True).rows_read > 0
    after = (writes(emulator), ledger_runs(tmp_path), ledger_content(tmp_path))
    assert after[0] == before[0], "plan or validate wrote to the API"
    assert after[1] == before[1], "plan or validate recorded a run"
    assert after[2] == before[2], "plan or validate changed the ledger"


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_plan_and_validate_write_nothing_to_the_api_or_the_ledger(case, emulator, tmp_path):
    feed = ready(case, emulator, tmp_path)
    _assert_read_only(feed, emulator, tmp_path)  # before the job's first run
    runs = len(ledger_runs(tmp_path))
    run_of(feed, emulator, tmp_path)
    assert len(ledger_runs(tmp_path)) == runs + 1
    case.edit(feed)
    _assert_read_only(feed, emulator, tmp_path)  # with something to send


# --- 3. orders waiting for a reference are held, not bad data ---------------------------------


def _source_rows(case: Case, feed: Feed) -> tuple[str, dict[str, int]]:
    """The rejects file's `source` for an order header, and each order's row in it."""
    if case.sql:
        with sqlite3.connect(feed.src / "erp.sqlite") as db:
            ids = [str(i) for (i,) in db.execute("SELECT order_id FROM orders ORDER BY order_id")]
        return "sql/orders.sql", {order_id: row for row, order_id in enumerate(ids, start=1)}
    path = feed.src / "orders.csv"
    with path.open(encoding="utf-8", newline="") as file:
        ids = [r["order_id"] for r in csv.DictReader(file)]
    return str(path), {order_id: row for row, order_id in enumerate(ids, start=2)}


def _rejects(summary) -> dict[str, tuple[str, str]]:
    if summary.rejects_path is None:
        return {}
    return {k: (r["rule"], r["value"]) for k, r in rejects_by_id(summary.rejects_path).items()}


@pytest.mark.parametrize("case", ORDER_CASES, ids=by_id)
def test_validate_holds_orders_waiting_for_a_reference_and_judges_the_rest(
    case, emulator, tmp_path
):
    feed = case.own_feed(tmp_path)
    early = validate_of(feed, emulator, tmp_path)
    s = early.summary
    assert s.rows_read > 0 and s.rejected == s.rows_read  # no customer exists yet
    rejects = rejects_by_id(s.rejects_path)
    assert len(rejects) == s.rows_read
    waiting = {k: r for k, r in rejects.items() if r["rule"] in WAITING}
    assert s.held == len(waiting) > 0
    source, rows = _source_rows(case, feed)
    for order_id, reject in waiting.items():
        assert (reject["source"], reject["row"]) == (source, str(rows[order_id])), reject
        assert reject["value"]
    # held orders are not bad data: the reject-rate gate counts only the real problems
    assert early.failed_gate is None and s.status == "valid"
    assert early.gates and all(g.passed for g in early.gates)
    assert any(g.name == "reject_rate" for g in early.gates)
    real = {k: (r["rule"], r["value"]) for k, r in rejects.items() if r["rule"] not in WAITING}
    assert s.rejected - s.held == len(real) > 0

    prepare_target(emulator, tmp_path)
    late = validate_of(feed, emulator, tmp_path)
    summary = run_of(feed, emulator, tmp_path)
    assert late.failed_gate is None and late.summary.status == "valid"
    assert _rejects(late.summary) == _rejects(summary)
    assert (late.summary.rejected, late.summary.held) == (summary.rejected, summary.held)
    assert late.summary.skipped == summary.created + summary.updated  # what it would send
    # the real problems do not depend on what the target holds
    assert {k: v for k, v in _rejects(late.summary).items() if v[0] not in WAITING} == real
    assert late.summary.rejected < early.summary.rejected


# --- 4. plan samples show the changed fields, read from the API -------------------------------


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_plan_samples_name_each_changed_field_with_old_and_new_values(case, emulator, tmp_path):
    feed = ready(case, emulator, tmp_path)
    run_of(feed, emulator, tmp_path)
    case.edit(feed)
    result = plan_of(feed, emulator, tmp_path, sample=10)
    assert (result.update, result.create) == (2, 1)
    diffs = {d.external_id: d for d in result.samples}
    assert set(diffs) == set(case.samples)
    for external_id, expected in case.samples.items():
        diff = diffs[external_id]
        assert diff.found
        assert set(diff.changes) == set(expected) | case.also, (
            f"{external_id}: only the edited fields differ: {diff.changes}"
        )
        assert {k: diff.changes[k] for k in expected} == expected
    assert json.loads(json.dumps(result.to_dict()))["samples"]


# --- 5. the command line ----------------------------------------------------------------------


def cli(runner: CliRunner, *args: str):
    result = runner.invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.mark.parametrize("case", CASES, ids=by_id)
def test_validate_plan_and_run_exit_0_or_1_on_every_sample_job(case, emulator, tmp_path):
    env = {
        "NYMBLE_SYNC_HOME": str(tmp_path / "home"),
        "NYMBLE_API_KEY": API_KEY,
        "ERP_DATABASE_URL": f"sqlite:///{ERP}",
    }
    runner = CliRunner(env=env)
    target = ["--target", emulator.base_url]
    if case.orders:
        for job in (PRODUCTS, CUSTOMERS):
            assert cli(runner, "run", str(job), *target).exit_code in (0, 1)
    job = str(case.job)
    checked = cli(runner, "validate", job, *target)
    assert checked.exit_code in (0, 1), checked.output
    planned = cli(runner, "plan", job, *target, "--json")
    assert planned.exit_code in (0, 1), planned.output
    result = json.loads(planned.stdout)
    assert result["entity"] == case.entity and result["job"] == case.job.stem
    ran = cli(runner, "run", job, *target, "--json")
    assert ran.exit_code in (0, 1), ran.output
    summary = json.loads(ran.stdout)
    assert summary["balanced"] and summary["entity"] == case.entity
    assert (result["create"], result["update"], result["reject"]) == (
        summary["created"],
        summary["updated"],
        summary["rejected"],
    )
