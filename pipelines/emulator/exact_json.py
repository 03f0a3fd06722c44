"""JSON whose numbers keep their decimal value: an order's money is stored as it was sent
(CONTRACT §3.5, §5.11 "keep full precision in the numbers"), as the API's System.Decimal keeps
it, not rounded through a binary float.

A double carries any number of up to 15 significant digits exactly (its shortest text, which
``repr`` gives, has the same value), so orjson's fast floats are exact for everyday money; a
document holding a longer run of digits is parsed the slow way, numbers as ``Decimal``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["as_decimal", "dumps", "loads"]

# Digits and points as "1", all else "0": 16 in a row may be a number a double cannot hold (a
# long digit string inside a text value counts too, which only costs the slower parse). A
# translate and a substring search: a tenth of what a regular expression takes.
_DIGITS = bytes(0x31 if chr(c) in "0123456789." else 0x30 for c in range(256))
_LONG_RUN = b"1" * 16


def loads(data: bytes | str) -> Any:
    """JSON with every number's exact value: ints, floats of up to 15 digits, ``Decimal``
    beyond; ``NaN``/``Infinity`` are refused. Raises ``ValueError`` on malformed input."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_RUN not in raw.translate(_DIGITS):
        return orjson.loads(raw)
    return json.loads(raw, parse_float=Decimal, parse_constant=_not_a_number)


def dumps(value: Any) -> bytes:
    """orjson's bytes, a ``Decimal`` written as its plain digits (``185.00``, never ``1E+2``)."""
    return orjson.dumps(value, default=_decimal_text)


def as_decimal(value: int | float | Decimal) -> Decimal:
    """A number as an exact decimal; a float by its shortest text, the value it was sent as."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _decimal_text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
