"""The customer sync end to end: one PUT per customer under bounded concurrency, change
detection through the ledger, and customers before orders."""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers import run_sync
from orders_helpers import (
    CUSTOMERS,
    ORDERS_CSV,
    PRODUCTS,
    edited_job,
    order_count,
    read_csv,
    rejects_by_id,
    run_entity,
)

SAMPLE = Path("sample_data/customers.csv")


def test_customers_are_upserted_one_by_one_and_then_left_alone(emulator, api, tmp_path):
    first = run_entity(CUSTOMERS, emulator, tmp_path)
    assert first.balanced and (first.created, first.requests, first.rejected) == (300, 300, 0)
    rows = {r["customer_number"]: r for r in read_csv(SAMPLE)}
    for number in ["CUST-0001", "CUST-0003", "CUST-0150", "CUST-0300"]:
        got, row = api.get(f"/api/customers/{number}").json(), rows[number]
        assert (got["companyName"], got["companyEmail"], got["pricing"]) == (
            row["company_name"],
            row["email"],
            row["price_tier"],
        )
        assert got["active"] is True
        assert got.get("repNumber") == (row["rep_number"] or None)
    puts = emulator.stats()["requests"]["PUT /api/customers"]
    second = run_entity(CUSTOMERS, emulator, tmp_path)
    assert (second.unchanged, second.requests) == (300, 0)
    assert emulator.stats()["requests"]["PUT /api/customers"] == puts


def test_a_changed_customer_is_sent_again_and_a_bad_one_rejected(emulator, api, tmp_path, state_on):
    source = tmp_path / "customers.csv"
    shutil.copy(SAMPLE, source)
    job = edited_job(tmp_path, CUSTOMERS, source__path=str(source))
    run_entity(job, emulator, tmp_path)
    text = source.read_text(encoding="utf-8")
    text = text.replace("CUST-0001,Cedar Building Supply,", "CUST-0001,Cedar Building Supply Co,")
    text = text.replace(
        "Frontier Industrial Supply,orders@frontierindustri.example,",
        "Frontier Industrial Supply,,",
        1,
    )  # CUST-0004: no email
    source.write_text(text, encoding="utf-8")
    second = run_entity(job, emulator, tmp_path)
    assert (second.updated, second.rejected, second.unchanged) == (1, 1, 298)
    assert api.get("/api/customers/CUST-0001").json()["companyName"] == "Cedar Building Supply Co"
    reject = rejects_by_id(second.rejects_path)["CUST-0004"]
    assert (reject["column"], reject["rule"]) == ("email", "required")


def test_customers_from_sql_with_a_watermark(emulator, api, tmp_path):
    job = edited_job(
        tmp_path,
        CUSTOMERS,
        source={"type": "sql", "url_env": "ERP_DATABASE_URL", "query": "sql/customers.sql"},
        watermark={"column": "updated_at", "overlap": "1h"},
    )
    first = run_entity(job, emulator, tmp_path)
    assert first.created == 300
    second = run_entity(job, emulator, tmp_path)
    assert second.rows_read < 5 and second.requests == 0  # only the overlap, unchanged


def test_orders_wait_for_their_customers(emulator, api, tmp_path):
    assert run_sync(PRODUCTS, emulator, tmp_path).created == 1994
    early = run_entity(ORDERS_CSV, emulator, tmp_path)
    rules = {r["rule"] for r in rejects_by_id(early.rejects_path).values()}
    assert early.created == 0 and "unknown_customer" in rules and order_count(api) == 0
    assert "POST /api/orders/bulk" not in emulator.stats()["requests"]
    run_entity(CUSTOMERS, emulator, tmp_path)
    late = run_entity(ORDERS_CSV, emulator, tmp_path)
    assert late.created == 491 and order_count(api) == 491
