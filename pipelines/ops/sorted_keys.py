"""Sets of 64-bit key hashes read in ascending order, block by block, never held whole.

Mirror mode compares the keys a job owns with every key of the feed; at 10,000,000 rows
an array of the feed's keys is 80 MB, and sorting or uniting it doubles that. Here keys go
to sorted runs (in memory up to ``MEMORY_KEYS``, then in files on disk, see
:mod:`.record_files`) and are read back merged, in ascending order, a block at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from pipelines.ops.record_files import RecordFile

__all__ = ["KeyCursor", "SpilledKeys", "merged", "sorted_blocks"]

_KEY = np.dtype([("key", "<i8")])
_BLOCK = 1 << 16  # keys per block read back


def sorted_blocks(keys: np.ndarray, size: int = _BLOCK) -> Iterator[np.ndarray]:
    """An ascending array as blocks of ``size`` keys."""
    for start in range(0, len(keys), size):
        yield keys[start : start + size]


def merged(sources: Iterable[Iterator[np.ndarray]]) -> Iterator[np.ndarray]:
    """Blocks of keys in ascending order, without repeats, from ``sources`` (each yields
    ascending blocks; a key may be in several of them). A block goes out once every source
    has passed its last key: memory is a block per source."""
    heads: list[tuple[np.ndarray, Iterator[np.ndarray]]] = []
    for source in sources:
        block = _next_block(source)
        if block is not None:
            heads.append((block, source))
    last: int | None = None
    while heads:
        limit = min(int(block[-1]) for block, _ in heads)  # every key up to it is here
        parts, ahead = [], []
        for block, source in heads:
            cut = int(np.searchsorted(block, limit, side="right"))
            parts.append(block[:cut])
            rest = block[cut:] if cut < len(block) else _next_block(source)
            if rest is not None:
                ahead.append((rest, source))
        heads = ahead
        out = np.unique(np.concatenate(parts))
        if last is not None and len(out) and out[0] == last:
            out = out[1:]
        if len(out):
            last = int(out[-1])
            yield out


def _next_block(source: Iterator[np.ndarray]) -> np.ndarray | None:
    for block in source:
        if len(block):
            return block
    return None


class SpilledKeys:
    """Keys added in any order (repeats allowed), read back with :meth:`blocks` in ascending
    order without repeats. Beyond ``MEMORY_KEYS`` held, they go to a sorted file on disk."""

    MEMORY_KEYS = 1 << 20  # 8 MB held before a spill

    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self._held: list[np.ndarray] = []
        self._count = 0
        self._files: list[RecordFile] = []

    def add(self, keys: np.ndarray) -> None:
        self._held.append(np.asarray(keys, np.int64))
        self._count += len(keys)
        if self._count >= self.MEMORY_KEYS:
            self._spill()

    def blocks(self) -> Iterator[np.ndarray]:
        held = np.unique(np.concatenate([np.empty(0, np.int64), *self._held]))
        sources = [sorted_blocks(held)]
        sources += [(block["key"] for block in file.blocks(_BLOCK)) for file in self._files]
        return merged(sources)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.blocks()

    def close(self) -> None:
        for file in self._files:
            file.close()
        self._files, self._held = [], []

    def _spill(self) -> None:
        keys = np.unique(np.concatenate(self._held))
        self._held, self._count = [], 0
        file = RecordFile(_KEY, self.directory, sorted=True)
        file.append(keys.view(_KEY))
        self._files.append(file)


class KeyCursor:
    """Ascending blocks of keys read forward: :meth:`upto` gives the keys up to a limit."""

    def __init__(self, blocks: Iterable[np.ndarray]):
        self._blocks = iter(blocks)
        self._rest = np.empty(0, np.int64)
        self._done = False

    def upto(self, limit: int) -> np.ndarray:
        """The keys not given yet that are at most ``limit`` (ascending)."""
        parts = []
        while True:
            cut = int(np.searchsorted(self._rest, limit, side="right"))
            parts.append(self._rest[:cut])
            if cut < len(self._rest) or self._done:
                self._rest = self._rest[cut:]
                break
            block = next(self._blocks, None)
            if block is None:
                self._done, self._rest = True, np.empty(0, np.int64)
            else:
                self._rest = np.asarray(block, np.int64)
        return np.concatenate(parts) if len(parts) > 1 else parts[0]
