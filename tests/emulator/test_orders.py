"""POST /api/orders/bulk (§3.5, §6.2-6.4), GET /api/orders, GET /api/orders/{id}."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
import pytest

from .helpers import KEY_B, bulk, product


@pytest.fixture
def shop(client: httpx.Client) -> httpx.Client:
    """Customer ACME (USD default) and CAN (CAD), products SKU-001..SKU-003 with tier prices."""
    for number, currency in [("ACME", None), ("CAN", "CAD")]:
        body = {
            "customerNumber": number,
            "companyName": number,
            "companyEmail": "x@y.z",
            "pricing": "Wholesale",
            "currencyCode": currency,
        }
        assert client.put("/api/customers", json=body).status_code == 201
    prices = [
        {"tier": "Wholesale", "price": 8},
        {"tier": "Wholesale", "price": 7, "atQuantity": 10},
    ]
    bulk(client, [product(i, prices=prices) for i in (1, 2, 3)])
    return client


def order(**fields) -> dict:
    body = {"customer": {"customerNumber": "ACME"}, "items": [{"sku": "SKU-001", "quantity": 2}]}
    body.update(fields)
    return body


def _import(client: httpx.Client, orders: list) -> dict:
    response = client.post("/api/orders/bulk", json=orders)
    assert response.status_code == 200, response.text
    return response.json()


def test_create_fills_number_prices_totals_and_snapshot(shop: httpx.Client) -> None:
    summary = _import(shop, [order(externalId="E-1", orderStatus="Completed")])
    result = summary["results"][0]
    assert (summary["createdCount"], result["status"]) == (1, "Created")
    assert re.fullmatch(r"ORD-\d{5}", result["orderNumber"])
    stored = shop.get(f"/api/orders/{result['id']}").json()
    assert stored["orderStatus"] == "Complete"
    assert stored["customer"]["customerNumber"] == "ACME"
    assert (stored["currencyCode"], stored["priceTier"]) == ("USD", "Wholesale")
    line = stored["items"][0]
    assert (line["price"], line["lineTotal"], line["lineTotalFormatted"]) == (8, 16, "$16.00")
    assert stored["orderTotal"] == 16


def test_quantity_break_and_customer_currency(shop: httpx.Client) -> None:
    items = [{"sku": "SKU-002", "quantity": 10}]
    result = _import(shop, [order(customer={"customerNumber": "can"}, items=items)])["results"][0]
    stored = shop.get(f"/api/orders/{result['id']}").json()
    assert (stored["items"][0]["price"], stored["currencyCode"]) == (7, "CAD")
    assert stored["orderTotalFormatted"] == "CA$70.00"


def test_reimport_by_external_id_replaces_items_and_keeps_id(shop: httpx.Client) -> None:
    first = _import(shop, [order(externalId="E-1")])["results"][0]
    items = [{"sku": "SKU-003", "quantity": 1, "price": 5}]
    again = _import(shop, [order(externalId="E-1", items=items, orderStatus="Shipped")])
    result = again["results"][0]
    assert (result["status"], result["id"], result["orderNumber"]) == (
        "Updated",
        first["id"],
        first["orderNumber"],
    )
    stored = shop.get(f"/api/orders/{first['id']}").json()
    assert [i["sku"] for i in stored["items"]] == ["SKU-003"]
    assert stored["orderStatus"] == "Shipped"
    assert shop.get("/api/orders").json()["totalRecords"] == 1


def test_reimport_by_order_number_updates(shop: httpx.Client) -> None:
    first = _import(shop, [order(orderNumber="SO-1")])["results"][0]
    again = _import(shop, [order(orderNumber="so-1", notes="second")])["results"][0]
    assert (again["status"], again["id"]) == ("Updated", first["id"])
    assert shop.get(f"/api/orders/{first['id']}").json()["notes"] == "second"


def test_external_id_and_order_number_of_different_orders_conflict(shop: httpx.Client) -> None:
    _import(
        shop,
        [order(externalId="E-1", orderNumber="SO-1"), order(externalId="E-2", orderNumber="SO-2")],
    )
    result = _import(shop, [order(externalId="E-1", orderNumber="SO-2")])["results"][0]
    assert result["status"] == "Failed" and "OrderNumber" in result["errors"]


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"customer": {"customerNumber": "NOBODY"}}, "Customer"),
        ({"customer": None}, "Customer"),
        (
            {"items": [{"sku": "SKU-001", "quantity": 1}, {"sku": "GHOST", "quantity": 1}]},
            "items[1].sku",
        ),
        ({"items": [{"sku": "SKU-001", "quantity": 0}]}, "items[0].quantity"),
        ({"items": []}, "Items"),
        ({"orderStatus": "Lost"}, "OrderStatus"),
    ],
    ids=[
        "unknown-customer",
        "no-customer",
        "unknown-sku",
        "zero-quantity",
        "no-items",
        "bad-status",
    ],
)
def test_item_failures(shop: httpx.Client, fields: dict, key: str) -> None:
    summary = _import(shop, [order(**fields), order(externalId="OK")])
    failed, ok = summary["results"]
    assert failed["status"] == "Failed" and key in failed["errors"]
    assert ok["status"] == "Created"
    assert shop.get("/api/orders").json()["totalRecords"] == 1


def test_inactive_sku_is_accepted(shop: httpx.Client) -> None:
    shop.put("/api/products/SKU-001/deactivate")
    assert _import(shop, [order()])["createdCount"] == 1


def test_too_many_orders_is_400(start_emulator, make_client) -> None:
    client = make_client(target=start_emulator(max_bulk_orders=2))
    response = client.post("/api/orders/bulk", json=[order(), order(), order()])
    assert response.status_code == 400
    assert client.post("/api/orders/bulk", json=[1]).status_code == 400


def test_orders_are_per_org(shop: httpx.Client, make_client) -> None:
    result = _import(shop, [order()])["results"][0]
    other = make_client(KEY_B)
    assert other.get(f"/api/orders/{result['id']}").status_code == 404
    assert other.get("/api/orders").json()["totalRecords"] == 0


def _exact(response: httpx.Response) -> dict:
    """A response's JSON with its decimals as written (what a client keeping money reads)."""
    return json.loads(response.text, parse_float=Decimal)


