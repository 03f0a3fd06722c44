"""A migration's orders keep the totals their ERP computed (CONTRACT §3.5), over real HTTP
against the emulator: an ERP database (SQLite here, PostgreSQL when the server is up) whose
lines carry discounts (a percentage or an amount, each ERP rounding its own way) and whose
headers carry tax, shipping and totals. Every order lands with the ERP's money to the cent,
read back as exact decimals; orders whose totals do not add up are rejected naming both sums;
a second run sends nothing; a plan names a changed line total as the one field that differs.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from helpers import API_KEY
from orders_helpers import ERP, order, prepare_target, read_csv, rejects_by_id, run_entity

from pipelines.errors import JobFileError
from pipelines.jobs.job_file import load_job
from pipelines.run.commands import PlanSettings, plan

CENT = Decimal("0.01")
MODES = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}
TAX_RATE = Decimal("0.0825")
ORDERS = 40
NEAR = 38  # its subtotal is 0.01 off its lines: within the default tolerance, sent as it is
OFF_LINES = 39  # its subtotal is 1.00 more than its lines
OFF_TOTAL = 40  # its orderTotal is 0.50 more than subtotal + tax + shipping
CATALOG = {f"TOT-{i:03d}": price for i, price in enumerate(
    ["10.05", "10.07", "1.235", "1.245", "19.99", "7.50", "0.333", "120.00", "4.995"], start=1
)}  # fmt: skip
# Order 1's lines: half a cent before rounding, once rounding down to even, once up.
TIES = {
    "percent": [("TOT-001", 1, "50"), ("TOT-002", 1, "50")],  # 5.025, 5.035
    "fraction": [("TOT-001", 1, "0.5"), ("TOT-002", 1, "0.5")],  # 5.025, 5.035
    "amount": [("TOT-003", 3, "0.00"), ("TOT-004", 1, "0.10")],  # 3.705, 1.145
}
SHARES = ["0", "5", "10", "12.5", "33.33"]  # per cent off a line


# --- the ERP --------------------------------------------------------------------------------


@dataclass
class Erp:
    """An ERP's orders and lines as it stores them, its totals computed its own way."""

    kind: str  # how its lines store a discount: percent, fraction or amount
    mode: str  # how it rounds a discounted line total
    orders: list[dict]
    lines: list[dict]

    def line_total(self, qty: int, price: str, discount: str) -> Decimal:
        gross, off = qty * Decimal(price), Decimal(discount)
        net = {
            "percent": gross * (1 - off / 100),
            "fraction": gross * (1 - off),
            "amount": gross - off,
        }[self.kind]
        return net.quantize(CENT, MODES[self.mode])

    def by_number(self) -> dict[str, tuple[dict, list[dict]]]:
        lines: dict[int, list[dict]] = {}
        for line in self.lines:
            lines.setdefault(line["order_id"], []).append(line)
        return {o["order_number"]: (o, lines[o["order_id"]]) for o in self.orders}


def make_erp(kind: str, mode: str = "half_up") -> Erp:
    rng = random.Random(16)
    erp = Erp(kind, mode, [], [])
    for order_id in range(1, ORDERS + 1):
        picked = TIES[kind] if order_id == 1 else _random_lines(rng, kind)
        for line_no, (sku, qty, discount) in enumerate(picked, start=1):
            total = erp.line_total(qty, CATALOG[sku], discount)
            erp.lines.append({
                "order_id": order_id, "line_no": line_no, "sku": sku, "qty": qty,
                "unit_price": CATALOG[sku], "discount": discount, "line_total": total,
            })  # fmt: skip
        subtotal = sum(li["line_total"] for li in erp.lines if li["order_id"] == order_id)
        subtotal += {NEAR: CENT, OFF_LINES: Decimal("1.00")}.get(order_id, 0)
        tax = (subtotal * TAX_RATE).quantize(CENT, ROUND_HALF_UP)
        shipping = Decimal(rng.choice(["0.00", "12.00", "18.75"]))
        total = subtotal + tax + shipping + (Decimal("0.50") if order_id == OFF_TOTAL else 0)
        erp.orders.append({
            "order_id": order_id, "order_number": f"SO-{900 + order_id}",
            "customer_number": "CUST-T1", "currency": "USD", "subtotal": subtotal, "tax": tax,
            "ship_total": shipping, "order_total": total,
        })  # fmt: skip
    return erp


