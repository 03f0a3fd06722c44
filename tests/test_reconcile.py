"""`reconcile` over real HTTP against the emulator: a migration of products, customers and
orders reconciles clean; changes made behind the tool's back (an order deleted, a line's price
edited, products added by hand, a customer's currency changed) are each named, with the money
per currency and month off by exactly the amounts edited; `--fix` repairs what the source owns.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pytest
from click.testing import CliRunner
from helpers import API_KEY, job_for, run_sync
from orders_helpers import CUSTOMERS, ORDERS_CSV, PRODUCTS, prepare_target, run_entity
from test_mirror import SAMPLE, drop_rows, mirror_job

from pipelines.cli import main
from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig
from pipelines.errors import TransportError
from pipelines.jobs.job_file import load_job
from pipelines.load.pacing import Pacer
from pipelines.load.paged_reads import PagedReads
from pipelines.load.sender import RetryPolicy
from pipelines.run.commands import ReconcileSettings, reconcile
from pipelines.transform.canonical_compare import differences, parse_exact
from pipelines.transform.fast_projection import canonical_page
from pipelines.transform.order_money import OrderMoney, order_money
from pipelines.transform.projection import Projection

PRICE_RAISE = Decimal("1.25")


@pytest.fixture
def migrated(tmp_path):
    """An emulator keeping its data in a file (so a test can delete behind the API's back),
    holding the sample migration: products, customers, then orders."""
    db = tmp_path / "emulator.sqlite"
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, db_path=str(db))
    with Emulator.start(settings) as emulator:
        prepare_target(emulator, tmp_path)
        run_entity(ORDERS_CSV, emulator, tmp_path)
        emulator.db = db
        yield emulator


@pytest.fixture
def api(migrated):
    """A client of the migrated emulator, for changes behind the tool's back."""
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    with httpx.Client(base_url=migrated.base_url, headers=headers) as client:
        yield client


def reconcile_for(job: Path, emulator, tmp_path: Path, **options):
    return reconcile(
        ReconcileSettings(
            job_path=job,
            target=emulator.base_url,
            state_dir=tmp_path / "state",
            environ={"NYMBLE_API_KEY": API_KEY},
            log=lambda _: None,
            **options,
        )
    )


def get(api, path: str) -> dict:
    """A record as the API returns it, numbers as exact decimals."""
    response = api.get(path)
    assert response.is_success, response.text
    return json.loads(response.text, parse_float=Decimal)


def exact_json(value) -> bytes:
    """JSON with each Decimal written as its digits (``100.10``), as an ERP would send it."""
    return orjson.dumps(value, default=lambda d: orjson.Fragment(format(d, "f")))


def post_orders(api, orders: list[dict]) -> None:
    response = api.post("/api/orders/bulk", content=exact_json(orders))
    assert response.is_success and response.json()["failedCount"] == 0, response.text


def differences_csv(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def money_by_group(result) -> dict[tuple[str, str], dict]:
    return {(row["currency"], row["month"]): row for row in result.money}


def test_a_migration_reconciles_clean(migrated, tmp_path):
    for job, compared, rejected in ((PRODUCTS, 1994, 6), (CUSTOMERS, 300, 0), (ORDERS_CSV, 491, 9)):
        result = reconcile_for(job, migrated, tmp_path)
        assert result.agrees and result.exit_code == 0, result.samples
        assert (result.compared, result.agree, result.target_records) == (compared,) * 3
        assert (result.source_rejected, result.differences) == (rejected, 0)
        assert result.differences_path is None
    assert all(not row["differs"] for row in result.money)
    assert sum(row["orders_source"] for row in result.money) == 491
    assert result.linkage.orders_checked == 491 and result.linkage.customers_missing == 0


def test_changes_behind_the_tools_back_are_each_named(migrated, api, tmp_path):
    deleted, edited = _two_orders_in_different_months(api)
    before = order_money(deleted)
    with sqlite3.connect(migrated.db) as conn:  # the API has no delete for orders (§3.1)
        conn.execute("DELETE FROM orders WHERE external_id = ?", (deleted["externalId"],))
    line = edited["items"][1]
    _raise_line_price(api, edited, 1)
    _add_products_by_hand(api)
    customer = _change_currency_of_a_customer(api)

    orders = reconcile_for(ORDERS_CSV, migrated, tmp_path)
    assert not orders.agrees and orders.exit_code == 1
    assert (orders.missing, orders.differ, orders.agree) == (1, 1, 489)
    rows = differences_csv(orders.differences_path)
    assert {(r["key"], r["kind"], r["field"]) for r in rows} == {
        (deleted["externalId"], "missing", ""),
        *((edited["externalId"], "differs", path) for path in _edited_paths()),
    }
    price = next(r for r in rows if r["field"] == "items[1].price")
    assert Decimal(price["target_value"]) - Decimal(price["source_value"]) == PRICE_RAISE
    assert Decimal(price["source_value"]) == line["price"]
    groups = money_by_group(orders)
    gone, raised = _group(deleted), _group(edited)
    amount = line["quantity"] * PRICE_RAISE
    assert groups[gone]["orders_target"] == groups[gone]["orders_source"] - 1
    assert groups[gone]["order_total_difference"] == -before.order_total
    assert groups[gone]["line_total_difference"] == -before.line_total
    assert groups[gone]["shipping_difference"] == -before.shipping
    assert groups[raised]["order_total_difference"] == amount
    assert groups[raised]["line_total_difference"] == amount
    assert groups[raised]["shipping_difference"] == 0
    assert {k for k, row in groups.items() if row["differs"]} == {gone, raised}

    customers = reconcile_for(CUSTOMERS, migrated, tmp_path)
    assert (customers.differ, customers.missing, customers.exit_code) == (1, 0, 1)
    [change] = differences_csv(customers.differences_path)
    assert change == {
        "key": customer["customerNumber"],
        "kind": "differs",
        "field": "currencyCode",
        "source_value": customer["currencyCode"],
        "target_value": "EUR",
    }

    products = reconcile_for(PRODUCTS, migrated, tmp_path)
    assert (products.unowned, products.differ, products.missing) == (2, 0, 0)
    assert products.agrees  # nothing the source holds is amiss; strangers are only named
    named = {
        (r["key"], r["field"], r["target_value"])
        for r in differences_csv(products.differences_path)
    }
    assert named == {("HAND-0002", "", ""), ("", "sku", "HAND-0001")}


def test_fix_sends_what_the_source_owns_and_a_second_reconcile_is_clean(migrated, api, tmp_path):
    deleted, edited = _two_orders_in_different_months(api)
    with sqlite3.connect(migrated.db) as conn:
        conn.execute("DELETE FROM orders WHERE external_id = ?", (deleted["externalId"],))
    _raise_line_price(api, edited, 1)
    _change_currency_of_a_customer(api)
    _add_products_by_hand(api)
    fixed = reconcile_for(ORDERS_CSV, migrated, tmp_path, fix=True)
    run = fixed.fix_run
    assert (run["created"], run["updated"], run["unchanged"], run["failed"]) == (1, 1, 489, 0)
    assert fixed.agrees and fixed.exit_code == 0
    assert (
        get(api, f"/api/orders/{edited['orderNumber']}")["items"][1]["price"]
        == (edited["items"][1]["price"])
    )
    assert reconcile_for(CUSTOMERS, migrated, tmp_path, fix=True).fix_run["updated"] == 1
    products = reconcile_for(PRODUCTS, migrated, tmp_path, fix=True)
    assert products.fix_run is None and products.unowned == 2  # not the source's to touch
    for job in (ORDERS_CSV, CUSTOMERS):
        again = reconcile_for(job, migrated, tmp_path)
        assert again.agrees and (again.missing, again.differ, again.fix_run) == (0, 0, None)


def test_linkage_names_orders_whose_customer_is_gone_and_sums_their_invoices(
    migrated, api, tmp_path
):
    first, second = get(api, "/api/orders?pageSize=2")["data"]
    invoices = [
        {"orderId": first["id"], "status": "Issued", "currencyCode": "USD",
         "total": Decimal("100.10"), "balanceDue": Decimal("100.10")},
        {"orderId": first["id"], "status": "Paid", "currencyCode": "USD",
         "total": Decimal("20.00"), "balanceDue": 0},
        {"orderId": second["id"], "status": "PartiallyPaid", "currencyCode": "USD",
         "total": Decimal("50.05"), "balanceDue": Decimal("25.02")},
        {"orderId": "not-an-order", "status": "Draft", "total": 1},
    ]  # fmt: skip
    body = exact_json({"org": "org_test", "invoices": invoices})
    seeded = api.post("/_emulator/invoices", content=body)
    assert seeded.status_code == 201, seeded.text
    number = first["customer"]["customerNumber"]
    with sqlite3.connect(migrated.db) as conn:
        conn.execute("DELETE FROM customers WHERE number_lower = ?", (number.casefold(),))
    theirs = [o for o in _all_orders(api) if o["customer"]["customerNumber"] == number]

    result = reconcile_for(ORDERS_CSV, migrated, tmp_path)
    link = result.linkage
    assert link.customers_missing == len(theirs) and result.exit_code == 1
    named = [r for r in differences_csv(result.differences_path) if r["kind"] == "no_customer"]
    assert {(r["key"], r["source_value"]) for r in named} == {
        (o["externalId"], number) for o in theirs
    }
    assert (link.orders_with_invoices, link.invoices, link.invoices_of_other_orders) == (2, 3, 1)
    assert link.by_status == {
        ("Issued", "USD"): [1, Decimal("100.10"), Decimal("100.10")],
        ("Paid", "USD"): [1, Decimal("20.00"), Decimal(0)],
        ("PartiallyPaid", "USD"): [1, Decimal("50.05"), Decimal("25.02")],
    }


def test_the_command_prints_a_table_or_json_and_exits_1_on_a_difference(emulator, tmp_path):
    run_entity(CUSTOMERS, emulator, tmp_path)
    runner = CliRunner(env={"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path / "state")})
    args = ["reconcile", str(CUSTOMERS), "--target", emulator.base_url]
    clean = runner.invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert "source and target AGREE" in clean.stdout
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as api:
        _change_currency_of_a_customer(api)
    out = tmp_path / "diff.csv"
    found = runner.invoke(main, [*args, "--json", "--differences", str(out)])
    assert found.exit_code == 1, found.output
    data = json.loads(found.stdout)
    assert (data["agrees"], data["differ"], data["differences_path"]) == (False, 1, str(out))
    assert data["fields"] == {"currencyCode": 1}
    assert len(differences_csv(str(out))) == 1


def test_an_unreachable_target_is_a_transport_error_after_the_retries(tmp_path):
    fast = RetryPolicy(base_s=0.001, cap_s=0.001, attempts=3)
    with pytest.raises(TransportError, match="gave up after 3 attempts") as caught:
        reconcile(
            ReconcileSettings(
                job_path=CUSTOMERS,
                target="http://127.0.0.1:9",
                state_dir=tmp_path / "state",
                environ={"NYMBLE_API_KEY": API_KEY},
                log=lambda _: None,
                policy=fast,
            )
        )
    assert caught.value.exit_code == 6


def test_what_this_job_sent_and_the_source_lost_differs_until_mirror_mode_deactivates_it(
    emulator, tmp_path
):
    source, job = mirror_job(tmp_path)
    assert run_sync(job, emulator, tmp_path).created == 1994
    others = tmp_path / "others.csv"
    lines = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    others.write_text(lines[0] + "".join("X" + line for line in lines[1:4]), encoding="utf-8")
    (tmp_path / "other").mkdir()
    other_job = job_for(tmp_path / "other", others, job="other-products")
    assert run_sync(other_job, emulator, tmp_path).created == 3
    gone = drop_rows(source, lambda i: i not in (0, 1, 500))
    with SAMPLE.open(encoding="utf-8-sig", newline="") as file:
        active = {r["sku"].strip() for r in csv.DictReader(file) if r["status"] == "A"} & set(gone)
    assert 0 < len(active) < 3  # the sample: one of the three is inactive already

    before = reconcile_for(job, emulator, tmp_path)
    assert (before.gone, before.deactivated, before.other_job) == (len(active), 3 - len(active), 3)
    assert before.exit_code == 1
    assert {r["key"] for r in differences_csv(before.differences_path)} == active
    assert run_sync(job, emulator, tmp_path).deactivated == 3
    after = reconcile_for(job, emulator, tmp_path)
    assert (after.gone, after.deactivated, after.other_job, after.compared) == (0, 3, 3, 1991)
    assert after.agrees and after.differences_path is None


# --- the parts on their own ------------------------------------------------------------------


def test_pages_are_read_in_parallel_each_record_once_through_server_errors(emulator):
    products = [
        {"externalId": f"P-{i:03d}", "sku": f"P-{i:03d}", "name": "Part", "price": 1,
         "active": i % 3 != 0}
        for i in range(450)
    ]  # fmt: skip
    headers = {"x-api-key": API_KEY}
    with httpx.Client(base_url=emulator.base_url, headers=headers) as client:
        assert client.post("/api/products/bulk", json=products).is_success
        emulator.set_faults(FaultConfig(error_rate=0.3, drop_rate=0.05, seed=3))
        fast = RetryPolicy(base_s=0.001, cap_s=0.001, attempts=12)
        reads = PagedReads(client, pacer=Pacer(4), policy=fast, workers=4)
        skus = [
            p["sku"]
            for active in ("true", "false")
            for page in reads.pages("/api/products", ("Active", "equals", active))
            for p in page
        ]
    assert sorted(skus) == [p["sku"] for p in products]
    assert reads.retries > 0 and reads.requests == 5 + reads.retries  # 3 + 2 pages


def test_api_records_are_typed_as_the_job_sends_them_whatever_their_spelling():
    projection = Projection(
        pa.schema([("externalId", pa.string()), ("quantityOnHand", pa.int64())])
    )
    spelled = [{"externalId": "A", "quantityOnHand": 3, "extra": 1}]
    other = [{"ExternalId": "A", "QUANTITYONHAND": 3}]
    unfit = [spelled[0], {"externalId": "B", "quantityOnHand": "twelve"}]
    (body,), (content,) = canonical_page(projection, spelled)
    other_bodies, other_hashes = canonical_page(projection, other)
    assert (other_bodies, list(other_hashes)) == ([body], [content])
    bodies, hashes = canonical_page(projection, unfit)
    assert bodies == [
        b'{"externalId":"A","quantityOnHand":3}',
        b'{"externalId":"B","quantityOnHand":"twelve"}',
    ]
    assert list(hashes) == [content, 0]


def test_lines_pair_by_sku_and_position_and_empty_fields_are_the_targets_to_fill():
    sent = parse_exact(
        b'{"currencyCode":null,"orderDate":"2024-05-30T19:05:00Z","items":['
        b'{"sku":"A","quantity":2,"price":18.50},{"sku":"B","quantity":1,"price":3}]}'
    )
    held = parse_exact(
        b'{"currencyCode":"USD","orderDate":"2024-05-30T14:05:00-05:00","items":['
        b'{"sku":"B","quantity":1,"price":3.00},{"sku":"A","quantity":2,"price":18.5}]}'
    )
    assert differences(held, sent) == {}
    held["items"][1]["price"] = Decimal("18.49")
    held["items"].append({"sku": "C", "quantity": Decimal(1), "price": Decimal(1)})
    assert differences(held, sent) == {
        "items[0].price": [Decimal("18.49"), Decimal("18.50")],
        "items[2].price": [Decimal(1), None],
        "items[2].quantity": [Decimal(1), None],
        "items[2].sku": ["C", None],
    }


def test_order_money_is_exact_and_computes_a_missing_total_as_the_api_does():
    order = parse_exact(
        b'{"currencyCode":"CAD","orderDate":"2024-01-31T23:30:00-05:00","tax":0.07,'
        b'"shippingDetails":{"shippingTotal":0.1},'
        b'"items":[{"quantity":3,"price":0.1},{"quantity":1,"price":0.2,"lineTotal":0.15}]}'
    )
    money = order_money(order)
    assert money == OrderMoney("CAD", "2024-02", Decimal("0.62"), Decimal("0.5"), Decimal("0.1"))
    assert OrderMoney.from_bytes(money.to_bytes()) == money


def _edited_paths() -> set[str]:
    """The fields an edited line price shows in: the price, and the totals the job sends."""
    job = load_job(ORDERS_CSV)
    paths = {"items[1].price"}
    if {"lineTotal", "discount"} & set(job.items.columns()):
        paths.add("items[1].lineTotal")
    return paths | {name for name in ("subtotal", "orderTotal") if name in job.fields}


def _all_orders(api) -> list[dict]:
    found, page = [], 1
    while True:
        body = get(api, f"/api/orders?pageSize=100&pageNumber={page}")
        found += body["data"]
        if page >= body["totalPages"]:
            return found
        page += 1


def _group(order: dict) -> tuple[str, str]:
    return order["currencyCode"], order["orderDate"][:7]


def _two_orders_in_different_months(api) -> tuple[dict, dict]:
    orders = _all_orders(api)
    first = orders[0]
    second = next(o for o in orders if len(o["items"]) > 1 and _group(o) != _group(first))
    return first, second


def _raise_line_price(api, order: dict, line: int) -> None:
    """The line's price raised by PRICE_RAISE; its total and the order's moved alike, as an
    edit in the target's UI would move them."""
    body = {k: v for k, v in order.items() if k not in ("id", "createdAt", "updatedAt")}
    body = {k: v for k, v in body.items() if not k.endswith("Formatted")}
    items = [{k: v for k, v in i.items() if not k.endswith("Formatted")} for i in order["items"]]
    amount = items[line]["quantity"] * PRICE_RAISE
    items[line] = {**items[line], "price": items[line]["price"] + PRICE_RAISE}
    items[line]["lineTotal"] += amount
    body |= {"items": items, "subtotal": body["subtotal"] + amount}
    body["orderTotal"] += amount
    post_orders(api, [body])


def _add_products_by_hand(api) -> None:
    for product in ({"sku": "HAND-0001"}, {"sku": "HAND-0002", "externalId": "HAND-0002"}):
        body = product | {"name": "Added by hand", "price": 9.99, "currencyCode": "USD"}
        assert api.put("/api/products", json=body).is_success


def _change_currency_of_a_customer(api) -> dict:
    """A customer whose source row sets a currency (USD): its currency becomes EUR."""
    with open("sample_data/customers.csv", encoding="utf-8", newline="") as file:
        row = next(r for r in csv.DictReader(file) if r["currency"] == "USD")
    stored = get(api, f"/api/customers/{row['customer_number']}")
    assert api.put("/api/customers", json={**stored, "currencyCode": "EUR"}).is_success
    return {"customerNumber": row["customer_number"], "currencyCode": "USD"}
