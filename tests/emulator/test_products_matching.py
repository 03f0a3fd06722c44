"""Bulk matching against the in-memory indexes: they follow every write, reset and failure."""

from __future__ import annotations

import httpx
import pytest

from pipelines.emulator.product_batch import ProductBatch

from .helpers import bulk, product


def _statuses(summary: dict) -> list[str]:
    return [r["status"] for r in summary["results"]]


def test_a_mixed_batch_creates_updates_and_reports_duplicates(client: httpx.Client) -> None:
    first = bulk(client, [product(1), product(2)])
    summary = bulk(client, [product(3), product(1, name="again"), product(3, name="dup")])
    assert _statuses(summary) == ["Created", "Updated", "Updated"]
    ids = [r["productId"] for r in summary["results"]]
    assert ids[1] == first["results"][0]["productId"] and ids[0] == ids[2]
    assert client.get("/api/products/SKU-003").json()["name"] == "dup"
    assert client.get("/api/products").json()["totalRecords"] == 3


def test_a_renamed_sku_is_free_for_a_new_product(client: httpx.Client) -> None:
    old = bulk(client, [product(1)])["results"][0]["productId"]
    bulk(client, [product(1, sku="SKU-NEW")])
    summary = bulk(client, [product(9, sku="SKU-001")])
    assert _statuses(summary) == ["Created"]
    assert summary["results"][0]["productId"] != old


def test_a_deleted_product_is_created_anew(client: httpx.Client) -> None:
    old = bulk(client, [product(1)])["results"][0]["productId"]
    assert client.delete("/api/products/sku-001").status_code == 204
    summary = bulk(client, [product(1)])
    assert _statuses(summary) == ["Created"] and summary["results"][0]["productId"] != old


def test_put_and_bulk_share_the_indexes(client: httpx.Client) -> None:
    assert client.put("/api/products", json={"sku": "P-1", "externalId": "E-1"}).status_code == 201
    assert _statuses(bulk(client, [{"externalId": "E-1", "sku": "p-1"}])) == ["Updated"]
    conflict = client.put("/api/products", json={"sku": "P-2", "externalId": "E-1"})
    assert conflict.status_code == 409


def test_reset_empties_the_indexes(client: httpx.Client, admin: httpx.Client) -> None:
    bulk(client, [product(1)])
    admin.post("/_emulator/reset")
    assert _statuses(bulk(client, [product(1)])) == ["Created"]


def test_a_failed_transaction_leaves_no_trace(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk(client, [product(1)])

    def broken_write(self: ProductBatch) -> None:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(ProductBatch, "write", broken_write)
        failed = client.post("/api/products/bulk", json=[product(1, sku="SKU-X"), product(2)])
        assert failed.status_code == 500
    # Nothing was written, and matching forgot the rename and the new product.
    assert client.get("/api/products/SKU-002").status_code == 404
    summary = bulk(client, [product(2), product(1)])
    assert _statuses(summary) == ["Created", "Updated"]
    assert client.get("/api/products/SKU-001").status_code == 200


def test_blank_external_id_is_rejected_like_a_missing_one(client: httpx.Client) -> None:
    response = client.post("/api/products/bulk", json=[product(1, externalId="  ")])
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"[0].ExternalId"}