def _random_lines(rng: random.Random, kind: str) -> list[tuple[str, int, str]]:
    picked = []
    for sku in rng.sample(sorted(CATALOG), rng.randint(1, 4)):
        qty = rng.choice([1, 2, 3, 5, 12, 24])
        if kind == "percent":
            discount = rng.choice(SHARES)
        elif kind == "fraction":
            discount = str(Decimal(rng.choice(SHARES)) / 100)
        else:
            gross = qty * Decimal(CATALOG[sku])
            discount = str((gross * Decimal(rng.choice([0, 3, 7])) / 100).quantize(CENT))
        picked.append((sku, qty, discount))
    return picked


MONEY = {"subtotal", "tax", "ship_total", "order_total", "unit_price", "discount", "line_total"}


def store(erp: Erp, url: str) -> None:
    """The ERP's tables: NUMERIC money on a server, text in SQLite (as ERP exports keep it)."""
    server = not url.startswith("sqlite")
    money = sa.Numeric(14, 4) if server else sa.String(40)
    meta = sa.MetaData()
    key = {"primary_key": True, "autoincrement": False}
    orders = sa.Table(
        "orders", meta, sa.Column("order_id", sa.Integer, **key),
        *(sa.Column(c, sa.String(40)) for c in ("order_number", "customer_number", "currency")),
        *(sa.Column(c, money) for c in ("subtotal", "tax", "ship_total", "order_total")),
    )  # fmt: skip
    lines = sa.Table(
        "order_lines", meta, sa.Column("order_id", sa.Integer, **key),
        sa.Column("line_no", sa.Integer, **key), sa.Column("sku", sa.String(40)),
        sa.Column("qty", sa.Integer),
        *(sa.Column(c, money) for c in ("unit_price", "discount", "line_total")),
    )  # fmt: skip
    as_money = Decimal if server else str
    engine = sa.create_engine(url)
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            for table, rows in ((orders, erp.orders), (lines, erp.lines)):
                typed = [{k: as_money(v) if k in MONEY else v for k, v in r.items()} for r in rows]
                conn.execute(table.insert(), typed)
    finally:
        engine.dispose()


def write_job(tmp_path: Path, kind: str, mode: str = "half_up", **changes) -> Path:
    (tmp_path / "orders.sql").write_text(
        "SELECT order_id, order_number, customer_number, currency, subtotal, tax, ship_total, "
        "order_total FROM orders ORDER BY order_id"
    )
    (tmp_path / "lines.sql").write_text(
        "SELECT order_id, line_no, sku, qty, unit_price, discount, line_total "
        "FROM order_lines ORDER BY order_id, line_no"
    )
    sql = {"type": "sql", "url_env": "ERP_DATABASE_URL"}
    spec = {
        "job": "erp_totals",
        "entity": "orders",
        "source": {**sql, "query": str(tmp_path / "orders.sql")},
        "key": "order_id",
        "fields": {
            "orderNumber": "order_number",
            "currencyCode": "currency",
            "customer.customerNumber": "customer_number",
            "subtotal": "subtotal",
            "tax": "tax",
            "orderTotal": "order_total",
            "shippingDetails.shippingTotal": "ship_total",
        },
        "items": {
            "source": {**sql, "query": str(tmp_path / "lines.sql")},
            "sku": "sku",
            "quantity": "qty",
            "price": "unit_price",
            "discount": {"column": "discount", "kind": kind},
            "rounding": mode,
        },
    }
    for key, value in changes.items():
        node = spec
        *parents, last = key.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / "totals.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


