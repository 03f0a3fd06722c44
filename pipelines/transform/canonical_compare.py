"""Whether the record the org holds says what the job's record says, field by field, as
`reconcile` judges it.

The comparison is ``record_diff``'s (dotted paths, names case-insensitively, numbers by exact
decimal value) with three rules a migration proof needs:

- order lines are paired by SKU and position: the n-th line of a SKU with the n-th line of
  that SKU at the target, so a reordered order does not show every line as changed;
- a field the job sends empty is the target's to fill (its default, or the value it keeps:
  CONTRACT §6.7, §6.24), so it is not a difference;
- two times are the same when they are the same instant: dates compare in UTC.

Both records are canonical JSON parsed with exact decimals (:func:`parse_exact`).
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipelines.transform.record_diff import changed_fields, flatten

__all__ = ["LINES", "differences", "parse_exact", "same_instant"]

LINES = "items"  # the list whose entries are paired by SKU (an order's lines)


def parse_exact(body: bytes) -> dict:
    """Canonical JSON with every number a Decimal of its exact text (never a float)."""
    return json.loads(body, parse_float=Decimal, parse_int=Decimal)


def differences(stored: dict, sent: dict) -> dict[str, list]:
    """``{path: [target value, source value]}`` for each field that differs."""
    paired = _paired_lines(stored, sent)
    changes = changed_fields(paired, sent)
    sent_flat = {k.lower() for k, v in flatten(sent).items() if v is None}
    return {
        path: pair
        for path, pair in changes.items()
        if not (pair[1] is None and path.lower() in sent_flat) and not same_instant(*pair)
    }


def same_instant(old: Any, new: Any) -> bool:
    """Whether two ISO 8601 texts with a zone name the same instant (``Z`` = ``+00:00``)."""
    if not (isinstance(old, str) and isinstance(new, str)) or old == new:
        return False
    first, second = _instant(old), _instant(new)
    return first is not None and first == second


def _instant(text: str) -> datetime | None:
    if len(text) < 19 or text[10] not in "T ":
        return None  # not a date and time: plain text is compared as it is
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _paired_lines(stored: dict, sent: dict) -> dict:
    """``stored`` with its lines at the positions of the job's lines they pair with (an
    empty line where none does); lines nothing pairs with come last, shown as lines the
    job does not send."""
    held, wanted = stored.get(LINES), sent.get(LINES)
    if not (_lines(held) and _lines(wanted)) or _skus(held) == _skus(wanted):
        return stored
    free: dict[str, list[int]] = {}
    for i, sku in enumerate(_skus(held)):
        free.setdefault(sku, []).append(i)
    pairs = [free[sku].pop(0) if free.get(sku) else None for sku in _skus(wanted)]
    used = {i for i in pairs if i is not None}
    rest = [held[i] for i in range(len(held)) if i not in used]
    return {**stored, LINES: [{} if i is None else held[i] for i in pairs] + rest}


def _lines(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _skus(lines: list[dict]) -> list[str]:
    return [str(line.get("sku") or "").casefold() for line in lines]
