"""Warnings that reach the user: values sent as they are but worth a look, for every entity,
shown by `run`, `plan` and `validate` on the terminal, in `--json` and in the warnings file
beside the rejects file, with row numbers; never counted as rejects. And the rejects file
names the record's key for every kind of reject (a row that could not be parsed, a row an
expectation flags), so that `why` finds it. Runs go over loopback HTTP to the emulator."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import API_KEY, all_products

from pipelines.cli import main

PRODUCTS = """\
sku,name,price,moq,step,weight,unit,dims,dunit
ART-10001,Plain,10.00,1,1,1.5,kg,10x8x4,cm
ART/10002,Slash,10.00,1,1,1.5,kg,10x8x4,cm
ART-10003,Stone,10.00,1,1,1.5,stone,10x8x4,cm
ART-10004,Free,0,1,1,1.5,kg,10x8x4,cm
ART-10005,Bare weight,10.00,1,1,2.0,,10x8x4,cm
ART-10006,Off step,10.00,10,6,1.5,kg,10x8x4,cm
ART-10007,Cubits,10.00,1,1,1.5,kg,10x8x4,cubit
ART-10008,Negative,-1,1,1,1.5,kg,10x8x4,cm
ART-10009,Too,many,fields,1,1,1.5,kg,10x8x4,cm
ART/10010,Slash and negative,-5,1,1,1.5,stone,10x8x4,cm
"""
PRODUCTS_JOB = {
    "job": "wares",
    "entity": "products",
    "key": "sku",
    "fields": {
        "sku": "sku",
        "name": "name",
        "price": "price",
        "minimumOrderQuantity": "moq",
        "quantityIncrement": "step",
        "weight": "weight",
        "weightUnit": "unit",
        "dimensions": "dims",
        "dimensionsUnit": "dunit",
        "currencyCode": {"value": "USD"},
    },
}
# (code, source column) → (rows, values): every warning of the feed above. Rows 9-11 are
# rejected (a negative price, a row of too many fields): they are not warned about.
PRODUCT_WARNINGS = {
    ("slash_in_sku", "sku"): ([3], ["ART/10002"]),
    ("uncommon_unit", "unit"): ([4], ["stone"]),
    ("zero_price", "price"): ([5], ["0.0"]),
    ("weight_without_unit", "unit"): ([6], ["2.0"]),
    ("minimum_off_step", "moq"): ([7], ["10"]),
    ("uncommon_unit", "dunit"): ([8], ["cubit"]),
}
PRODUCT_KEYS = {3: "ART/10002"} | {row: f"ART-1000{row - 1}" for row in range(4, 9)}  # row → key


def write_job(tmp_path: Path, spec: dict, **sources: str) -> Path:
    """A job file in ``tmp_path`` whose sources are files written there (name → text)."""
    for name, text in sources.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    path = tmp_path / f"{spec['job']}.yml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def cli(tmp_path: Path, *args: str):
    state = str(tmp_path / "state")
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": state, "NYMBLE_LEDGER_URL": None}
    return CliRunner(env=env).invoke(main, list(args))


def run_json(tmp_path: Path, job: Path, emulator, *args: str) -> dict:
    """``run JOB --json`` against the emulator: the JSON summary."""
    return json.loads(
        cli(tmp_path, "run", str(job), "--target", emulator.base_url, "--json", *args).stdout
    )


def shown(data: dict) -> dict[tuple[str, str | None], tuple[list[int], list[str | None]]]:
    """The ``warnings`` of a JSON summary as (code, column) → (example rows, values)."""
    return {
        (w["code"], w["column"]): (
            [e["row"] for e in w["examples"]],
            [e["value"] for e in w["examples"]],
        )
        for w in data["warnings"]
    }


def file_rows(path: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def in_file(path: str) -> dict[tuple[str, str | None], list[int]]:
    found: dict[tuple[str, str | None], list[int]] = {}
    for r in file_rows(path):
        found.setdefault((r["rule"], r["column"] or None), []).append(int(r["row"]))
    return found


def assert_in_text(text: str, expected: dict) -> None:
    lines = [line.strip() for line in text.splitlines()]
    for (code, column), (rows, values) in expected.items():
        start = f"warning: {column}: " if column else "warning: "
        [line] = [x for x in lines if x.startswith(start) and f"[{code}]" in x]
        assert f"{len(rows)} row(s), e.g. row {rows[0]} ({values[0]!r})" in line, line


@pytest.fixture
def wares(tmp_path):
    spec = PRODUCTS_JOB | {"source": {"type": "csv", "path": str(tmp_path / "wares.csv")}}
    return write_job(tmp_path, spec, wares=PRODUCTS)


def test_product_warnings_reach_the_terminal_the_json_and_a_file_and_reject_nothing(
    wares, emulator, api, tmp_path
):
    result = cli(tmp_path, "run", str(wares), "--target", emulator.base_url, "--json")
    assert result.exit_code == 1, result.output  # some rows were rejected
    data = json.loads(result.stdout)
    assert shown(data) == PRODUCT_WARNINGS
    assert all(w["count"] == 1 for w in data["warnings"])
    # warnings are in no bucket: the balance holds, the warned rows were sent as they are
    assert (data["rows_read"], data["created"], data["rejected"]) == (10, 7, 3)
    assert data["balanced"] is True
    held = all_products(api)
    assert held["ART/10002"]["sku"] == "ART/10002" and held["ART-10004"]["price"] == 0
    assert held["ART-10003"]["weightUnit"] == "stone"
    assert set(held) == {f"ART-1000{i}" for i in (1, 3, 4, 5, 6, 7)} | {"ART/10002"}

    path = data["warnings_path"]
    assert path == data["rejects_path"].removesuffix(".csv") + ".warnings.csv"
    assert in_file(path) == {kind: rows for kind, (rows, _) in PRODUCT_WARNINGS.items()}
    assert {int(r["row"]): r["external_id"] for r in file_rows(path)} == PRODUCT_KEYS
    rejected = {int(r["row"]): r["rule"] for r in file_rows(data["rejects_path"])}
    assert rejected == {9: "negative_price", 10: "malformed_row", 11: "negative_price"}

    # a rerun sends nothing, so it warns about nothing; --full sends (and warns) again
    again = run_json(tmp_path, wares, emulator)
    assert (again["unchanged"], again["warnings"], again["warnings_path"]) == (7, [], None)
    # a changed row is mapped again, though the memo recalls the rest: its warning shows
    (tmp_path / "wares.csv").write_text(PRODUCTS.replace(",Stone,", ",Stone v2,"))
    changed = run_json(tmp_path, wares, emulator)
    assert (changed["updated"], changed["unchanged"]) == (1, 6)
    assert shown(changed) == {("uncommon_unit", "unit"): ([4], ["stone"])}
    text = cli(tmp_path, "run", str(wares), "--target", emulator.base_url, "--full").stdout
    assert_in_text(text, PRODUCT_WARNINGS)
    assert "warnings: " in text and ".warnings.csv (sent as they are; not rejects)" in text


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_validate_and_plan_show_the_same_warnings(command, wares, emulator, tmp_path):
    target = ["--target", emulator.base_url]
    data = json.loads(cli(tmp_path, command, str(wares), *target, "--json").stdout)
    assert shown(data) == PRODUCT_WARNINGS
    assert in_file(data["warnings_path"]) == {k: r for k, (r, _) in PRODUCT_WARNINGS.items()}
    assert data["warnings_path"].endswith(f"wares-{command}.warnings.csv")
    assert_in_text(cli(tmp_path, command, str(wares), *target).stdout, PRODUCT_WARNINGS)


CUSTOMERS = """\
customer_number,company_name,email,tier,bill,ship,contact
C-1,Good,orders@good.example,Wholesale,1 Main St,2 Dock Rd,ann@good.example
C-2,No at,orders.noat.example,Wholesale,1 Main St,2 Dock Rd,bob@noat.example
C-3,No ship,orders@noship.example,Wholesale,1 Main St,,cy@noship.example
C-4,Bad contact,orders@contact.example,Wholesale,1 Main St,2 Dock Rd,nobody
C-5,,orders@noname.example,Wholesale,,,nobody
"""
CUSTOMERS_JOB = {
    "job": "accounts",
    "entity": "customers",
    "key": "customer_number",
    "fields": {"companyName": "company_name", "companyEmail": "email", "pricing": "tier"},
    "addresses": [
        {"addressType": {"value": "Billing"}, "address1": "bill"},
        {"addressType": {"value": "Shipping"}, "address1": "ship"},
    ],
    "contacts": [{"email": "contact"}],
}
CUSTOMER_WARNINGS = {
    ("email_without_at", "email"): ([3], ["orders.noat.example"]),
    ("missing_address", None): ([4], ["shipping"]),
    ("email_without_at", "contact"): ([5], ["nobody"]),
}


def test_customer_warnings_are_shown_and_the_customers_sent(emulator, api, tmp_path):
    spec = CUSTOMERS_JOB | {"source": {"type": "csv", "path": str(tmp_path / "accounts.csv")}}
    job = write_job(tmp_path, spec, accounts=CUSTOMERS)
    result = cli(tmp_path, "run", str(job), "--target", emulator.base_url, "--json")
    data = json.loads(result.stdout)
    assert shown(data) == CUSTOMER_WARNINGS
    assert (data["created"], data["rejected"], data["balanced"]) == (4, 1, True)  # C-5: no name
    assert api.get("/api/customers/C-2").json()["companyEmail"] == "orders.noat.example"
    assert in_file(data["warnings_path"]) == {k: r for k, (r, _) in CUSTOMER_WARNINGS.items()}
    keys = {int(r["row"]): r["external_id"] for r in file_rows(data["warnings_path"])}
    assert keys == {3: "C-2", 4: "C-3", 5: "C-4"}
    text = cli(tmp_path, "run", str(job), "--target", emulator.base_url, "--full").stdout
    assert "warning: email: companyEmail has no '@'" in text
    assert "warning: contact: contacts[0].email has no '@'" in text
    assert "warning: no billing or no shipping address" in text and "row 4 ('shipping')" in text


ORDERS = """\
order_id,order_number,customer_number,order_date
1,SO-1,C-1,2024-05-30T14:05:00
2,SO-2,C-1,2099-01-01T00:00:00
3,SO-3,C-1,2024-05-30T15:00:00
4,SO-4,C-1,2024-05-30T16:00:00
"""
LINES = """\
order_id,sku,qty,price
1,P-1,2,10.00
2,P-1,1,10.00
3,P-1,1,10.00
3,P-1,5,0
4,P-1,1,10.00,oops
"""
ORDERS_JOB = {
    "job": "sales",
    "entity": "orders",
    "key": "order_id",
    "timezone": "UTC",
    "fields": {
        "orderNumber": "order_number",
        "orderDate": "order_date",
        "customer.customerNumber": "customer_number",
    },
    "items": {"key": "order_id", "sku": "sku", "quantity": "qty", "price": "price"},
}
ORDER_WARNINGS = {
    ("future_order_date", "order_date"): ([3], ["2099-01-01T00:00:00Z"]),
    ("zero_price_line", "price"): ([4], ["line 2: 0.0000"]),
}


def test_order_warnings_are_shown_and_an_unreadable_line_names_its_order(emulator, api, tmp_path):
    api.post("/api/products/bulk", json=[{"externalId": "P-1", "sku": "P-1", "name": "P"}])
    customer = {"customerNumber": "C-1", "companyName": "C", "companyEmail": "c@c.example"}
    api.put("/api/customers", json=customer | {"pricing": "Wholesale"}).raise_for_status()
    spec = ORDERS_JOB | {"source": {"type": "csv", "path": str(tmp_path / "sales.csv")}}
    lines = {"type": "csv", "path": str(tmp_path / "lines.csv")}
    spec["items"] = spec["items"] | {"source": lines}
    job = write_job(tmp_path, spec, sales=ORDERS, lines=LINES)
    data = run_json(tmp_path, job, emulator)
    assert shown(data) == ORDER_WARNINGS
    assert (data["created"], data["rejected"], data["balanced"]) == (3, 1, True)
    assert api.get("/api/orders/SO-2").json()["orderDate"].startswith("2099-01-01")
    assert in_file(data["warnings_path"]) == {k: r for k, (r, _) in ORDER_WARNINGS.items()}
    rejects = {(r["rule"], r["row"]): r["external_id"] for r in file_rows(data["rejects_path"])}
    assert rejects == {  # order 4 (row 5 of sales.csv): its line (row 6 of lines.csv) is bad
        ("malformed_line", "5"): "4",
        ("no_items", "5"): "4",
        ("malformed_row", "6"): "4",
    }
    text = cli(tmp_path, "run", str(job), "--target", emulator.base_url, "--full").stdout
    assert_in_text(text, ORDER_WARNINGS)


# --- every reject carries the record's key ---------------------------------------------------


def test_expectation_and_unparsed_rows_name_their_key_and_why_finds_them(wares, emulator, tmp_path):
    spec = yaml.safe_load(wares.read_text())
    spec["expectations"] = [
        {"expectation": "expect_column_values_to_be_between", "column": "price", "max_value": 5}
    ]
    wares.write_text(yaml.safe_dump(spec))
    data = run_json(tmp_path, wares, emulator)
    rows = file_rows(data["rejects_path"])
    rejects = {int(r["row"]): (r["external_id"], r["rule"]) for r in rows}
    flagged = {row: rule for row, (_key, rule) in rejects.items()}
    expected = [2, 3, 4, 6, 7, 8]  # every price above 5 (row 5's is 0)
    assert [row for row, rule in flagged.items() if rule.startswith("expectation:")] == expected
    assert all(key for key, _rule in rejects.values()), rejects
    assert rejects[2] == ("ART-10001", "expectation:expect_column_values_to_be_between")
    assert rejects[10] == ("ART-10009", "malformed_row")
    state = tmp_path / "state"
    env = {"NYMBLE_SYNC_HOME": str(state), "NYMBLE_LEDGER_URL": None}
    for key, rule in (("art-10009", "malformed_row"), ("art-10001", "expectation:")):
        story = json.loads(CliRunner(env=env).invoke(main, ["why", key, "--json"]).stdout)
        assert [r["rule"][: len(rule)] for r in story["rejects"]] == [rule], story


def test_a_customer_flagged_by_an_expectation_is_named_by_its_number(emulator, tmp_path):
    short = {"expectation": "expect_column_value_lengths_to_be_between", "column": "companyName"}
    spec = CUSTOMERS_JOB | {
        "source": {"type": "csv", "path": str(tmp_path / "accounts.csv")},
        "expectations": [short | {"min_value": 6}],
    }
    job = write_job(tmp_path, spec, accounts=CUSTOMERS)
    data = run_json(tmp_path, job, emulator)
    rejects = {r["external_id"]: r["rule"] for r in file_rows(data["rejects_path"])}
    flagged = "expectation:expect_column_value_lengths_to_be_between"
    assert rejects == {"C-1": flagged, "C-2": flagged, "C-5": "required"}  # "Good", "No at"
