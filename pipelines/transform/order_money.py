"""An order's money as a migration proof adds it up, per currency and month, in exact decimals.

For each order: its total (``orderTotal``, or what CONTRACT §3.5 computes when it is absent:
``subtotal`` or the sum of line totals, plus ``tax`` and shipping), its line totals as
quantity × price, and its shipping. Source and target are summed by the same code, from records
parsed with exact decimals (never through a float); a month is the order date's month in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

__all__ = ["MEASURES", "MoneyTotals", "OrderMoney", "order_money"]

MEASURES = ("order_total", "line_total", "shipping")
_ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderMoney:
    currency: str | None
    month: str | None  # "2024-05", in UTC
    order_total: Decimal
    line_total: Decimal  # Σ quantity × price
    shipping: Decimal

    def to_bytes(self) -> bytes:
        """A compact, exact form (decimals as their text) to keep on disk beside a record."""
        values = [self.currency, self.month, *(str(getattr(self, m)) for m in MEASURES)]
        return orjson.dumps(values)

    @classmethod
    def from_bytes(cls, data: bytes) -> OrderMoney:
        currency, month, *amounts = orjson.loads(data)
        return cls(currency, month, *(Decimal(a) for a in amounts))

    def booked(self, currency: str | None, month: str | None) -> OrderMoney:
        """The same amounts with the currency and month filled in where this order has none
        (an order sent without a currency is booked in the one the target gave it)."""
        return OrderMoney(
            self.currency or currency, self.month or month, *(getattr(self, m) for m in MEASURES)
        )


def order_money(order: dict) -> OrderMoney:
    """The money of one order (names matched case-insensitively, CONTRACT §0.3)."""
    order = _lowered(order)
    items = order.get("items")
    lines = [_lowered(i) for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    line_total = sum((_amount(i, "quantity") * _amount(i, "price") for i in lines), _ZERO)
    shipping = _amount(_lowered(order.get("shippingdetails")), "shippingtotal")
    total = _number(order.get("ordertotal"))
    if total is None:
        subtotal = _number(order.get("subtotal"))
        if subtotal is None:
            subtotal = sum((_line_amount(i) for i in lines), _ZERO)
        total = subtotal + _amount(order, "tax") + shipping
    month = _utc_month(order.get("orderdate"))
    return OrderMoney(order.get("currencycode") or None, month, total, line_total, shipping)


def _utc_month(value: Any) -> str | None:
    """``2024-05`` for an ISO 8601 date or time (with a zone: that instant's month in UTC)."""
    if not isinstance(value, str) or len(value) < 7:
        return None
    if len(value) <= 10 or value.endswith(("Z", "+00:00")):
        return value[:7]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value[:7]
    return moment.astimezone(UTC).strftime("%Y-%m") if moment.tzinfo else value[:7]


def _lowered(obj: Any) -> dict:
    """A JSON object with its names in lower case: one pass, then plain lookups."""
    return {str(k).lower(): v for k, v in obj.items()} if isinstance(obj, dict) else {}


def _line_amount(line: dict) -> Decimal:
    given = _number(line.get("linetotal"))
    return given if given is not None else _amount(line, "quantity") * _amount(line, "price")


def _amount(obj: dict, name: str) -> Decimal:
    value = _number(obj.get(name))
    return _ZERO if value is None else value


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    try:  # a float (a reader that parsed inexactly) by its shortest text; text as written
        return Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        return None


@dataclass
class MoneyTotals:
    """Sums per (currency, month): orders and each measure."""

    sums: dict[tuple[str, str], list] = field(default_factory=dict)

    def add(self, money: OrderMoney) -> None:
        key = (money.currency or "(none)", money.month or "(no date)")
        row = self.sums.setdefault(key, [0, _ZERO, _ZERO, _ZERO])
        row[0] += 1
        for i, measure in enumerate(MEASURES, start=1):
            row[i] += getattr(money, measure)
