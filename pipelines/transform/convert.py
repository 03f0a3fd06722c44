"""Column conversions from source text to the API's types, vectorized, reporting what failed.

Every function returns the converted array (null where the input was null or invalid) and a
boolean mask of the cells that held a value that did not convert: those rows are rejected.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import FieldType

__all__ = ["as_text", "convert", "normalize_text", "present", "value_map"]

_DECIMAL = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
# Integers above 2**53 cannot round-trip through the float parse below.
_MAX_EXACT_INT = 2**53


def normalize_text(column: pa.Array) -> pa.Array:
    """Trim stray spaces and treat a blank cell as missing, as PIM exports need. Any other
    type (Parquet's numbers, pandas' large strings) is read as its text, as one string type
    (the JSON writer's kernels take no mix of string types)."""
    if not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    if _already_tidy(column):
        return column
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)


# First or last bytes that may be (part of) whitespace: ASCII tab..CR and space, and any
# non-ASCII byte, since Unicode spaces (NBSP, U+3000 ...) are multi-byte.
_MAY_BE_SPACE = np.zeros(256, dtype=bool)
_MAY_BE_SPACE[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]] = True
_MAY_BE_SPACE[0x80:] = True


def _already_tidy(column: pa.Array) -> bool:
    """True when no value is blank or starts or ends with what may be whitespace: then
    trimming would change nothing. Reads only the first and last byte of each value, so most
    clean columns skip three kernels; a doubtful one takes them."""
    offsets, data = column.buffers()[1:3]
    if data is None or not len(column):
        return not len(column) or column.null_count == len(column)
    wide = pa.types.is_large_string(column.type)
    bounds = np.frombuffer(offsets, np.int64 if wide else np.int32)
    bounds = bounds[column.offset : column.offset + len(column) + 1]
    starts, ends = bounds[:-1], bounds[1:]
    if column.null_count:
        valid = present(column)
        starts, ends = starts[valid], ends[valid]
    if not len(starts):
        return True
    if (ends <= starts).any():
        return False  # a blank value becomes null
    raw = np.frombuffer(data, np.uint8)
    return not (_MAY_BE_SPACE[raw[starts]].any() or _MAY_BE_SPACE[raw[ends - 1]].any())


def present(column: pa.Array) -> np.ndarray:
    return pc.is_valid(column).to_numpy(zero_copy_only=False)


def convert(column: pa.Array, kind: FieldType) -> tuple[pa.Array, np.ndarray]:
    if kind == "string":
        return column, np.zeros(len(column), dtype=bool)
    if kind == "boolean":
        return _to_bool(column)
    values, bad = _to_float(column)
    if kind == "decimal":
        return values, bad
    return _to_int(values, bad)


def _to_float(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    # The common case first: Arrow's own parse accepts every finite number the pattern below
    # accepts and rejects the rest, except nan/inf spellings, which send the column the slow
    # way. A column with any bad cell raises and takes the pattern, which names each one.
    try:
        values = pc.cast(column, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = None
    if values is not None:
        floats = values.to_numpy(zero_copy_only=False)
        if np.isfinite(floats[present(values)]).all():
            return values, np.zeros(len(column), dtype=bool)
    ok = pc.fill_null(pc.match_substring_regex(column, _DECIMAL), False)
    bad = present(column) & ~ok.to_numpy(zero_copy_only=False)
    cleaned = pc.if_else(ok, column, pa.scalar(None, column.type))
    return pc.cast(cleaned, pa.float64()), bad


def _to_int(values: pa.Array, bad: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    floats = values.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        integral = (np.floor(floats) == floats) & (np.abs(floats) < _MAX_EXACT_INT)
    bad = bad | (~np.isnan(floats) & ~integral)
    mask = np.isnan(floats) | ~integral
    ints = np.where(mask, 0, floats).astype(np.int64)
    return pa.array(ints, type=pa.int64(), mask=mask), bad


def _to_bool(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    lowered = pc.utf8_lower(column)
    is_true = pc.fill_null(pc.is_in(lowered, pa.array(_TRUE)), False)
    is_false = pc.fill_null(pc.is_in(lowered, pa.array(_FALSE)), False)
    known = pc.or_(is_true, is_false)
    bad = present(column) & ~known.to_numpy(zero_copy_only=False)
    return pc.if_else(known, is_true, pa.scalar(None, pa.bool_())), bad


def as_text(value) -> str:
    """A job-file value as the text the converters parse (YAML booleans as true/false)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def value_map(column: pa.Array, mapping: dict, default=None) -> tuple[pa.Array, np.ndarray]:
    """Translate codes (e.g. ERP statuses) through ``mapping``; returns the translated text and
    the cells whose code is not in it (none when a ``default`` fills them)."""
    keys = pa.array([str(k) for k in mapping])
    targets = pa.array([as_text(v) for v in mapping.values()])
    index = pc.index_in(column, value_set=keys)
    mapped = pc.take(targets, index)
    unmapped = present(column) & ~present(index)
    if default is not None:
        return pc.if_else(pa.array(unmapped), pa.scalar(as_text(default)), mapped), np.zeros(
            len(column), dtype=bool
        )
    return mapped, unmapped
