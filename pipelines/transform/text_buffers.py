"""Whole-column work on the bytes of an Arrow string array, where a kernel call per value
would cost more than the work itself: which bytes occur at all, every value as one line of
a single text (one regex scan then checks a whole column), and single bytes deleted or
swapped in every value at once.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_lines", "bytes_used", "empty_values", "rewrite_bytes"]

_NEWLINE = 0x0A


def _region(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets of the values from the first one's start, n + 1 of them; their bytes).
    ``column`` is ``pa.string()``; a slice is read where it lies, nothing is copied."""
    offsets, data = column.buffers()[1:3]
    bounds = np.frombuffer(offsets, np.int32)[column.offset : column.offset + len(column) + 1]
    if data is None or not len(column):
        return np.zeros(len(column) + 1, np.int32), np.zeros(0, np.uint8)
    return bounds - bounds[0], np.frombuffer(data, np.uint8)[bounds[0] : bounds[-1]]


def bytes_used(column: pa.Array) -> np.ndarray:
    """256 booleans: which byte values occur in the column's text (null slots may count)."""
    _, raw = _region(column)
    return np.bincount(raw, minlength=256) > 0


def empty_values(column: pa.Array) -> np.ndarray | None:
    """The mask of values that are ``""`` (not null), or None when there is none."""
    offsets, _ = _region(column)
    empty = offsets[1:] == offsets[:-1]
    if not empty.any():
        return None
    empty &= pc.is_valid(column).to_numpy(zero_copy_only=False)
    return empty if empty.any() else None


def as_lines(column: pa.Array) -> pa.Array | None:
    """One value: the values of ``column`` joined by line breaks, a null as an empty line,
    so that a regex anchored at both ends checks them all in one scan (a regex per value
    costs some four times as much). None when a value holds a line break itself. A null
    slot's bytes, if it has any, make a line too: a check may fail for it, never pass."""
    if column.null_count:  # the same bytes seen without validity: a null is ""
        _, offsets, data = column.buffers()
        column = pa.Array.from_buffers(
            pa.string(), len(column), [None, offsets, data], null_count=0, offset=column.offset
        )
    whole = pa.ListArray.from_arrays(pa.array([0, len(column)], pa.int32()), column)
    text = pc.binary_join(whole, "\n")
    joined = np.frombuffer(text.buffers()[2], np.uint8)
    return text if np.count_nonzero(joined == _NEWLINE) == len(column) - 1 else None


def rewrite_bytes(
    column: pa.Array, drop: bytes, swap: tuple[int, int] | None, *, drop_non_ascii: bool = False
) -> pa.Array:
    """``column`` with the bytes in ``drop`` (and, with ``drop_non_ascii``, every byte of a
    non-ASCII character) taken out of its values and, after that, the byte ``swap[0]``
    turned into ``swap[1]`` (ASCII: UTF-8 stays valid). A column in which none of them
    occurs is returned as it is."""
    offsets, raw = _region(column)
    gone = raw >= 0x80 if drop_non_ascii else None
    for byte in drop:
        gone = raw == byte if gone is None else gone | (raw == byte)
    if gone is None:
        gone = np.zeros(len(raw), dtype=bool)
    kept = raw[~gone] if gone.any() else raw
    if swap is not None:
        swapped = kept == swap[0]
        if swapped.any():
            kept = kept.copy() if kept is raw else kept  # never write into the source
            kept[swapped] = swap[1]
    if kept is raw:
        return column
    removed = np.zeros(len(raw) + 1, np.int32)
    np.cumsum(gone, dtype=np.int32, out=removed[1:])
    bounds = offsets - removed[offsets]
    valid = pc.is_valid(column).buffers()[1] if column.null_count else None
    return pa.Array.from_buffers(
        pa.string(),
        len(column),
        [valid, pa.py_buffer(bounds), pa.py_buffer(kept)],
        null_count=column.null_count,
    )
