"""API response bodies parsed with every number's exact value, at orjson's speed (CONTRACT §5.11).

A double holds any decimal of up to 15 significant digits so that its shortest text (``repr``,
which ``Decimal(str(x))`` and orjson's output use) has the same value; the API's decimals
(money, System.Decimal) may carry up to 28. A body is scanned once for a run of 16 digits and
points (a translate and a substring search, a twentieth of a regular expression's time; about
0.1 ms on a page of 100 orders, which orjson parses in 0.3 ms: bench/bench_exact_reads.py);
without one, orjson parses it. With one (rare: a long amount, or a long digit string inside a
text value, which only costs the slower parse, about 1 ms a page), the stdlib parser reads it,
each number a float where that float's shortest text has the number's value, a ``Decimal`` of
its digits only where it has not. So a page with one long amount keeps every other number the
float it would be, and that one exact.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["loads_exact"]

_DIGITS = bytes(0x31 if chr(c) in "0123456789." else 0x30 for c in range(256))
_LONG_RUN = b"1" * 16


def loads_exact(body: bytes | str) -> Any:
    """A JSON body, numbers exact: ints, floats where exact, ``Decimal`` beyond a double.
    ``NaN`` and ``Infinity`` are refused as orjson refuses them; raises ``ValueError``
    (orjson's or json's decode error) on malformed input."""
    raw = body.encode() if isinstance(body, str) else body
    if _LONG_RUN not in raw.translate(_DIGITS):
        return orjson.loads(raw)
    return json.loads(raw, parse_float=_number, parse_constant=_not_a_number)


def _number(text: str) -> float | Decimal:
    if len(text) < 16:  # at most 15 digits: the float's shortest text has the same value
        return float(text)
    value, exact = float(text), Decimal(text)
    return value if Decimal(repr(value)) == exact else exact


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
