"""Field-by-field differences between a record the org holds and one a job would send.

Both sides are flattened to dotted paths (``customer.customerNumber``, ``items[2].quantity``),
so a nested object or a changed line shows as the one field that differs. Only the fields the
new record carries are compared (the API adds ids, totals and formatted prices of its own),
names case-insensitively (CONTRACT §0.3), numbers by value (``18.50`` equals ``18.5``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["changed_fields", "flatten"]

_ABSENT = object()


def changed_fields(stored: dict, new: dict) -> dict[str, list]:
    """``{path: [old, new]}`` for each field of ``new`` whose value differs in ``stored``;
    a list that grew or shrank shows the added or removed entries whole."""
    old_flat, new_flat = flatten(stored), flatten(new)
    lowered = {k.lower(): v for k, v in old_flat.items()}
    changes = {}
    for path, value in new_flat.items():
        old = lowered.get(path.lower(), _ABSENT)
        if old is _ABSENT and value is None:
            continue  # the API leaves out what is empty: nothing differs
        if old is _ABSENT or not _same(old, value):
            changes[path] = [None if old is _ABSENT else old, value]
    for path, old in old_flat.items():  # lines the new record no longer has
        if _is_extra_entry(path, new_flat) and path.lower() not in {p.lower() for p in changes}:
            changes[path] = [old, None]
    return dict(sorted(changes.items(), key=lambda kv: _order(kv[0])))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a JSON value by dotted path; lists by index."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child in value.items():
            out |= flatten(child, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = {}
        for i, child in enumerate(value):
            out |= flatten(child, f"{prefix}[{i}]")
        return out
    return {prefix: value}


def _is_extra_entry(path: str, new_flat: dict[str, Any]) -> bool:
    """An old list entry (``items[3].sku``) beyond the new record's entries."""
    head, sep, _ = path.partition("]")
    if not sep or "[" not in head:
        return False
    stem = head + "]"
    return not any(p.lower().startswith(stem.lower()) for p in new_flat)


def _same(old: Any, new: Any) -> bool:
    if old == new:
        return True
    numbers = (int, float, str)
    if isinstance(old, numbers) and isinstance(new, numbers) and not isinstance(old, bool):
        try:
            return Decimal(str(old)) == Decimal(str(new))
        except InvalidOperation:
            return False
    return False


def _order(path: str) -> tuple:
    """Paths in reading order: fields, then list entries by index."""
    head, sep, rest = path.partition("[")
    if not sep:
        return (path, -1, "")
    index, _, tail = rest.partition("]")
    return (head, int(index) if index.isdigit() else 0, tail)
