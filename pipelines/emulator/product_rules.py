"""Pure product rules: structural validation (§6.1), business checks (§2.8) and merging (§6.7)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

from .casing import CANONICAL_NAMES, NESTED_NAMES, normalize_keys
from .problems import ProblemError
from .settings import FaultConfig

__all__ = [
    "ItemChecks",
    "merge_product",
    "new_product",
    "validate_bulk_products",
    "validate_product",
]

_SERVER_OWNED = frozenset(
    {"productId", "organizationId", "createdAt", "updatedAt", "priceFormatted"}
)
# Items holding other names take the full path: server-owned fields to drop, nested objects to
# normalize, non-canonical names to fix.
_FAST_NAMES = CANONICAL_NAMES - _SERVER_OWNED - (NESTED_NAMES - {"prices"})
_PRICE_NAMES = frozenset({"tier", "price", "atQuantity"})
# Checked against type(): bool is not a number here.
_DICT, _STR = {dict}, {str}
_NUMBER_TYPES = frozenset({int, float})
_NUMBER_OR_NONE = _NUMBER_TYPES | {type(None)}
_BOOL_OR_NONE = frozenset({bool, type(None)})
_LIST_OR_NONE = frozenset({list, type(None)})
_INT_OR_NONE = frozenset({int, type(None)})
_NOT_STRING = "The JSON value could not be converted to System.String."
_NOT_NUMBER = "The JSON value could not be converted to System.Decimal."
_NOT_BOOL = "The JSON value could not be converted to System.Boolean."
_MAX_INT = 2_147_483_647


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_price_entry(entry: Any, where: str, errors: dict[str, list[str]]) -> None:
    if not isinstance(entry, dict):
        errors[where] = ["The JSON value could not be converted to ProductPrice."]
        return
    tier, price, at = entry.get("tier"), entry.get("price"), entry.get("atQuantity")
    if not isinstance(tier, str) or not tier:
        errors[where + ".Tier"] = ["The Tier field is required." if not tier else _NOT_STRING]
    if not _is_number(price):
        errors[where + ".Price"] = [
            "The Price field is required." if price is None else _NOT_NUMBER
        ]
    if at is None:
        entry["atQuantity"] = 1  # §2.4: an omitted quantity break is the base price
    elif not isinstance(at, int) or isinstance(at, bool) or not 1 <= at <= _MAX_INT:
        errors[where + ".AtQuantity"] = [f"The field AtQuantity must be between 1 and {_MAX_INT}."]
    entry.pop("priceFormatted", None)


def _check_fields(doc: dict[str, Any], where: str, errors: dict[str, list[str]]) -> None:
    sku = doc.get("sku")
    if sku is None or (isinstance(sku, str) and not sku.strip()):
        errors[where + "Sku"] = ["The Sku field is required."]
    elif not isinstance(sku, str):
        errors[where + "Sku"] = [_NOT_STRING]
    price = doc.get("price")
    if price is not None and not _is_number(price):
        errors[where + "Price"] = [_NOT_NUMBER]
    active = doc.get("active")
    if active is not None and not isinstance(active, bool):
        errors[where + "Active"] = [_NOT_BOOL]
    prices = doc.get("prices")
    if prices is None:
        return
    if not isinstance(prices, list):
        errors[where + "Prices"] = ["The JSON value could not be converted to List<ProductPrice>."]
        return
    for i, entry in enumerate(prices):
        _check_price_entry(entry, f"{where}Prices[{i}]", errors)


def _column(items: list[dict[str, Any]], name: str) -> list[Any]:
    return list(map(dict.get, items, repeat(name)))


def _types(values: list[Any]) -> set[type]:
    return set(map(type, values))


def _names(objects: list[dict[str, Any]]) -> set[str]:
    """Every key of these objects (a set union reuses the dicts' hashes: cheaper than chain)."""
    return set().union(*objects)


def _accept_prices(lists: list[Any]) -> bool:
    """The `prices` half of `_accept_all`: every entry a canonical, well-formed object."""
    if not _types(lists) <= _LIST_OR_NONE:
        return False
    entries = list(chain.from_iterable(filter(None, lists)))
    if not entries:
        return True
    if _types(entries) != _DICT or not _PRICE_NAMES.issuperset(_names(entries)):
        return False
    tiers, ats = _column(entries, "tier"), _column(entries, "atQuantity")
    if _types(tiers) != _STR or not all(tiers):
        return False
    if not _types(_column(entries, "price")) <= _NUMBER_TYPES:
        return False
    at_types = _types(ats)
    if not at_types <= _INT_OR_NONE:
        return False
    if int in at_types:
        numbers = [at for at in ats if at is not None]
        if min(numbers) < 1 or max(numbers) > _MAX_INT:
            return False
    if type(None) in at_types:
        for entry, at in zip(entries, ats, strict=True):
            if at is None:
                entry["atQuantity"] = 1  # §2.4: an omitted quantity break is the base price
    return True


def _accept_all(items: list[Any]) -> bool:
    """True for a bulk body whose items all have the common shape: canonical names only and
    well-typed fields. The hot path, checked a column at a time.

    Fills omitted `atQuantity` with 1 (§2.4). Anything unusual returns False and the body takes
    the full path, which normalizes names and reports every problem.
    """
    if not items:
        return True
    if _types(items) != _DICT or not _FAST_NAMES.issuperset(_names(items)):
        return False
    skus, exts = _column(items, "sku"), _column(items, "externalId")
    if _types(skus) != _STR or _types(exts) != _STR or not (all(skus) and all(exts)):
        return False
    if any(map(str.isspace, skus)) or any(map(str.isspace, exts)):
        return False
    if not _types(_column(items, "price")) <= _NUMBER_OR_NONE:
        return False
    if not _types(_column(items, "active")) <= _BOOL_OR_NONE:
        return False
    return _accept_prices(_column(items, "prices"))


def validate_product(
    item: Any, where: str, errors: dict[str, list[str]], require_external_id: bool
) -> dict[str, Any] | None:
    """Normalize one product body and add `{where}Field` errors for every problem.

    Returns None when the item is not an object.
    """
    if type(item) is not dict:
        errors[where.rstrip(".") or "$"] = ["The JSON value could not be converted to Product."]
        return None
    doc = normalize_keys(item)
    for key in _SERVER_OWNED:
        doc.pop(key, None)
    _check_fields(doc, where, errors)
    external_id = doc.get("externalId")
    if require_external_id and (not isinstance(external_id, str) or not external_id.strip()):
        missing = external_id is None or external_id == ""
        errors[where + "ExternalId"] = [
            "The ExternalId field is required." if missing else _NOT_STRING
        ]
    elif external_id is not None and not isinstance(external_id, str):
        errors[where + "ExternalId"] = [_NOT_STRING]
    return doc


def validate_bulk_products(body: Any, max_items: int) -> list[dict[str, Any]]:
    """Validate a whole bulk body; any structural problem raises a 400 and nothing is written."""
    if not isinstance(body, list):
        raise ProblemError.of(400, {"$": ["The request body must be a JSON array of products."]})
    if len(body) > max_items:
        message = f"A bulk request may hold at most {max_items} items; this one has {len(body)}."
        raise ProblemError.of(400, {"$": [message]})
    if _accept_all(body):
        return body
    errors: dict[str, list[str]] = {}
    docs = [validate_product(item, f"[{i}].", errors, True) for i, item in enumerate(body)]
    if errors:
        raise ProblemError.of(400, errors)
    return docs  # type: ignore[return-value]  # no errors means every item was an object


@dataclass(frozen=True)
class ItemChecks:
    """Per-item business checks (§2.8): simulated SKU failures, unknown tiers and categories."""

    fail_skus: frozenset[str] = frozenset()
    unknown_tiers: frozenset[str] = frozenset()
    known_categories: frozenset[str] | None = None  # None: categories are auto-created

    @property
    def active(self) -> bool:
        """False when no check can fail, so the hot path can skip them."""
        return bool(self.fail_skus or self.unknown_tiers or self.known_categories is not None)

    @classmethod
    def build(cls, faults: FaultConfig, known_categories: set[str] | None = None) -> ItemChecks:
        return cls(
            frozenset(s.casefold() for s in faults.fail_skus),
            frozenset(t.casefold() for t in faults.unknown_tiers),
            None if known_categories is None else frozenset(known_categories),
        )

    def errors(self, doc: dict[str, Any]) -> dict[str, list[str]] | None:
        sku = doc["sku"]
        if self.fail_skus and sku.casefold() in self.fail_skus:
            return {"Sku": [f"Simulated failure for SKU '{sku}'"]}
        if self.unknown_tiers and doc.get("prices"):
            for entry in doc["prices"]:
                if entry["tier"].casefold() in self.unknown_tiers:
                    return {"Prices": [f"Unknown price tier '{entry['tier']}'"]}
        category = doc.get("category")
        known = self.known_categories
        if known is not None and category and str(category).casefold() not in known:
            return {"Category": [f"Unknown category '{category}'"]}
        return None


def new_product(incoming: dict[str, Any], org: str, product_id: str, now: str) -> dict[str, Any]:
    """The stored document of a new product. Fills `incoming` in place (it is ours: parsed from
    the request); nulls stay as given, since the API returns unset fields as null."""
    incoming["productId"] = product_id
    incoming["organizationId"] = org
    if incoming.get("active") is None:
        incoming["active"] = True
    if incoming.get("currencyCode") is None:
        incoming["currencyCode"] = "USD"
    incoming["createdAt"] = incoming["updatedAt"] = now
    return incoming


def merge_product(stored: dict[str, Any], incoming: dict[str, Any], now: str) -> dict[str, Any]:
    """Supplied fields replace, null or omitted ones keep the stored value (§6.7)."""
    if None in incoming.values():
        incoming = {k: v for k, v in incoming.items() if v is not None}
    doc = {**stored, **incoming}
    doc["updatedAt"] = now
    return doc
