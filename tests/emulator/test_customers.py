"""PUT/GET /api/customers (§4.1)."""

from __future__ import annotations

import httpx
import pytest

from .helpers import KEY_B


def _customer(number: str, **fields) -> dict:
    body = {
        "customerNumber": number,
        "companyName": f"Company {number}",
        "companyEmail": f"{number.lower()}@example.com",
        "pricing": "Wholesale",
    }
    body.update(fields)
    return body


def test_put_creates_then_updates_by_customer_number(client: httpx.Client) -> None:
    created = client.put("/api/customers", json=_customer("ACME-1", terms="NET30"))
    assert created.status_code == 201
    assert created.json()["active"] is True
    updated = client.put("/api/customers", json=_customer("acme-1", companyName="Acme Inc"))
    assert updated.status_code == 200
    stored = client.get("/api/customers/ACME-1").json()
    assert (stored["companyName"], stored["terms"]) == ("Acme Inc", "NET30")
    assert client.get("/api/customers").json()["totalRecords"] == 1


@pytest.mark.parametrize("missing", ["customerNumber", "companyName", "companyEmail", "pricing"])
def test_required_fields_are_named_in_a_400(client: httpx.Client, missing: str) -> None:
    body = _customer("C-1")
    del body[missing]
    response = client.put("/api/customers", json=body)
    assert response.status_code == 400
    label = missing[0].upper() + missing[1:]
    assert response.json()["errors"] == {label: [f"The {label} field is required."]}


def test_list_sorts_by_name_and_filters(client: httpx.Client) -> None:
    for number, name in [("C-1", "Zeta"), ("C-2", "alpha"), ("C-3", "Mid")]:
        client.put("/api/customers", json=_customer(number, companyName=name))
    names = [c["companyName"] for c in client.get("/api/customers").json()["data"]]
    assert names == ["alpha", "Mid", "Zeta"]
    by_number = client.get(
        "/api/customers", params={"sortOn": "CustomerNumber", "sortDirection": "desc"}
    ).json()
    assert [c["customerNumber"] for c in by_number["data"]] == ["C-3", "C-2", "C-1"]
    params = {
        "filters[0].field": "CompanyEmail",
        "filters[0].operator": "startswith",
        "filters[0].value": "c-2",
    }
    assert [
        c["customerNumber"] for c in client.get("/api/customers", params=params).json()["data"]
    ] == ["C-2"]


def test_get_missing_or_other_org_customer_is_404(client: httpx.Client, make_client) -> None:
    client.put("/api/customers", json=_customer("ACME-1"))
    assert client.get("/api/customers/NOPE").status_code == 404
    assert make_client(KEY_B).get("/api/customers/ACME-1").status_code == 404


def test_post_duplicate_customer_is_409(client: httpx.Client) -> None:
    assert client.post("/api/customers", json=_customer("C-9")).status_code == 201
    assert client.post("/api/customers", json=_customer("C-9")).status_code == 409
