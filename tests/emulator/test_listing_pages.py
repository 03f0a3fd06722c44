"""List pages read one after another hold exactly the rows OFFSET paging gives (§5.4, §5.5).

The emulator remembers where each page it served ended and seeks past that key for the next
page instead of skipping the rows before it (emulator/page_cursors.py, page_query.py). Every
page read here over HTTP is compared with the same page computed by OFFSET alone on the same
database file at that moment (a second `Database(remember_pages=False)` on the file): with and
without filters, sorts on own columns and on document fields (COLLATE NOCASE), ascending and
descending, ties, missing values (NULL), pages out of order, and writes between pages.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.emulator import Emulator
from pipelines.emulator.customer_store import CustomerStore
from pipelines.emulator.db import Database
from pipelines.emulator.invoice_store import InvoiceStore
from pipelines.emulator.listing import parse_list_query
from pipelines.emulator.order_store import OrderStore
from pipelines.emulator.page_cursors import PageCursors, QueryPages
from pipelines.emulator.page_query import Page
from pipelines.emulator.product_store import ProductStore
from pipelines.emulator.settings import FaultConfig

from .helpers import KEY_A, ORG_A, bulk, product

NAMES = ["Widget", "widget", "WIDGET", "Gadget", "gadget", "Älpha", "älpha"]
SIZE = 7  # pages of 7: many pages, and page ends that fall inside runs of ties


class Pages:
    """The emulator over HTTP and, on its database file, the OFFSET-only reference."""

    def __init__(self, client: httpx.Client, reference: Database) -> None:
        self.client = client
        self.products = ProductStore(reference, auto_create_categories=True)
        self.stores: dict[str, Callable[..., dict]] = {
            "products": self.products.list,
            "customers": CustomerStore(reference).list,
            "orders": OrderStore(reference, self.products, strict_skus=False).list,
            "invoices": lambda org, q: InvoiceStore(reference).list(org, q, None, None, None),
        }

    def check(self, route: str, params: dict[str, Any], number: int, size: int = SIZE) -> list:
        """Page `number` over HTTP, asserted equal to the OFFSET page; its record keys."""
        query = {**params, "pageNumber": number, "pageSize": size}
        response = self.client.get(f"/api/{route}", params=query)
        assert response.status_code == 200, response.text
        got = response.json()
        lowered = {k.lower(): [str(v)] for k, v in query.items()}
        want = self.stores[route](ORG_A, parse_list_query(lowered))
        key = {"products": "sku", "customers": "customerNumber"}.get(route, "id")
        keys = [r[key] for r in got["data"]]
        assert keys == [r[key] for r in want["data"]], (route, params, number)
        assert (got["totalRecords"], got["totalPages"]) == (
            want["totalRecords"],
            want["totalPages"],
        )
        return keys

    def read_all(self, route: str, params: dict[str, Any]) -> list:
        keys, number = [], 1
        while page := self.check(route, params, number):
            keys += page
            number += 1
        return keys


def _seed_products(client: httpx.Client) -> None:
    """90 products: names repeating in several cases, prices with ties, some without a
    price or a category (NULL when sorted on), every fifth one deactivated."""
    items = []
    for i in range(90):
        fields: dict[str, Any] = {"name": NAMES[i % len(NAMES)], "price": 10 + i % 4}
        if i % 6 == 0:
            fields["price"] = None
        if i % 3:
            fields["category"] = ["Tools", "tools", "Parts"][i % 3]
        items.append(product(i, **fields))
    bulk(client, items)
    for i in range(0, 90, 5):
        assert client.put(f"/api/products/SKU-{i:03d}/deactivate").status_code == 204


@pytest.fixture
def pages(start_emulator: Callable[..., Emulator], tmp_path: Path) -> Iterator[Pages]:
    path = str(tmp_path / "emulator.sqlite")
    emulator = start_emulator(db_path=path)
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": KEY_A}) as client:
        _seed_products(client)
        reference = Database(path, remember_pages=False)
        try:
            yield Pages(client, reference)
        finally:
            reference.close()


def _active(value: str) -> dict[str, str]:
    return {
        "filters[0].field": "Active",
        "filters[0].operator": "equals",
        "filters[0].value": value,
    }


PRODUCT_QUERIES = {
    "default": {},
    "active-true": _active("true"),
    "active-false": _active("false"),
    "name-asc-nocase-ties": {"sortOn": "Name"},
    "name-desc": {"sortOn": "name", "sortDirection": "desc"},
    "price-asc-nulls-first": {"sortOn": "Price"},
    "price-desc-nulls-last": {"sortOn": "Price", "sortDirection": "desc"},
    "category-asc-missing": {"sortOn": "Category"},
    "category-desc-missing": {"sortOn": "Category", "sortDirection": "Desc"},
    "sku-desc": {"sortOn": "Sku", "sortDirection": "desc"},
    "contains-widget-by-price-desc": {
        "filters": '[{"field": "Name", "operator": "contains", "value": "WIDG"}]',
        "sortOn": "Price",
        "sortDirection": "desc",
    },
}


@pytest.mark.parametrize("params", PRODUCT_QUERIES.values(), ids=PRODUCT_QUERIES.keys())
def test_pages_in_order_equal_offset_pages(pages: Pages, params: dict[str, Any]) -> None:
    keys = pages.read_all("products", params)
    assert len(keys) == len(set(keys)) > SIZE * 2


def test_pages_out_of_order_and_of_other_sizes(pages: Pages) -> None:
    """Parallel readers' requests arrive out of order; a reader may change its page size."""
    for params in ({}, {"sortOn": "Name", "sortDirection": "desc"}, {"sortOn": "Price"}):
        for number in (1, 3, 2, 4, 6, 5, 7, 9, 8, 10):
            pages.check("products", params, number)
        for number, size in ((3, 10), (4, 10), (5, 9), (2, 5), (3, 5)):
            pages.check("products", params, number, size)


