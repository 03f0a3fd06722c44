"""Spreadsheet cells as the canonical text the mappers read, one column at a time.

python-calamine gives a cell as a Python value typed as the sheet types it: ``str``,
``float`` (every number of an .xlsx), ``int``, ``bool``, ``date``, ``datetime``, ``time`` or
``timedelta``, and ``""`` for an empty cell. The text of each:

- text as written (``"00123"`` keeps its zeros); an empty cell is null, as in a CSV;
- a whole number without ``.0`` (``123``; Excel stores ``00123`` typed as a number as 123);
- any other number in its shortest round-trip form, never with more than the 15 significant
  digits Excel keeps and shows (a formula's ``0.1+0.2`` is ``0.3``), never in exponent form,
  with the decimal mark asked for: the one the job's ``number:`` style reads text cells with
  (``1,5``), so that a number cell reads back as the same number, never as ``15``;
- dates and datetimes as ISO 8601 (``2024-05-30``, ``2024-05-30T18:05:00``), times as
  ``18:05:00``, durations as hours (``26:30:00``), booleans as ``true``/``false``.

Values are grouped by type and each group is converted by numpy/Arrow in one call: the only
per-cell Python work is asking each cell's type (and formatting the rare long number).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["column_text", "number_text"]

_EXACT_DIGITS = 15  # what Excel keeps of a number, and shows at most
_SHORT = 16  # longer shortest-form text may hold more than 15 significant digits


def column_text(values: np.ndarray, decimal: str = ".") -> pa.Array:
    """One column of cells (a contiguous 1-D object array: Arrow reads a strided one ten
    times slower) as a ``pa.string()`` array; ``decimal`` is the decimal mark of numbers."""
    try:  # most columns are text: no need to ask each cell its type
        return _render(str, values, decimal)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    types = np.fromiter(map(type, values), dtype=object, count=len(values))
    kinds = set(types.tolist()) if len(values) else {str}
    if len(kinds) == 1:
        return _render(kinds.pop(), values, decimal)
    out = pa.nulls(len(values), pa.string())
    for kind in kinds:
        mask = types == kind
        out = pc.replace_with_mask(out, pa.array(mask), _render(kind, values[mask], decimal))
    return out


def number_text(values: np.ndarray, decimal: str = ".") -> pa.Array:
    """Numbers (float64) as text: whole ones as integers, the others shortest and at most
    15 significant digits, never in exponent form, with ``decimal`` as the decimal mark."""
    whole = (np.trunc(values) == values) & (np.abs(values) < 10.0**_EXACT_DIGITS)
    integers = pa.array(np.where(whole, values, 0).astype(np.int64)).cast(pa.string())
    if whole.all():
        return integers
    text = pc.if_else(pa.array(whole), integers, pa.array(values).cast(pa.string()))
    long = pc.greater(pc.utf8_length(text), _SHORT).to_numpy(zero_copy_only=False)
    odd = ~whole & (long | pc.match_substring(text, "e").to_numpy(zero_copy_only=False))
    if odd.any():  # rare: a formula's float noise, a huge or a tiny number
        exact = [_positional(v) for v in values[odd]]
        text = pc.replace_with_mask(text, pa.array(odd), pa.array(exact, pa.string()))
    return text if decimal == "." else pc.replace_substring(text, ".", decimal)


def _positional(value: float) -> str:
    return np.format_float_positional(
        value, precision=_EXACT_DIGITS, unique=False, fractional=False, trim="-"
    )


def _render(kind: type, values: np.ndarray, decimal: str) -> pa.Array:
    if kind is str:
        text = pa.array(values, pa.string())
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    if kind is float:
        return number_text(values.astype(np.float64), decimal)
    if kind is bool:
        return pc.if_else(pa.array(values.astype(bool)), "true", "false")
    if kind is int:
        return pa.array(values, pa.int64()).cast(pa.string())
    if kind is dt.datetime:
        return _datetimes(pa.array(values, pa.timestamp("us")))
    if kind is dt.date:
        return pa.array(values, pa.date32()).cast(pa.string())
    return pa.array([_other(v) for v in values], pa.string())


def _datetimes(stamps: pa.Array) -> pa.Array:
    seconds = stamps.cast(pa.timestamp("s"), safe=False)
    whole = pc.all(pc.equal(seconds.cast(pa.timestamp("us")), stamps)).as_py()
    # Excel keeps milliseconds: shown when a value of the group has them
    shown = seconds if whole else stamps.cast(pa.timestamp("ms"), safe=False)
    text = shown.cast(pa.string())
    return pc.replace_substring(text, " ", "T", max_replacements=1)


def _other(value: object) -> str:
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):  # Excel's [h]:mm:ss
        seconds = round(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return str(value)
