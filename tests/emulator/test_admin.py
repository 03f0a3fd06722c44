"""GET /_emulator/stats and POST /_emulator/reset."""

from __future__ import annotations

import httpx

from pipelines.emulator import Emulator

from .helpers import ORG_A, ORG_B, bulk, product


def test_stats_count_requests_by_route_template_records_and_items(
    emulator: Emulator, client: httpx.Client, admin: httpx.Client
) -> None:
    bulk(client, [product(1), product(2)])
    client.get("/api/products/SKU-001")
    client.get("/api/products/NOPE")
    httpx.get(f"{emulator.base_url}/api/products")  # no key
    stats = admin.get("/_emulator/stats").json()
    assert stats["requests"]["POST /api/products/bulk"] == {"200": 1}
    assert stats["requests"]["GET /api/products/{sku}"] == {"200": 1, "404": 1}
    assert stats["requests"]["GET /api/products"] == {"401": 1}
    assert stats["records"][ORG_A] == {"products": 2, "customers": 0, "orders": 0, "invoices": 0}
    assert stats["records"][ORG_B]["products"] == 0
    assert stats["items"] == {"received": 2}
    assert stats["faults"] == {}
    assert emulator.stats()["records"][ORG_A]["products"] == 2


def test_reset_forgets_data_and_counters(emulator: Emulator, client, admin) -> None:
    bulk(client, [product(1)])
    assert admin.post("/_emulator/reset").status_code == 200
    assert client.get("/api/products/SKU-001").status_code == 404
    stats = emulator.stats()
    assert stats["records"][ORG_A]["products"] == 0
    assert "POST /api/products/bulk" not in stats["requests"]
    emulator.reset()
    assert emulator.stats()["requests"] == {}
