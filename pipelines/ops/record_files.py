"""Fixed-size records on disk, read back by position or found by key, never held whole.

A run's per-record state (what the target acknowledged, the keys it has read) grows with
the catalog; kept in memory it was most of a 10,000,000-row run's peak RSS. Here it lives
in anonymous temporary files (deleted as they are created: nothing is left behind, even
by a crash) and is read with ``pread``, so the pages stay in the kernel's cache, outside
the process. A file written in key order keeps every ``BLOCK``-th key in memory (8 bytes
per 32 records) and finds keys by reading only the blocks that can hold them: ~2 µs a key
when the keys are scattered, so this is the way for the few keys a run cannot find
otherwise (see :mod:`.ledger_state`).

Memory-mapping the files was measured and rejected: the kernel maps whole folios around
each fault, so 16,384 random lookups made a 240 MB file fully resident.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path

import numpy as np

__all__ = ["BLOCK", "RecordFile", "anonymous_file", "in_order", "take"]

BLOCK = 32  # records per indexed block (~1 KB): a lookup reads one block
_SPAN = 1024  # blocks read at most in one call when neighbouring blocks are wanted (~1 MB)
_GAP = 1  # blocks apart that are still read in one call


def take(records: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``records[rows]`` (indexes or a mask), copied as raw bytes: numpy copies a structured
    record field by field, 5-10x slower."""
    raw = np.dtype((np.void, records.dtype.itemsize))
    return records.view(raw)[rows].view(records.dtype)


def in_order(keys: np.ndarray) -> bool:
    return len(keys) < 2 or bool((keys[1:] >= keys[:-1]).all())


class RecordFile:
    """Records of ``dtype`` (a structured dtype whose field ``key`` is int64), appended and
    then read back. When ``sorted`` the records are appended in ascending key order (each
    key once) and :meth:`find` looks keys up.

    ``directory`` is where the anonymous file goes (None: the system's temporary directory).
    """

    def __init__(self, dtype: np.dtype, directory: Path | None = None, *, sorted: bool = False):
        self.dtype = np.dtype(dtype)
        self.sorted = sorted
        self._fd = anonymous_file(directory)
        # Closed with this object at the latest: a run that stops midway leaves nothing open.
        self._closer = weakref.finalize(self, os.close, self._fd)
        self.count = 0
        self._fence: list[np.ndarray] = []  # every BLOCK-th key, appended as written
        self._fence_keys: np.ndarray | None = None
        self._last_key: int | None = None

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        self._closer()

    # --- writing --------------------------------------------------------------------------

    def append(self, records: np.ndarray) -> None:
        if not len(records):
            return
        records = np.ascontiguousarray(records, dtype=self.dtype)
        if self.sorted:
            self._index(records["key"])
        view = memoryview(records.view(np.uint8).reshape(-1))
        offset = self.count * self.dtype.itemsize
        while view:  # a write may take less than it was given
            done = os.pwrite(self._fd, view, offset)
            view, offset = view[done:], offset + done
        self.count += len(records)

    def _index(self, keys: np.ndarray) -> None:
        if not in_order(keys) or (self._last_key is not None and keys[0] <= self._last_key):
            raise ValueError("records of a sorted file must come in ascending key order")
        self._last_key = int(keys[-1])
        first = -self.count % BLOCK  # the first position here that starts a block
        self._fence.append(keys[first::BLOCK].copy())
        self._fence_keys = None

    # --- reading --------------------------------------------------------------------------

    def read(self, start: int, stop: int) -> np.ndarray:
        """Records ``start`` to ``stop`` (clipped to the file)."""
        start, stop = max(0, start), min(stop, self.count)
        if stop <= start:
            return np.empty(0, self.dtype)
        size = self.dtype.itemsize
        data = os.pread(self._fd, (stop - start) * size, start * size)
        if len(data) != (stop - start) * size:
            raise OSError(f"short read from a temporary file ({len(data)} bytes)")
        return np.frombuffer(data, self.dtype)

    def blocks(self, records: int = 1 << 16) -> Iterator[np.ndarray]:
        """Every record in file order, ``records`` at a time."""
        for start in range(0, self.count, records):
            yield self.read(start, start + records)

    def fence(self) -> np.ndarray:
        if self._fence_keys is None:
            self._fence_keys = np.concatenate([np.empty(0, np.int64), *self._fence])
            self._fence = [self._fence_keys]
        return self._fence_keys

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For ``keys`` sorted ascending: where each was found, and its record (meaningless
        where not found). Reads only the blocks that can hold them."""
        fence = self.fence()
        if not len(keys) or not len(fence):
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), self.dtype)
        block = np.searchsorted(fence, keys, side="right") - 1  # -1: below the first key
        inside = block[block >= 0]  # ascending, as the keys are
        wanted = inside[np.concatenate(([True], inside[1:] != inside[:-1]))]
        # The blocks read, side by side, are in key order too: one search finds every key.
        first, last = _spans(wanted)
        size = self.dtype.itemsize
        starts = first * BLOCK
        lengths = (np.minimum((last + 1) * BLOCK, self.count) - starts) * size
        fd = self._fd
        data = b"".join(map(os.pread, repeat(fd), lengths.tolist(), (starts * size).tolist()))
        held = np.frombuffer(data, self.dtype)
        if len(held) != int(lengths.sum()) // size:
            raise OSError(f"short read from a temporary file ({len(data)} bytes)")
        if not len(held):
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), self.dtype)
        pos = np.minimum(np.searchsorted(held["key"], keys), len(held) - 1)
        return held["key"][pos] == keys, take(held, pos)


def anonymous_file(directory: Path | None) -> int:
    """A new file's descriptor, its name already removed; in ``directory`` if it can be
    made there, else in the system's temporary directory."""
    if directory is not None:
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix="nymble-", dir=directory)
        except OSError:
            return anonymous_file(None)
    else:
        fd, path = tempfile.mkstemp(prefix="nymble-")
    os.unlink(path)
    return fd


def _spans(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wanted blocks (sorted, distinct) as ranges (first blocks, last blocks), each read in
    one call: neighbours at most ``_GAP`` apart share a read, of at most ``_SPAN`` blocks."""
    if not len(blocks):
        return blocks, blocks
    new_group = np.concatenate(([True], np.diff(blocks) > _GAP))
    group_first = blocks[np.maximum.accumulate(np.where(new_group, np.arange(len(blocks)), 0))]
    piece = (blocks - group_first) // _SPAN
    starts = np.flatnonzero(new_group | np.concatenate(([True], piece[1:] != piece[:-1])))
    ends = np.concatenate((starts[1:], [len(blocks)])) - 1
    return blocks[starts], blocks[ends]