def prepare_shop(api: httpx.Client) -> None:
    body = {"customerNumber": "CUST-T1", "companyName": "T", "companyEmail": "t@t.t",
            "pricing": "Retail"}  # fmt: skip
    assert api.put("/api/customers", json=body).is_success
    for sku in CATALOG:
        assert api.put("/api/products", json={"sku": sku, "name": sku, "price": 1}).is_success


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'erp.sqlite'}"


# --- the import -----------------------------------------------------------------------------


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> str:
    return sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.mark.parametrize("kind", ["percent", "amount"])
def test_every_order_lands_with_the_erps_totals_to_the_cent(emulator, api, tmp_path, backend, kind):
    erp = make_erp(kind)
    store(erp, backend)
    prepare_shop(api)
    job = write_job(tmp_path, kind)
    first = run_entity(job, emulator, tmp_path, url=backend)
    assert first.balanced and (first.rows_read, first.created, first.rejected) == (ORDERS, 38, 2)
    for number, (head, lines) in erp.by_number().items():
        got = order(api, number)
        if head["order_id"] in (OFF_LINES, OFF_TOTAL):
            assert got is None
            continue
        assert (got["subtotal"], got["tax"], got["orderTotal"]) == (
            head["subtotal"], head["tax"], head["order_total"],
        )  # fmt: skip
        assert got["shippingDetails"]["shippingTotal"] == head["ship_total"]
        assert [(i["sku"], i["quantity"], i["price"], i["lineTotal"]) for i in got["items"]] == [
            (li["sku"], li["qty"], Decimal(li["unit_price"]), li["line_total"]) for li in lines
        ]
    near = order(api, f"SO-{900 + NEAR}")  # sent as the ERP has it, not recomputed
    assert near["subtotal"] == sum(i["lineTotal"] for i in near["items"]) + CENT
    second = run_entity(job, emulator, tmp_path, url=backend)
    assert (second.unchanged, second.created, second.updated, second.batches) == (38, 0, 0, 0)


def test_orders_whose_totals_do_not_add_up_are_rejected_naming_both_sums(emulator, api, tmp_path):
    erp = make_erp("percent")
    store(erp, sqlite_url(tmp_path))
    prepare_shop(api)
    summary = run_entity(write_job(tmp_path, "percent"), emulator, tmp_path,
                         url=sqlite_url(tmp_path))  # fmt: skip
    rejects = rejects_by_id(summary.rejects_path)
    assert set(rejects) == {str(OFF_LINES), str(OFF_TOTAL)}
    head = erp.orders[OFF_LINES - 1]
    lines = sum(li["line_total"] for li in erp.lines if li["order_id"] == OFF_LINES)
    off = rejects[str(OFF_LINES)]
    assert (off["rule"], off["column"]) == ("subtotal_mismatch", "subtotal")
    assert off["value"] == f"subtotal {head['subtotal']:.2f} ≠ lines {lines:.2f}"
    assert off["message"] == (
        "subtotal: subtotal differs from the order's lines by more than 0.01 (totals.tolerance)"
    )
    head = erp.orders[OFF_TOTAL - 1]
    parts = head["subtotal"] + head["tax"] + head["ship_total"]
    off = rejects[str(OFF_TOTAL)]
    assert (off["rule"], off["column"]) == ("orderTotal_mismatch", "order_total")
    assert off["value"] == (
        f"orderTotal {head['order_total']:.2f} ≠ subtotal + tax + shipping {parts:.2f}"
    )


@pytest.mark.parametrize(
    ("totals", "rejected"),
    [
        ({"tolerance": 0}, {NEAR, OFF_LINES, OFF_TOTAL}),
        ({"tolerance": 1.5}, set()),
        ({"check": ["orderTotal"]}, {OFF_TOTAL}),
        ({"check": []}, set()),
    ],
    ids=["exact", "loose", "order-total-only", "unchecked"],
)
def test_the_job_states_the_tolerance_and_the_checks(emulator, api, tmp_path, totals, rejected):
    store(make_erp("amount"), sqlite_url(tmp_path))
    prepare_shop(api)
    job = write_job(tmp_path, "amount", totals=totals)
    summary = run_entity(job, emulator, tmp_path, url=sqlite_url(tmp_path))
    found = rejects_by_id(summary.rejects_path) if summary.rejects_path else {}
    assert set(found) == {str(i) for i in rejected}
    assert summary.created == ORDERS - len(rejected)


