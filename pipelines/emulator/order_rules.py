"""Pure order rules: bulk-body validation, per-item checks (§6.3, §6.4) and the stored shape.

Money arrives as ``Decimal`` (``exact_json``): totals sent are stored as sent and only those
missing are computed, exactly (§3.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .casing import normalize_keys
from .exact_json import as_decimal
from .problems import ProblemError

__all__ = ["OrderContext", "build_order", "validate_bulk_orders"]

_STATUSES = {
    "pending": "Pending",
    "processing": "Processing",
    "shipped": "Shipped",
    "complete": "Complete",
    "completed": "Complete",  # §3.6: accepted on input, stored and emitted as Complete
    "cancelled": "Cancelled",
}
_SERVER_OWNED = ("id", "organizationId", "createdAt", "updatedAt")
_SNAPSHOT_KEYS = ("customerNumber", "companyName", "companyEmail", "companyPhone")
_HEADER_MONEY = {"subtotal": "Subtotal", "tax": "Tax", "orderTotal": "OrderTotal"}
_NOT_DECIMAL = "The JSON value could not be converted to System.Decimal."
Errors = dict[str, list[str]]


def validate_bulk_orders(body: Any, max_items: int) -> list[dict[str, Any]]:
    """A top-level array of objects, at most `max_items`; otherwise a 400 and nothing written."""
    if not isinstance(body, list):
        raise ProblemError.of(400, {"$": ["The request body must be a JSON array of orders."]})
    if len(body) > max_items:
        message = f"A bulk request may hold at most {max_items} orders; this one has {len(body)}."
        raise ProblemError.of(400, {"$": [message]})
    errors = {
        f"[{i}]": ["The JSON value could not be converted to Order."]
        for i, item in enumerate(body)
        if not isinstance(item, dict)
    }
    if errors:
        raise ProblemError.of(400, errors)
    docs = [normalize_keys(item) for item in body]
    for doc in docs:
        for key in _SERVER_OWNED:
            doc.pop(key, None)
    return docs


@dataclass(frozen=True)
class OrderContext:
    """What per-item checks need: the batch's customers and products, keyed by folded key."""

    org: str
    now: str
    customers: dict[str, dict[str, Any]]
    products: dict[str, dict[str, Any]]
    strict_skus: bool
    fail_skus: frozenset[str]
    unknown_tiers: frozenset[str]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _money_errors(values: dict[str, Any], labels: dict[str, str], errors: Errors) -> None:
    """An amount given as anything but a number is a model-binding error, keyed by label."""
    for key, label in labels.items():
        if values.get(key) is not None and not _is_number(values[key]):
            errors[label] = [_NOT_DECIMAL]


def _customer(doc: dict[str, Any], ctx: OrderContext, errors: Errors) -> dict[str, Any] | None:
    given = doc.get("customer")
    number = given.get("customerNumber") if isinstance(given, dict) else None
    if not isinstance(number, str) or not number.strip():
        errors["Customer"] = ["The Customer field is required (customer.customerNumber)."]
        return None
    record = ctx.customers.get(number.casefold())
    if record is None:
        errors["Customer"] = [f"Unknown customer '{number}'"]
    return record


def _tier_price(product: dict[str, Any], tier: str | None, quantity: float) -> Any:
    best = None
    for entry in product.get("prices") or []:
        if tier and str(entry.get("tier", "")).casefold() == tier.casefold():
            at = entry.get("atQuantity", 1)
            if at <= quantity and (best is None or at > best.get("atQuantity", 1)):
                best = entry
    return best["price"] if best else product.get("price")


