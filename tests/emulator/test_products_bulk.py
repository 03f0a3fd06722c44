"""POST /api/products/bulk (§2.8, §6.1, §6.7, §6.21) and PUT /api/products."""

from __future__ import annotations

import re

import httpx

from .helpers import bulk, product


def _get(client: httpx.Client, sku: str) -> dict:
    response = client.get(f"/api/products/{sku}")
    assert response.status_code == 200, response.text
    return response.json()


def test_create_then_update_by_external_id(client: httpx.Client) -> None:
    created = bulk(client, [product(1), product(2)])
    assert (created["totalCount"], created["createdCount"], created["failedCount"]) == (2, 2, 0)
    first = created["results"][0]
    assert first["status"] == "Created" and first["index"] == 0
    assert re.fullmatch(r"prod_[0-9a-f]{8}", first["productId"])
    updated = bulk(client, [product(1, name="Renamed widget")])
    assert updated["updatedCount"] == 1
    assert updated["results"][0]["productId"] == first["productId"]
    stored = _get(client, "SKU-001")
    assert stored["name"] == "Renamed widget"
    assert stored["createdAt"].endswith("Z") and stored["updatedAt"] >= stored["createdAt"]
    assert stored["priceFormatted"] == "$11.00"
    assert stored["prices"][0]["priceFormatted"] == "$9.00"


def test_match_by_sku_adopts_the_external_id(client: httpx.Client) -> None:
    pid = bulk(client, [product(1, externalId="OLD")])["results"][0]["productId"]
    summary = bulk(client, [product(1, externalId="NEW", sku="sku-001")])
    assert summary["results"][0] == {
        "index": 0,
        "externalId": "NEW",
        "sku": "sku-001",
        "status": "Updated",
        "productId": pid,
    }
    assert _get(client, "SKU-001")["externalId"] == "NEW"
    # The adopted externalId now matches on its own.
    assert bulk(client, [product(1, externalId="NEW")])["updatedCount"] == 1


def test_external_id_match_with_a_new_sku_renames(client: httpx.Client) -> None:
    bulk(client, [product(1)])
    summary = bulk(client, [product(1, sku="SKU-RENAMED")])
    assert summary["results"][0]["status"] == "Updated"
    assert client.get("/api/products/SKU-001").status_code == 404
    assert _get(client, "SKU-RENAMED")["externalId"] == "ERP-1"
    assert client.get("/api/products").json()["totalRecords"] == 1


def test_sku_owned_by_another_product_is_a_per_item_conflict(client: httpx.Client) -> None:
    bulk(client, [product(1), product(2)])
    summary = bulk(client, [product(1, sku="SKU-002", name="clash"), product(3)])
    assert (summary["failedCount"], summary["createdCount"]) == (1, 1)
    failed = summary["results"][0]
    assert failed["status"] == "Failed" and "productId" not in failed
    assert failed["errors"] == {
        "Sku": ["SKU 'SKU-002' belongs to another product (externalId 'ERP-2')"]
    }
    assert _get(client, "SKU-001")["name"] == "Widget 1"  # nothing written for the failed item
    assert _get(client, "SKU-002")["name"] == "Widget 2"


def test_duplicates_within_a_request_last_one_wins(client: httpx.Client) -> None:
    summary = bulk(client, [product(1, name="first"), product(1, name="second")])
    assert [r["status"] for r in summary["results"]] == ["Created", "Updated"]
    assert summary["results"][0]["productId"] == summary["results"][1]["productId"]
    assert _get(client, "SKU-001")["name"] == "second"


def test_structurally_invalid_items_reject_the_whole_request(client: httpx.Client) -> None:
    items = [
        product(1),
        {"externalId": "ERP-2", "name": "no sku"},
        product(3, price="cheap"),
        product(4, prices=[{"tier": "Retail", "price": 1, "atQuantity": 0}]),
        product(5, externalId=None),
        "not an object",
    ]
    response = client.post("/api/products/bulk", json=items)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["title"] == "One or more validation errors occurred"
    assert body["errors"]["[1].Sku"] == ["The Sku field is required."]
    assert set(body["errors"]) == {
        "[1].Sku",
        "[2].Price",
        "[3].Prices[0].AtQuantity",
        "[4].ExternalId",
        "[5]",
    }
    assert client.get("/api/products").json()["totalRecords"] == 0  # nothing written


def test_body_must_be_a_json_array(client: httpx.Client) -> None:
    assert client.post("/api/products/bulk", json=product(1)).status_code == 400
    bad = client.post(
        "/api/products/bulk", content=b"[{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400 and "$" in bad.json()["errors"]


def test_more_than_max_bulk_items_is_400(start_emulator, make_client) -> None:
    small = start_emulator(max_bulk_items=3)
    client = make_client(target=small)
    response = client.post("/api/products/bulk", json=[product(i) for i in range(4)])
    assert response.status_code == 400 and "$" in response.json()["errors"]
    assert bulk(client, [product(i) for i in range(3)])["createdCount"] == 3


def test_body_over_the_byte_limit_is_413(start_emulator, make_client) -> None:
    small = start_emulator(max_body_bytes=2_000)
    client = make_client(target=small)
    response = client.post("/api/products/bulk", json=[product(i) for i in range(50)])
    assert response.status_code == 413
    assert response.json()["title"] == "Payload Too Large"
    # The connection stays usable and nothing was written.
    assert client.get("/api/products").json()["totalRecords"] == 0


def test_any_casing_in_and_unknown_fields_are_kept(client: httpx.Client) -> None:
    item = {
        "ExternalId": "ERP-9",
        "SKU": "CASE-1",
        "Name": "Cased",
        "Price": 3,
        "Prices": [{"Tier": "Retail", "Price": 2.5}],
        "customField": {"x": 1},
    }
    assert bulk(client, [item])["createdCount"] == 1
    stored = _get(client, "case-1")
    assert (stored["sku"], stored["name"], stored["customField"]) == ("CASE-1", "Cased", {"x": 1})
    assert stored["prices"] == [
        {"tier": "Retail", "price": 2.5, "atQuantity": 1, "priceFormatted": "$2.50"}
    ]


def test_update_keeps_omitted_and_null_fields_and_replaces_prices(client: httpx.Client) -> None:
    bulk(client, [product(1, description="kept", weight=2.5)])
    new_prices = [{"tier": "Retail", "price": 5, "atQuantity": 10}]
    bulk(client, [{"externalId": "ERP-1", "sku": "SKU-001", "weight": None, "prices": new_prices}])
    stored = _get(client, "SKU-001")
    assert (stored["description"], stored["weight"], stored["name"]) == ("kept", 2.5, "Widget 1")
    assert [(p["tier"], p["atQuantity"]) for p in stored["prices"]] == [("Retail", 10)]


def test_put_upserts_by_sku(client: httpx.Client) -> None:
    created = client.put("/api/products", json={"sku": "PUT-1", "name": "one", "price": 1})
    assert created.status_code == 201 and created.json()["active"] is True
    updated = client.put("/api/products", json={"Sku": "put-1", "name": "two"})
    assert updated.status_code == 200
    assert (updated.json()["name"], updated.json()["price"]) == ("two", 1)
    missing = client.put("/api/products", json={"name": "no sku"})
    assert missing.status_code == 400 and missing.json()["errors"] == {
        "Sku": ["The Sku field is required."]
    }
