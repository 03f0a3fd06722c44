"""GET /api/invoices (§4.3), seeded through POST /_emulator/invoices."""

from __future__ import annotations

import httpx

from .helpers import KEY_B, ORG_A


def test_list_by_order_and_status_and_get_one(
    client: httpx.Client, admin: httpx.Client, make_client
) -> None:
    assert client.get("/api/invoices").json()["totalRecords"] == 0
    seeded = admin.post(
        "/_emulator/invoices",
        json={
            "org": ORG_A,
            "invoices": [
                {
                    "orderId": "o-1",
                    "total": 10,
                    "status": "Issued",
                    "customer": {"customerNumber": "C1"},
                },
                {"orderId": "o-2", "total": 20},
            ],
        },
    )
    assert seeded.status_code == 201
    first = seeded.json()["data"][0]
    assert first["invoiceNumber"].startswith("INV-") and first["status"] == "Issued"
    by_order = client.get("/api/invoices", params={"orderId": "o-1"}).json()
    assert [i["orderId"] for i in by_order["data"]] == ["o-1"]
    assert by_order["data"][0]["totalFormatted"] == "$10.00"
    drafts = client.get("/api/invoices", params={"status": "draft"}).json()
    assert [i["orderId"] for i in drafts["data"]] == ["o-2"]
    by_customer = client.get("/api/invoices", params={"customerId": "c1"}).json()
    assert by_customer["totalRecords"] == 1
    assert client.get(f"/api/invoices/{first['id']}").status_code == 200
    assert client.get("/api/invoices/nope").status_code == 404
    assert make_client(KEY_B).get(f"/api/invoices/{first['id']}").status_code == 404
