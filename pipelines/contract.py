"""What nymble-sync assumes about the Nymble API, in one place.

Each value cites the section of ``shared/nymble-api/CONTRACT.md`` it follows and its tag there:
[D] documented, [P] partly documented, [A] assumption. When Nymble documents something new,
this is the module to change.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "API_PATHS",
    "BULK_ENDPOINTS",
    "COMMON_UNITS",
    "ENVIRONMENTS",
    "FieldType",
    "ISO_4217",
    "PRODUCT_FIELDS",
    "PUT_ENDPOINTS",
    "RETRY_STATUSES",
    "RetryDefaults",
]

# §0.2 [D]: the two documented environments. Production is never a default (see targets.py).
ENVIRONMENTS = {
    "sandbox": "https://api-dev.achievemomentum.com",
    "production": "https://api.achievemomentum.com",
}

# §2.1 [D], §3.1 [A], §4.1 [D]: the list routes (paged, §5.4), each also the base of the
# routes of one record (``/api/products/{sku}``, ``/api/orders/{id}``, ...).
API_PATHS = {
    "products": "/api/products",
    "orders": "/api/orders",
    "customers": "/api/customers",
    "invoices": "/api/invoices",
}

# §2.8 [A route D], §3.5 [P]: bulk upsert routes, top-level JSON array bodies.
BULK_ENDPOINTS = {
    "products": "/api/products/bulk",
    "orders": "/api/orders/bulk",
}

# §4.1 [D], §6.20: customers have no bulk route; each is upserted by ``PUT`` on the list route.
PUT_ENDPOINTS = {
    "customers": API_PATHS["customers"],
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


# §2.3, §3.2: currencyCode is an ISO 4217 code. Active codes as of 2025 (list one, minus funds
# and precious metals); a closed set, so anything else is rejected before sending.
ISO_4217 = frozenset(
    """
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split()
)

# §2.5: weightUnit/dimensionsUnit are open lists ("examples given"); these are the common
# ones. Another value is sent as it is, with a warning in the run summary.
COMMON_UNITS = {
    "weightUnit": frozenset({"lb", "lbs", "kg", "g", "oz", "t"}),
    "dimensionsUnit": frozenset({"in", "cm", "mm", "m", "ft"}),
}
