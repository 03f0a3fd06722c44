"""Handlers of the emulated Nymble API (`/api/...`); each needs an authenticated org."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson

from .app import EmulatorApp
from .customer_store import validate_customer
from .exact_json import loads as exact_loads
from .listing import parse_list_query
from .messages import Request, Response, json_response, no_content
from .order_rules import validate_bulk_orders
from .problems import ProblemError
from .product_rules import validate_bulk_products, validate_product
from .render import render_invoice, render_order, render_product

__all__ = ["parse_json_body", "register_api_routes"]


def parse_json_body(request: Request, *, exact: bool = False) -> Any:
    """The request body as JSON; a 400 problem when it is empty or malformed. ``exact``: its
    decimals as ``Decimal`` (orders keep the money they are sent, §3.5)."""
    if not request.body.strip():
        raise ProblemError.of(400, {"$": ["A non-empty request body is required."]})
    try:
        return exact_loads(request.body) if exact else orjson.loads(request.body)
    except ValueError as exc:  # orjson's JSONDecodeError and json's are ValueErrors
        raise ProblemError.of(400, {"$": [f"The request body is not valid JSON: {exc}"]}) from None


def _org(request: Request) -> str:
    assert request.org is not None  # the server authenticates every /api/ request first
    return request.org


def _found(doc: dict[str, Any] | None, render: Any) -> Response:
    if doc is None:
        raise ProblemError.of(404)
    return json_response(200, render(doc))


def _page(envelope: dict[str, Any], render: Any) -> Response:
    envelope["data"] = [render(doc) for doc in envelope["data"]]
    return json_response(200, envelope)


def _bulk(
    app: EmulatorApp,
    request: Request,
    validate: Any,
    max_items: int,
    store: Any,
    *,
    exact: bool = False,
) -> Response:
    """A bulk write: one at a time (SQLite and the GIL gain nothing from overlap), the whole
    body validated first, then applied in one transaction."""
    with app.bulk_lock:
        body = parse_json_body(request, exact=exact)
        app.stats.items(len(body) if isinstance(body, list) else 0)
        docs = validate(body, max_items)
        summary = store.bulk_upsert(_org(request), docs, app.injector.config)
        return json_response(200, summary)


def bulk_products(app: EmulatorApp, request: Request) -> Response:
    return _bulk(app, request, validate_bulk_products, app.settings.max_bulk_items, app.products)


def put_product(app: EmulatorApp, request: Request) -> Response:
    errors: dict[str, list[str]] = {}
    doc = validate_product(parse_json_body(request), "", errors, require_external_id=False)
    if errors or doc is None:
        raise ProblemError.of(400, errors)
    stored, created = app.products.upsert_one(_org(request), doc, app.injector.config)
    return json_response(201 if created else 200, render_product(stored))


def list_products(app: EmulatorApp, request: Request) -> Response:
    envelope = app.products.list(_org(request), parse_list_query(request.query))
    return _page(envelope, render_product)


def get_product(app: EmulatorApp, request: Request) -> Response:
    return _found(app.products.get(_org(request), request.params["sku"]), render_product)


def set_product_active(app: EmulatorApp, active: bool, request: Request) -> Response:
    if not app.products.set_active(_org(request), request.params["sku"], active):
        raise ProblemError.of(404)
    return no_content()


def delete_product(app: EmulatorApp, request: Request) -> Response:
    if not app.products.delete(_org(request), request.params["sku"]):
        raise ProblemError.of(404)
    return no_content()


def upsert_customer(app: EmulatorApp, create_only: bool, request: Request) -> Response:
    doc = validate_customer(parse_json_body(request))
    stored, created = app.customers.upsert(_org(request), doc, create_only)
    return json_response(201 if created else 200, stored)


def list_customers(app: EmulatorApp, request: Request) -> Response:
    return _page(app.customers.list(_org(request), parse_list_query(request.query)), dict)


def get_customer(app: EmulatorApp, request: Request) -> Response:
    return _found(app.customers.get(_org(request), request.params["customerNumber"]), dict)


def bulk_orders(app: EmulatorApp, request: Request) -> Response:
    limit = app.settings.max_bulk_orders
    return _bulk(app, request, validate_bulk_orders, limit, app.orders, exact=True)


def list_orders(app: EmulatorApp, request: Request) -> Response:
    return _page(app.orders.list(_org(request), parse_list_query(request.query)), render_order)


def get_order(app: EmulatorApp, request: Request) -> Response:
    return _found(app.orders.get(_org(request), request.params["id"]), render_order)


def list_invoices(app: EmulatorApp, request: Request) -> Response:
    value = request.query_value
    envelope = app.invoices.list(
        _org(request),
        parse_list_query(request.query),
        order_id=value("orderid"),
        customer_id=value("customerid"),
        status=value("status"),
    )
    return _page(envelope, render_invoice)


def get_invoice(app: EmulatorApp, request: Request) -> Response:
    return _found(app.invoices.get(_org(request), request.params["id"]), render_invoice)


def register_api_routes(app: EmulatorApp) -> None:
    add = app.router.add
    add("POST", "/api/products/bulk", partial(bulk_products, app))
    add("PUT", "/api/products", partial(put_product, app))
    add("GET", "/api/products", partial(list_products, app))
    add("GET", "/api/products/{sku}", partial(get_product, app))
    add("DELETE", "/api/products/{sku}", partial(delete_product, app))
    add("PUT", "/api/products/{sku}/activate", partial(set_product_active, app, True))
    add("PUT", "/api/products/{sku}/deactivate", partial(set_product_active, app, False))
    add("PUT", "/api/customers", partial(upsert_customer, app, False))
    add("POST", "/api/customers", partial(upsert_customer, app, True))
    add("GET", "/api/customers", partial(list_customers, app))
    add("GET", "/api/customers/{customerNumber}", partial(get_customer, app))
    add("POST", "/api/orders/bulk", partial(bulk_orders, app))
    add("GET", "/api/orders", partial(list_orders, app))
    add("GET", "/api/orders/{id}", partial(get_order, app))
    add("GET", "/api/invoices", partial(list_invoices, app))
    add("GET", "/api/invoices/{id}", partial(get_invoice, app))
