"""Output views of stored documents: adds the `*Formatted` money twins (§5.11)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = ["format_money", "render_invoice", "render_order", "render_product"]

_SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "EUR": "€", "GBP": "£", "JPY": "¥", "MXN": "MX$"}
_ORDER_MONEY = ("subtotal", "tax", "orderTotal")
_INVOICE_MONEY = ("subtotal", "tax", "total", "amountPaid", "balanceDue")


def format_money(value: Any, currency: str | None) -> str | None:
    """`24.5, "USD"` -> `"$24.50"`; numbers keep full precision elsewhere, only this rounds."""
    if not isinstance(value, (int, float, Decimal)) or isinstance(value, bool):
        return None
    code = (currency or "USD").upper()
    symbol = _SYMBOLS.get(code, code + " ")
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.2f}"


def _add_formatted(doc: dict[str, Any], keys: tuple[str, ...], currency: str | None) -> None:
    for key in keys:
        if key in doc:
            doc[key + "Formatted"] = format_money(doc[key], currency)


def render_product(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    currency = out.get("currencyCode")
    _add_formatted(out, ("price",), currency)
    if isinstance(out.get("prices"), list):
        out["prices"] = [
            {**p, "priceFormatted": format_money(p.get("price"), currency)} for p in out["prices"]
        ]
    return out


def render_order(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    currency = out.get("currencyCode")
    _add_formatted(out, _ORDER_MONEY, currency)
    out["items"] = [_render_line(item, currency) for item in out.get("items") or []]
    if isinstance(out.get("shippingDetails"), dict):
        shipping = dict(out["shippingDetails"])
        _add_formatted(shipping, ("shippingTotal",), currency)
        out["shippingDetails"] = shipping
    return out


def _render_line(item: dict[str, Any], currency: str | None) -> dict[str, Any]:
    line = dict(item)
    _add_formatted(line, ("price", "lineTotal"), currency)
    return line


def render_invoice(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    currency = out.get("currencyCode")
    _add_formatted(out, _INVOICE_MONEY, currency)
    if isinstance(out.get("items"), list):
        out["items"] = [_render_line(i, currency) for i in out["items"] if isinstance(i, dict)]
    return out