def _line(item: Any, i: int, tier: str | None, ctx: OrderContext, errors: Errors) -> dict | None:
    where = f"items[{i}]"
    if not isinstance(item, dict):
        errors[where] = ["The JSON value could not be converted to OrderItem."]
        return None
    sku, quantity, line = item.get("sku"), item.get("quantity"), dict(item)
    if not _is_number(quantity) or quantity <= 0:
        errors[where + ".quantity"] = ["Quantity must be greater than 0."]
    if not isinstance(sku, str) or not sku.strip():
        errors[where + ".sku"] = ["The Sku field is required."]
        return None
    product = ctx.products.get(sku.casefold())
    if sku.casefold() in ctx.fail_skus:
        errors[where + ".sku"] = [f"Simulated failure for SKU '{sku}'"]
    elif product is None and ctx.strict_skus:
        errors[where + ".sku"] = [f"Unknown SKU '{sku}'"]
    if product is not None:
        line.setdefault("name", product.get("name"))
        if line.get("price") is None and _is_number(quantity):
            line["price"] = _tier_price(product, tier, quantity)
    _money_errors(line, {"price": where + ".price", "lineTotal": where + ".lineTotal"}, errors)
    if line.get("lineTotal") is None and _is_number(line.get("price")) and _is_number(quantity):
        line["lineTotal"] = as_decimal(line["price"]) * as_decimal(quantity)  # §3.3, exact
    return line


def _check_header(doc: dict[str, Any], ctx: OrderContext, errors: Errors) -> None:
    status = doc.get("orderStatus")
    if status is not None and str(status).casefold() not in _STATUSES:
        errors["OrderStatus"] = [f"Unknown order status '{status}'"]
    for key, label in (("orderType", "OrderType"), ("channel", "Channel")):
        value = doc.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            errors[label] = [f"{label} must be a non-empty string."]
    tier = doc.get("priceTier")
    if isinstance(tier, str) and tier.casefold() in ctx.unknown_tiers:
        errors["PriceTier"] = [f"Unknown price tier '{tier}'"]
    _money_errors(doc, _HEADER_MONEY, errors)
    shipping = doc.get("shippingDetails")
    if isinstance(shipping, dict):
        _money_errors(shipping, {"shippingTotal": "ShippingDetails.ShippingTotal"}, errors)


def _snapshot(record: dict[str, Any]) -> dict[str, Any]:
    snap = {k: record[k] for k in _SNAPSHOT_KEYS if k in record}
    for address in record.get("addresses") or []:
        if isinstance(address, dict):
            kind = str(address.get("addressType", "")).casefold()
            key = {"billing": "billingAddress", "shipping": "shippingAddress"}.get(kind)
            if key and (key not in snap or address.get("default")):
                snap[key] = address
    return snap


def _totals(order: dict[str, Any]) -> None:
    """§3.5: totals sent are kept; a missing one is computed from the others, exactly."""
    lines = [i["lineTotal"] for i in order["items"] if _is_number(i.get("lineTotal"))]
    order.setdefault("subtotal", sum(map(as_decimal, lines), Decimal(0)))
    order.setdefault("tax", 0)
    shipping = order.get("shippingDetails")
    extra = shipping.get("shippingTotal") if isinstance(shipping, dict) else None
    parts = [p for p in (order["subtotal"], order["tax"], extra) if _is_number(p)]
    order.setdefault("orderTotal", sum(map(as_decimal, parts), Decimal(0)))


def build_order(doc: dict[str, Any], ctx: OrderContext) -> tuple[dict[str, Any] | None, Errors]:
    """The order fields to store (without `id`/`orderNumber`), or the item's errors."""
    errors: Errors = {}
    record = _customer(doc, ctx, errors)
    _check_header(doc, ctx, errors)
    tier = doc.get("priceTier") or (record or {}).get("pricing")
    items = doc.get("items")
    if not isinstance(items, list) or not items:
        errors["Items"] = ["An order needs at least one item."]
        items = []
    lines = [_line(item, i, tier, ctx, errors) for i, item in enumerate(items)]
    if errors or record is None:
        return None, errors
    order = {k: v for k, v in doc.items() if v is not None}
    order.update(organizationId=ctx.org, customer=_snapshot(record), items=lines)
    order["orderStatus"] = _STATUSES[str(doc.get("orderStatus") or "Pending").casefold()]
    order.setdefault("orderDate", ctx.now)
    order.setdefault("priceTier", tier)
    order.setdefault("currencyCode", record.get("currencyCode") or "USD")
    _totals(order)
    return order, errors
