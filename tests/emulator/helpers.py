"""Shared test data and small request helpers for the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["KEY_A", "KEY_B", "ORG_A", "ORG_B", "bulk", "product"]

KEY_A, ORG_A = "key_a", "org_a"
KEY_B, ORG_B = "key_b", "org_b"


def product(i: int, **fields: Any) -> dict[str, Any]:
    """A well-formed bulk product item; `fields` override or add keys."""
    item = {
        "externalId": f"ERP-{i}",
        "sku": f"SKU-{i:03d}",
        "name": f"Widget {i}",
        "price": 10.0 + i,
        "prices": [{"tier": "Wholesale", "price": 8.0 + i, "atQuantity": 1}],
    }
    item.update(fields)
    return item


def bulk(client: httpx.Client, items: list[Any]) -> dict[str, Any]:
    response = client.post("/api/products/bulk", json=items)
    assert response.status_code == 200, response.text
    return response.json()