def test_totals_sent_are_stored_as_sent_to_the_last_digit(shop: httpx.Client) -> None:
    """§3.5: a historical order keeps the ERP's money, however many digits it has."""
    items = [{"sku": "SKU-001", "quantity": 3, "price": 12.345, "lineTotal": 35.19}]
    shipping = '"shippingDetails": {"shippingMethod": "UPS", "shippingTotal": 12.50}'
    money = '"subtotal": 12345678901234567.1234, "tax": 0.07, "orderTotal": 99999999999999999999.99'
    head = json.dumps(order(externalId="E-1", items=items))[:-1]
    data = f"[{head}, {money}, {shipping}}}]"
    result = shop.post("/api/orders/bulk", content=data)
    stored = _exact(shop.get(f"/api/orders/{result.json()['results'][0]['id']}"))
    assert stored["subtotal"] == Decimal("12345678901234567.1234")
    assert str(stored["orderTotal"]) == "99999999999999999999.99"
    assert (stored["tax"], stored["shippingDetails"]["shippingTotal"]) == (
        Decimal("0.07"),
        Decimal("12.50"),
    )
    assert stored["items"][0]["lineTotal"] == Decimal("35.19")  # not 3 × 12.345 = 37.035
    listed = _exact(shop.get("/api/orders"))["data"][0]
    assert listed["subtotal"] == Decimal("12345678901234567.1234")


def test_only_missing_totals_are_computed_exactly(shop: httpx.Client) -> None:
    items = [
        {"sku": "SKU-001", "quantity": 3, "price": 0.1},
        {"sku": "SKU-002", "quantity": 1, "price": 0.2, "lineTotal": 0.15},
    ]
    shipping = {"shippingMethod": "UPS", "shippingTotal": 0.1}
    result = _import(shop, [order(items=items, tax=0.02, shippingDetails=shipping)])
    stored = _exact(shop.get(f"/api/orders/{result['results'][0]['id']}"))
    assert [i["lineTotal"] for i in stored["items"]] == [Decimal("0.3"), Decimal("0.15")]
    assert stored["subtotal"] == Decimal("0.45")  # not 0.30000000000000004 + 0.15
    assert stored["orderTotal"] == Decimal("0.57")
    assert stored["orderTotalFormatted"] == "$0.57"
    given = _import(shop, [order(items=items, subtotal=1, shippingDetails=shipping)])
    stored = _exact(shop.get(f"/api/orders/{given['results'][0]['id']}"))
    assert (stored["subtotal"], stored["orderTotal"]) == (1, Decimal("1.1"))  # from the subtotal


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"subtotal": "12.50"}, "Subtotal"),
        ({"orderTotal": True}, "OrderTotal"),
        ({"shippingDetails": {"shippingTotal": "free"}}, "ShippingDetails.ShippingTotal"),
        ({"items": [{"sku": "SKU-001", "quantity": 1, "lineTotal": "8"}]}, "items[0].lineTotal"),
    ],
    ids=["subtotal", "order-total", "shipping", "line-total"],
)
def test_a_total_that_is_not_a_number_fails_its_order(
    shop: httpx.Client, fields: dict, key: str
) -> None:
    failed, ok = _import(shop, [order(**fields), order(externalId="OK")])["results"]
    assert failed["status"] == "Failed" and failed["errors"][key] == [
        "The JSON value could not be converted to System.Decimal."
    ]
    assert ok["status"] == "Created"


def test_a_non_finite_number_is_not_json(shop: httpx.Client) -> None:
    body = b'[{"customer": {"customerNumber": "ACME"}, "items": [], "tax": NaN}]'
    response = shop.post("/api/orders/bulk", content=body)
    assert response.status_code == 400 and "not valid JSON" in response.text
    # beside a number only the slow, exact parse keeps
    nan = body.replace(b'"items": []', b'"items": [], "subtotal": 12345678901234567.5')
    response = shop.post("/api/orders/bulk", content=nan)
    assert response.status_code == 400 and "NaN is not a JSON number" in response.text
