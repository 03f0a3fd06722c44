"""Case-insensitive input property names -> the camelCase names the API writes (§0.3)."""

from __future__ import annotations

from typing import Any

__all__ = ["CANONICAL_NAMES", "NESTED_NAMES", "canonical_name", "normalize_keys"]

_KNOWN_NAMES = (
    # products and prices
    "productId organizationId sku name description category price priceFormatted currencyCode "
    "prices tier atQuantity quantityOnHand minimumOrderQuantity quantityIncrement weight "
    "weightUnit dimensions dimensionsUnit upc active productType productAttributes externalId "
    "createdAt updatedAt "
    # customers, addresses, contacts
    "customerNumber companyName companyEmail companyPhone companyFax pricing repNumber terms "
    "addresses contacts customerAttributes address1 address2 city stateProvince zipPostalCode "
    "country addressType code default firstName lastName email phoneNumber fullName "
    "billingAddress shippingAddress customerId "
    # orders and items
    "id orderNumber orderDate orderStatus orderType poNumber priceTier channel notes "
    "originationCartId customer primarySalesRep takenBySalesRep items shippingDetails "
    "shippingMethod shippingTotal tax subtotal orderTotal quantity lineTotal "
    # invoices
    "orderId invoiceNumber status invoiceDate dueDate salesRep payments total amountPaid "
    "balanceDue"
)
_KNOWN = _KNOWN_NAMES.split()
_BY_LOWER = {name.lower(): name for name in _KNOWN}
CANONICAL_NAMES = _CANONICAL = frozenset(_KNOWN)
# Dictionaries of user-defined keys: their keys are data, not property names.
_VERBATIM = frozenset({"productAttributes", "customerAttributes"})


def canonical_name(name: str) -> str:
    """`SKU` -> `sku`, `PONumber` -> `poNumber`; unknown names get a lower-case first letter."""
    if name in _CANONICAL:
        return name
    known = _BY_LOWER.get(name.lower())
    if known is not None:
        return known
    return name[:1].lower() + name[1:]


# Canonical keys whose values may hold objects needing normalization themselves.
NESTED_NAMES = _NESTED = frozenset(
    {
        "prices", "addresses", "contacts", "customer", "items", "shippingDetails",
        "primarySalesRep", "takenBySalesRep", "billingAddress", "shippingAddress", "salesRep",
        "payments",
    }
)  # fmt: skip


def _normalize_value(value: Any) -> Any:
    if isinstance(value, dict):
        return normalize_keys(value)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)):
                value[i] = _normalize_value(item)
    return value


def normalize_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """Make property names canonical, recursively.

    Works in place and returns `obj` when every name is already canonical (the common case on
    the bulk hot path); otherwise returns a new dict.
    """
    if _CANONICAL.issuperset(obj):
        for key in _NESTED.intersection(obj):
            value = obj[key]
            if isinstance(value, (dict, list)):
                obj[key] = _normalize_value(value)
        return obj
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = key if key in _CANONICAL else canonical_name(key)
        if name in _VERBATIM or not isinstance(value, (dict, list)):
            out[name] = value
        else:
            out[name] = _normalize_value(value)
    return out