@pytest.mark.parametrize("mode", ["half_up", "half_even"])
@pytest.mark.parametrize("kind", ["percent", "fraction", "amount"])
def test_a_discounted_line_is_rounded_by_the_jobs_rule(emulator, api, tmp_path, kind, mode):
    erp = make_erp(kind, mode)
    store(erp, sqlite_url(tmp_path))
    prepare_shop(api)
    run_entity(write_job(tmp_path, kind, mode), emulator, tmp_path, url=sqlite_url(tmp_path))
    got = [i["lineTotal"] for i in order(api, "SO-901")["items"]]
    # half a cent before rounding on both lines: one rounds down to even, one up
    expected = {
        ("percent", "half_up"): ["5.03", "5.04"],
        ("percent", "half_even"): ["5.02", "5.04"],
        ("fraction", "half_up"): ["5.03", "5.04"],
        ("fraction", "half_even"): ["5.02", "5.04"],
        ("amount", "half_up"): ["3.71", "1.15"],
        ("amount", "half_even"): ["3.70", "1.14"],
    }[kind, mode]
    assert got == [Decimal(v) for v in expected]
    assert [li["line_total"] for li in erp.lines if li["order_id"] == 1] == got


@pytest.mark.parametrize(
    ("kind", "discount", "rule"),
    [
        ("percent", "120", "discount_out_of_range"),
        ("percent", "-5", "discount_out_of_range"),
        ("amount", "100000", "discount_out_of_range"),
        ("amount", "ten", "not_a_number"),
        ("fraction", "1.5", "discount_out_of_range"),
    ],
)
def test_a_line_discount_that_cannot_be_is_rejected_with_its_order(
    emulator, api, tmp_path, kind, discount, rule
):
    store(make_erp(kind), sqlite_url(tmp_path))
    with sqlite3.connect(tmp_path / "erp.sqlite") as db:
        db.execute(
            "UPDATE order_lines SET discount = ? WHERE order_id = 5 AND line_no = 1", (discount,)
        )
    prepare_shop(api)
    job = write_job(tmp_path, kind)  # its sums are off now too, but that is not news
    summary = run_entity(job, emulator, tmp_path, url=sqlite_url(tmp_path))
    [reject] = [r for r in read_csv(Path(summary.rejects_path)) if r["external_id"] == "5"]
    assert (reject["rule"], reject["column"], reject["value"]) == (
        rule, "discount", f"line 1: {discount}",
    )  # fmt: skip
    assert order(api, "SO-905") is None and summary.created == ORDERS - 3  # and 39, 40


# --- the sample ERP database ----------------------------------------------------------------


def test_the_sample_migration_lands_the_erps_money(emulator, api, tmp_path):
    """mappings/orders_sql_totals.yml on sample_data/erp.sqlite: every order that lands holds
    the ERP's subtotal, tax and total, and its lines the ERP's line totals, to the cent."""
    prepare_target(emulator, tmp_path)
    summary = run_entity(Path("mappings/orders_sql_totals.yml"), emulator, tmp_path)
    assert summary.balanced and (summary.created, summary.rejected) == (4965, 35)
    hand_edited = rejects_by_id(summary.rejects_path)["4242"]
    assert hand_edited["rule"] == "subtotal_mismatch"
    assert hand_edited["value"] == "subtotal 4761.18 ≠ lines 4760.18"
    with sqlite3.connect(ERP) as db:
        heads = {str(i): row for i, *row in db.execute(
            "SELECT order_id, subtotal, tax, order_total FROM orders"
        )}  # fmt: skip
        lines: dict[str, list[Decimal]] = {}
        for order_id, total in db.execute(
            "SELECT order_id, line_total FROM order_line_pricing ORDER BY order_id, line_no"
        ):
            lines.setdefault(str(order_id), []).append(Decimal(total))
    landed = 0
    for page in range(1, 51):
        body = api.get("/api/orders", params={"pageSize": 100, "pageNumber": page})
        for got in json.loads(body.text, parse_float=Decimal)["data"]:
            money = (got["subtotal"], got["tax"], got["orderTotal"])
            assert money == tuple(map(Decimal, heads[got["externalId"]]))
            assert [i["lineTotal"] for i in got["items"]] == lines[got["externalId"]]
            landed += 1
    assert landed == 4965