WRITES: dict[str, Callable[[httpx.Client], object]] = {
    "create-before": lambda c: bulk(c, [product(500, sku="SKU-000A", name="aaa", price=1)]),
    "rename-across": lambda c: bulk(c, [product(80, name="AAAA first")]),
    "reprice": lambda c: bulk(c, [product(3, price=None), product(81, price=0.5)]),
    "deactivate": lambda c: c.put("/api/products/SKU-001/deactivate"),
    "activate": lambda c: c.put("/api/products/SKU-005/activate"),
    "delete": lambda c: c.delete("/api/products/SKU-002"),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize(
    "params",
    [{}, {"sortOn": "Name"}, {"sortOn": "Price", "sortDirection": "desc"}, _active("false")],
    ids=["default", "name", "price-desc", "inactive"],
)
def test_writes_between_pages(pages: Pages, write: Callable, params: dict[str, Any]) -> None:
    """After a write, a page is the OFFSET page of the new data, then seeking resumes."""
    for number in (1, 2, 3):
        pages.check("products", params, number)
    write(pages.client)
    for number in (4, 5, 6, 7):
        pages.check("products", params, number)


def test_customers_orders_and_invoices(pages: Pages, start_emulator) -> None:
    """Default sorts of the other lists: customers by name (ties in several cases), orders by
    number, invoices by number; and sorts on nested and missing document fields."""
    client = pages.client
    for i in range(40):
        body = {
            "customerNumber": f"C{i:03d}",
            "companyName": NAMES[i % len(NAMES)],
            "companyEmail": "x@y.z",
            "pricing": "Wholesale",
        }
        assert client.put("/api/customers", json=body).status_code == 201
    orders = [
        {
            "orderNumber": f"N-{(i * 7) % 45:03d}",
            "customer": {"customerNumber": f"C{i % 9:03d}"},
            "items": [{"sku": f"SKU-{1 + i % 4:03d}", "quantity": 1 + i % 3}],
            **({"poNumber": f"po-{i % 5}"} if i % 4 else {}),
        }
        for i in range(45)
    ]
    assert client.post("/api/orders/bulk", json=orders).json()["failedCount"] == 0
    invoices = [{"orderId": f"o-{i}", "total": i % 3} for i in range(30)]
    invoices += [{"orderId": "o-x", "invoiceNumber": n} for n in ("inv-a", "INV-A", "Inv-b")]
    admin = httpx.Client(base_url=str(client.base_url))
    assert admin.post("/_emulator/invoices", json={"org": ORG_A, "invoices": invoices}).is_success
    admin.close()
    cases = [
        ("customers", {}, 40),
        ("customers", {"sortDirection": "desc"}, 40),
        ("orders", {}, 45),
        ("orders", {"sortOn": "customer.customerNumber", "sortDirection": "desc"}, 45),
        ("orders", {"sortOn": "PONumber"}, 45),
        ("invoices", {}, 33),
        ("invoices", {"sortOn": "Total", "sortDirection": "desc"}, 33),
    ]
    for route, params, count in cases:
        assert len(set(pages.read_all(route, params))) == count, (route, params)


def test_sequential_pages_seek(tmp_path: Path) -> None:
    """Page n + 1 seeks past page n's last row (after the first page, none by OFFSET), and a
    write sends the next page back to OFFSET once."""
    db = Database(str(tmp_path / "e.sqlite"))
    store = ProductStore(db, auto_create_categories=True)
    store.bulk_upsert(ORG_A, [product(i, name=NAMES[i % 3]) for i in range(50)], FaultConfig())
    for number in range(1, 9):
        store.list(ORG_A, parse_list_query({"pagenumber": [str(number)], "pagesize": ["7"]}))
    assert db.page_counts() == {"seek": 7, "offset": 1}
    store.set_active(ORG_A, "SKU-040", False)
    for number in (2, 3):
        store.list(ORG_A, parse_list_query({"pagenumber": [str(number)], "pagesize": ["7"]}))
    assert db.page_counts() == {"seek": 8, "offset": 2}
    db.close()


VALUES: list[Any] = [None, None, 0, 1, 1, 2.5, -3, "a", "A", "b", "B", "ä", "", "10", 10, 2.5]


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("collate", ["", " COLLATE NOCASE"], ids=["binary", "nocase"])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_seek_equals_offset_on_mixed_values(descending: bool, collate: str, size: int) -> None:
    """NULLs, numbers and text mixed in one sort column, many ties: every page by seeking
    equals the page by OFFSET, whatever the page size and direction."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (org TEXT, k INTEGER PRIMARY KEY, v, doc TEXT)")
    rows = [(random.Random(k).choice(VALUES), k, str(k)) for k in range(60)]
    conn.executemany("INSERT INTO t (org, v, k, doc) VALUES ('o', ?, ?, ?)", rows)
    page = Page("t", "k", "org = ?", ("o",), "v" + collate, descending)
    known = PageCursors().query("t", (0, 0))
    assert isinstance(known, QueryPages)
    offsets = range(0, 64, size)  # past the end too
    for offset in offsets:
        sought = page.rows(conn, offset, size, known)
        assert sought == page.rows(conn, offset, size, None), offset
    assert (known.served["offset"], known.served["seek"]) == (1, len(offsets) - 1)
