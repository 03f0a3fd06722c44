"""Money columns as exact decimals (CONTRACT §5.11): never float64.

Server NUMERIC/DECIMAL columns arrive as ``decimal128`` and keep their value; text (CSV, SQLite
TEXT) is checked against a plain decimal pattern and cast straight to ``decimal128``. Every
money column of a job is carried at one scale (``money_scale``, default 4, SQL Server's
``money``), so a value's JSON text, hence its content hash, does not depend on which other
values share its chunk; a value with more decimals than that is rejected, never rounded.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.transform.convert import present

__all__ = ["money_type", "to_money"]

_PLAIN = r"^[+-]?(\d+(\.\d*)?|\.\d+)$"
_PRECISION = 38


def money_type(scale: int) -> pa.DataType:
    return pa.decimal128(_PRECISION, scale)


def to_money(values: pa.Array, scale: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(decimal128 array at ``scale``, mask of values that are not numbers, mask of values with
    more decimals than ``scale``); both masks only flag present values, which become null."""
    kind = money_type(scale)
    none = np.zeros(len(values), dtype=bool)
    if pa.types.is_decimal(values.type):
        return _rescaled(values, scale)
    if pa.types.is_integer(values.type):
        return values.cast(kind), none, none
    if pa.types.is_floating(values.type):
        # a float column (a REAL in SQLite) is already inexact: print it shortest, then parse
        values = pc.cast(values, pa.string())
    text = values if pa.types.is_string(values.type) else values.cast(pa.string())
    plain = pc.fill_null(pc.match_substring_regex(text, _PLAIN), False)
    places = pc.utf8_length(pc.replace_substring_regex(text, r"^[^.]*\.?", ""))
    fits = pc.and_(plain, pc.fill_null(pc.less_equal(places, scale), False))
    is_present = present(text)
    bad = is_present & ~plain.to_numpy(zero_copy_only=False)
    too_fine = is_present & ~bad & ~fits.to_numpy(zero_copy_only=False)
    kept = pc.if_else(fits, _no_trailing_dot(text), pa.scalar(None, pa.string()))
    return pc.cast(kept, kind), bad, too_fine


def _no_trailing_dot(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(text, r"\.$", "")


def _rescaled(values: pa.Array, scale: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    none = np.zeros(len(values), dtype=bool)
    if values.type.scale <= scale:
        return values.cast(money_type(scale)), none, none
    rounded = values.cast(money_type(scale), safe=False)
    exact = pc.fill_null(pc.equal(rounded.cast(values.type), values), True)
    too_fine = ~exact.to_numpy(zero_copy_only=False)
    return pc.if_else(exact, rounded, pa.scalar(None, money_type(scale))), none, too_fine