# --- plan -----------------------------------------------------------------------------------


def test_a_plan_after_one_line_total_changed_shows_exactly_that_field(emulator, api, tmp_path):
    """The job maps the ERP's own line totals; one moves by a cent (within the tolerance)."""
    store(make_erp("percent"), sqlite_url(tmp_path))
    prepare_shop(api)
    job = write_job(
        tmp_path, "percent", items__discount=None, items__rounding=None,
        items__lineTotal="line_total",
    )  # fmt: skip
    url = sqlite_url(tmp_path)
    assert run_entity(job, emulator, tmp_path, url=url).created == 38
    settings = PlanSettings(
        job_path=job, target=emulator.base_url, state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": url}, log=lambda _: None,
    )  # fmt: skip
    assert (plan(settings).unchanged, plan(settings).update) == (38, 0)
    with sqlite3.connect(tmp_path / "erp.sqlite") as db:
        (before,) = db.execute(
            "SELECT line_total FROM order_lines WHERE order_id = 7 AND line_no = 2"
        ).fetchone()
        after = Decimal(before) + CENT
        db.execute(
            "UPDATE order_lines SET line_total = ? WHERE order_id = 7 AND line_no = 2",
            (str(after),),
        )
    for against_api in (False, True):
        changed = plan(replace(settings, against_api=against_api))
        assert (changed.update, changed.unchanged, changed.reject) == (1, 37, 2)
        [sample] = changed.samples
        assert sample.external_id == "7"
        assert {k: [Decimal(str(v)) for v in pair] for k, pair in sample.changes.items()} == {
            "items[1].lineTotal": [Decimal(before), after]
        }


# --- the job file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"items__lineTotal": "line_total"}, "items.discount", "a line's total comes from one"),
        ({"items__rounding": None}, "items.rounding", "is required with items.discount"),
        ({"items__discount": None}, "items.rounding", "no discount is mapped"),
        ({"items__rounding": {"mode": "half_up", "places": 3}, "money_scale": 2},
         "items.rounding.places", "finer than money_scale (2)"),
        ({"items__rounding": "half_up", "money_scale": 1}, "items.rounding.places",
         "2 decimals is finer than money_scale (1)"),
        ({"items__discount": {"column": "discount", "kind": "percentage"}},
         "items.discount.kind", "'percent', 'fraction' or 'amount'"),
        ({"number": {"percent": True}}, "items.discount.kind", "reads '12.5%' as 0.125"),
        ({"items__rounding": "bankers"}, "items.rounding.mode", "'half_up' or 'half_even'"),
        ({"totals": {"tolerance": -1}}, "totals.tolerance", "greater than or equal to 0"),
        ({"totals": {"check": ["grandTotal"]}}, "totals.check.0", "'subtotal' or 'orderTotal'"),
    ],
    ids=["discount-and-line-total", "no-rounding", "rounding-alone", "places", "default-places",
         "kind", "percent-sign", "mode", "tolerance", "check"],
)  # fmt: skip
def test_job_file_mistakes_are_named(tmp_path, changes, key, words):
    with pytest.raises(JobFileError) as caught:
        load_job(write_job(tmp_path, "percent", **changes))
    assert any(p.key == key and words in p.message for p in caught.value.problems), [
        (p.key, p.message) for p in caught.value.problems
    ]


def test_a_tolerance_is_exact_and_defaults_to_a_cent(tmp_path):
    job = load_job(write_job(tmp_path, "percent", totals={"tolerance": 0.015}))
    assert job.totals.tolerance == Decimal("0.015")
    assert load_job(write_job(tmp_path, "amount")).totals.tolerance == Decimal("0.01")
