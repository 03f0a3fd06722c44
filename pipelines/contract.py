"""What nymble-sync assumes about the Nymble API, in one place.

Each value cites the section of ``shared/nymble-api/CONTRACT.md`` it follows and its tag there:
[D] documented, [P] partly documented, [A] assumption. When Nymble documents something new,
this is the module to change.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "BULK_ENDPOINTS",
    "ENVIRONMENTS",
    "FieldType",
    "PRODUCT_FIELDS",
    "RETRY_STATUSES",
    "RetryDefaults",
]

# §0.2 [D]: the two documented environments. Production is never a default (see targets.py).
ENVIRONMENTS = {
    "sandbox": "https://api-dev.achievemomentum.com",
    "production": "https://api.achievemomentum.com",
}

# §2.8 [A route D], §3.5 [P]: bulk upsert routes, top-level JSON array bodies.
BULK_ENDPOINTS = {
    "products": "/api/products/bulk",
    "orders": "/api/orders/bulk",
}

FieldType = Literal["string", "decimal", "integer", "boolean"]

# §2.5 body fields [D/P], camelCase as the API reference spells them (§0.3). ``prices`` and
# ``productAttributes`` are built from their own sections of a job file, not from ``fields``.
PRODUCT_FIELDS: dict[str, FieldType] = {
    "externalId": "string",
    "sku": "string",
    "name": "string",
    "description": "string",
    "category": "string",
    "price": "decimal",
    "currencyCode": "string",
    "quantityOnHand": "integer",
    "minimumOrderQuantity": "integer",
    "quantityIncrement": "integer",
    "weight": "decimal",
    "weightUnit": "string",
    "dimensions": "string",
    "dimensionsUnit": "string",
    "upc": "string",
    "active": "boolean",
    "productType": "string",
}

# §5.3 [A]: retry these statuses and network errors, never any other 4xx.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RetryDefaults:
    """§5.3 [A]: exponential backoff with full jitter, base 1 s, cap 60 s, at most 6 attempts."""

    base_s = 1.0
    cap_s = 60.0
    attempts = 6
