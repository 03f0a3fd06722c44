"""GET /api/products (§5.4 envelope, §5.5 filters), GET one, activate/deactivate (§6.9)."""

from __future__ import annotations

import json

import httpx
import pytest

from .helpers import bulk, product


@pytest.fixture
def catalog(client: httpx.Client) -> httpx.Client:
    """30 products SKU-000..SKU-029 priced 10..39; odd ones are named 'Gadget'."""
    items = [product(i, name=f"{'Gadget' if i % 2 else 'Widget'} {i}") for i in range(30)]
    bulk(client, items)
    return client


def _skus(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["sku"] for p in response.json()["data"]]


def test_envelope_and_paging(catalog: httpx.Client) -> None:
    body = catalog.get("/api/products", params={"pageNumber": 2, "pageSize": 10}).json()
    assert {k: body[k] for k in ("totalRecords", "currentPage", "totalPages", "pageSize")} == {
        "totalRecords": 30,
        "currentPage": 2,
        "totalPages": 3,
        "pageSize": 10,
    }
    assert [p["sku"] for p in body["data"]] == [f"SKU-{i:03d}" for i in range(10, 20)]
    defaults = catalog.get("/api/products").json()
    assert (defaults["pageSize"], len(defaults["data"]), defaults["currentPage"]) == (25, 25, 1)


def test_page_size_is_clamped_to_100_and_names_are_case_insensitive(client: httpx.Client) -> None:
    bulk(client, [product(i) for i in range(120)])
    body = client.get("/api/products", params={"PageSize": 500, "PAGENUMBER": 1}).json()
    assert (body["pageSize"], len(body["data"]), body["totalPages"]) == (100, 100, 2)
    assert client.get("/api/products", params={"pageSize": "x"}).status_code == 400


@pytest.mark.parametrize(
    ("params", "first"),
    [
        ({"sortOn": "Price", "sortDirection": "desc"}, "SKU-029"),
        ({"SortOn": "Name", "SortDirection": "asc"}, "SKU-001"),
        ({"sortOn": "Sku", "sortDirection": "desc"}, "SKU-029"),
    ],
    ids=["price-desc", "name-asc-pascal", "sku-desc"],
)
def test_sorting(catalog: httpx.Client, params: dict, first: str) -> None:
    assert _skus(catalog.get("/api/products", params=params))[0] == first


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {
                "filters[0].field": "Sku",
                "filters[0].operator": "startswith",
                "filters[0].value": "sku-01",
            },
            {f"SKU-{i:03d}" for i in range(10, 20)},
        ),
        (
            {
                "Filters[0].Field": "Name",
                "Filters[0].Operator": "equals",
                "Filters[0].Value": "gadget 7",
            },
            {"SKU-007"},
        ),
        (
            {
                "filters": json.dumps(
                    [
                        {"field": "Price", "operator": "gte", "value": 37},
                        {"field": "Name", "operator": "contains", "value": "WID"},
                    ]
                )
            },
            {"SKU-028"},
        ),
        (
            {
                "filters[0].field": "Sku",
                "filters[0].operator": "endswith",
                "filters[0].value": "9",
                "filters[1].field": "Name",
                "filters[1].operator": "notcontains",
                "filters[1].value": "1",
            },
            {"SKU-009", "SKU-029"},
        ),
        (
            {"filters[0].field": "Price", "filters[0].operator": "lt", "filters[0].value": "12"},
            {"SKU-000", "SKU-001"},
        ),
    ],
    ids=["indexed-startswith", "pascal-equals", "json-gte-contains", "endswith-notcontains", "lt"],
)
def test_filters(catalog: httpx.Client, params: dict, expected: set) -> None:
    params = {**params, "pageSize": 100}
    assert set(_skus(catalog.get("/api/products", params=params))) == expected


def test_unknown_filter_operator_is_400(catalog: httpx.Client) -> None:
    params = {"filters[0].field": "Sku", "filters[0].operator": "like", "filters[0].value": "x"}
    response = catalog.get("/api/products", params=params)
    assert response.status_code == 400 and "Filters[0].Operator" in response.json()["errors"]


def test_get_one_is_case_insensitive_and_404_when_missing(catalog: httpx.Client) -> None:
    assert catalog.get("/api/products/sku-003").json()["sku"] == "SKU-003"
    missing = catalog.get("/api/products/NOPE")
    assert missing.status_code == 404 and missing.json()["status"] == 404


def test_deactivated_products_leave_lists_but_not_get(catalog: httpx.Client) -> None:
    response = catalog.put("/api/products/SKU-000/deactivate")
    assert response.status_code == 204 and response.content == b""
    assert catalog.get("/api/products").json()["totalRecords"] == 29
    assert catalog.get("/api/products/SKU-000").json()["active"] is False
    inactive = {
        "filters[0].field": "Active",
        "filters[0].operator": "equals",
        "filters[0].value": "false",
    }
    assert _skus(catalog.get("/api/products", params=inactive)) == ["SKU-000"]
    assert catalog.put("/api/products/SKU-000/activate").status_code == 204
    assert catalog.get("/api/products").json()["totalRecords"] == 30
    assert catalog.put("/api/products/NOPE/activate").status_code == 404
