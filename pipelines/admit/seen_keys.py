"""Keys already read in this run, so that a second row with one is rejected, in bounded memory.

A run must remember every key it has read (a duplicate may come 9,000,000 rows after the
first); 64-bit key hashes with their rows cost 12 bytes each, 120 MB per tracked field at
10,000,000 rows. Here the newest keys are held in memory in sorted runs that merge as they
grow (an LSM tree), up to ``MEMORY_KEYS``; then they go to a sorted file on disk (see
:mod:`pipelines.ops.record_files`), and files of similar size are merged, so a run has a
handful of them.
A filter over every key answers "never seen" for almost all new keys from ~2 bytes a key;
only the keys it flags (about 1 in 100, and every real duplicate) are looked for in the
runs, in memory and on disk. The filter only spares lookups: a key is reported as seen only
when it is found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.ops.record_files import RecordFile
from pipelines.ops.sorted_keys import merged, sorted_blocks
from pipelines.quality.row_checks import Failure
from pipelines.transform.convert import present

__all__ = ["KeyFilter", "SeenKeys", "merge_files"]

_RUN = np.dtype([("key", "<i8"), ("row", "<i8")])


class KeyFilter:
    """A Bloom filter over 64-bit key hashes with its bits for a key in one 64-bit word:
    "not held" is certain, "held" is wrong about 1 time in 100 or less (at least
    ``BITS_PER_KEY`` bits a key: it doubles, and refills, when more keys come).

    A key's word is its top bits and its four bits come from its lowest 24, so keys given
    in ascending order (as int64: negatives, then the rest) fall on words in two ascending
    stretches that never share a word: bits bound for one word are OR-ed together without
    a scatter (`ufunc.at` was ~20x slower).
    """

    BITS_PER_KEY = 10
    _PROBES = 4

    def __init__(self, words: int = 1 << 14):
        self.words = np.zeros(words, dtype=np.uint64)
        self.count = 0

    def _places(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = keys.view(np.uint64)
        shift = np.uint64(64 - (len(self.words).bit_length() - 1))
        mask = np.zeros(len(h), np.uint64)
        for probe in range(self._PROBES):
            mask |= np.left_shift(np.uint64(1), (h >> np.uint64(6 * probe)) & np.uint64(63))
        return h >> shift, mask

    def may_hold(self, keys: np.ndarray) -> np.ndarray:
        word, mask = self._places(keys)
        return (self.words[word] & mask) == mask

    def add(self, ordered: np.ndarray, every_key: Callable[[], Iterable[np.ndarray]]) -> None:
        """Add keys (sorted ascending); ``every_key`` gives every key held, in sorted pieces,
        to refill a grown filter (``ordered`` among them)."""
        self.count += len(ordered)
        if self.count * self.BITS_PER_KEY <= len(self.words) * 64:
            self._set(ordered)
            return
        size = len(self.words)
        while self.count * self.BITS_PER_KEY > size * 64:
            size *= 2
        self.words = np.zeros(size, dtype=np.uint64)
        for piece in every_key():
            self._set(piece)

    def _set(self, ordered: np.ndarray) -> None:
        if not len(ordered):
            return
        word, mask = self._places(ordered)
        starts = np.flatnonzero(np.concatenate(([True], word[1:] != word[:-1])))
        self.words[word[starts]] |= np.bitwise_or.reduceat(mask, starts)


class SeenKeys:
    """The keys of one field (``column`` in the source) read so far in a run, each with the
    row that first had it; a later row with one of them is a duplicate.

    ``directory`` takes the sorted files of keys beyond ``MEMORY_KEYS`` (None: the system's
    temporary directory).
    """

    MEMORY_KEYS = 1 << 20  # 12 MB of keys and rows, besides the filter
    RUN_LIMIT = 1 << 18  # in-memory runs merge up to this size: small merges, short pauses

    def __init__(self, field: str, column: str, directory: Path | None = None):
        self.field, self.column, self.directory = field, column, directory
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted keys, first rows)
        self._held = 0  # keys in memory
        self._files: list[RecordFile] = []  # sorted runs on disk, oldest (largest) first
        self._filter = KeyFilter()

    def check(
        self, values: pa.Array, keys: np.ndarray, rows: np.ndarray, candidates: np.ndarray
    ) -> Failure | None:
        """Flag rows (among ``candidates``) whose key occurred on an earlier row of the run."""
        idx = np.nonzero(candidates & present(values))[0]
        # In key order, equal keys of this chunk sit side by side, the earliest row first (a
        # stable sort of rising rows), and binary searches with sorted needles run faster.
        order = idx[np.argsort(keys[idx], kind="stable")]
        ordered = keys[order]
        first_row = np.full(len(ordered), -1, dtype=np.int64)
        maybe = self._filter.may_hold(ordered)
        if maybe.any():
            first_row[maybe] = self._earlier(ordered[maybe])
        starts = np.ones(len(ordered), dtype=bool)
        starts[1:] = ordered[1:] != ordered[:-1]
        group_first = np.maximum.accumulate(np.where(starts, np.arange(len(ordered)), 0))
        first_row = np.where((first_row < 0) & ~starts, rows[order[group_first]], first_row)
        new = first_row < 0
        self._remember(ordered[new], _compact(rows[order[new]]))
        if new.all():
            return None
        dup = np.zeros(len(values), dtype=bool)
        dup[order[~new]] = True
        earlier = dict(zip(order[~new].tolist(), first_row[~new].tolist(), strict=True))
        return Failure(
            dup,
            self.column,
            values,
            f"duplicate_{self.field}",
            f"{self.field} already appeared on an earlier row; only the first is sent",
            related=earlier,
        )

    def keys(self) -> np.ndarray:
        """Every key seen so far, sorted ascending, without repeats (all of them in memory:
        for the callers that need the whole set, such as mirror mode)."""
        pieces = list(self._every_key())
        return np.sort(np.concatenate(pieces)) if pieces else np.empty(0, np.int64)

    def sorted_keys(self) -> Iterator[np.ndarray]:
        """Every key seen so far in ascending order, in blocks: the in-memory runs and the
        files merged as they are read (mirror mode compares them with the keys a job owns
        without holding them whole)."""
        sources = [sorted_blocks(keys) for keys, _rows in self._runs]
        sources += [(block["key"] for block in file.blocks()) for file in self._files]
        return merged(sources)

    def close(self) -> None:
        for file in self._files:
            file.close()
        self._files = []

    def _every_key(self) -> Iterator[np.ndarray]:
        """Every key held, in sorted pieces."""
        for keys, _rows in self._runs:
            yield keys
        for file in self._files:
            for block in file.blocks():
                yield block["key"]

    def _earlier(self, ordered: np.ndarray) -> np.ndarray:
        """The row where each key (sorted ascending) was first seen in an earlier chunk, or -1."""
        found = np.full(len(ordered), -1, dtype=np.int64)
        for run_keys, run_rows in self._runs:
            pos = np.minimum(np.searchsorted(run_keys, ordered), len(run_keys) - 1)
            found = np.where(run_keys[pos] == ordered, run_rows[pos], found)
        for file in self._files:
            hit, records = file.find(ordered)
            found = np.where(hit, records["row"], found)
        return found

    def _remember(self, ordered: np.ndarray, rows: np.ndarray) -> None:
        """Add new keys (sorted ascending, none seen before) with their rows."""
        if not len(ordered):
            return
        runs = self._runs
        runs.append((ordered, rows))
        self._held += len(ordered)
        while (
            len(runs) > 1
            and len(runs[-2][0]) <= 2 * len(runs[-1][0])
            and len(runs[-2][0]) + len(runs[-1][0]) <= self.RUN_LIMIT
        ):
            newer = runs.pop()
            runs.append(_merge(runs.pop(), newer))
        self._filter.add(ordered, self._every_key)
        if self._held >= self.MEMORY_KEYS:
            self._spill()

    def _spill(self) -> None:
        """Every key held in memory to sorted files on disk (a file per in-memory run: no
        merge in memory, which would need as much again); files of similar size merged."""
        files = self._files
        for keys, rows in self._runs:
            file = RecordFile(_RUN, self.directory, sorted=True)
            file.append(_records(keys, rows))
            files.append(file)
            while len(files) > 1 and len(files[-2]) <= 2 * len(files[-1]):
                newer, older = files.pop(), files.pop()
                files.append(merge_files(older, newer, self.directory))
                older.close()
                newer.close()
        self._runs, self._held = [], 0


def _compact(rows: np.ndarray) -> np.ndarray:
    """Row numbers as int32 in memory (12 bytes a key with the key, not 16), unless one is
    too large for it."""
    if len(rows) and int(rows.max()) >= np.iinfo(np.int32).max:
        return rows.astype(np.int64)
    return rows.astype(np.int32)


def _records(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    out = np.empty(len(keys), _RUN)
    out["key"], out["row"] = keys, rows
    return out


def _merge(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Two runs of (sorted keys, rows) as one. A stable argsort of the two side by side is a
    timsort that finds the two runs and merges them: linear, ~4x faster than searching."""
    keys = np.concatenate([a[0], b[0]])
    order = np.argsort(keys, kind="stable")
    return keys[order], np.concatenate([a[1], b[1]])[order]


def merge_files(a: RecordFile, b: RecordFile, directory: Path | None) -> RecordFile:
    """Two sorted files (of the same dtype, no key in both) as one, block by block."""
    out = RecordFile(a.dtype, directory, sorted=True)
    left, right = a.blocks(), b.blocks()
    x, y = next(left, None), next(right, None)
    while x is not None and y is not None:
        limit = min(x["key"][-1], y["key"][-1])  # all at or below it from both can go out
        i = int(np.searchsorted(x["key"], limit, side="right"))
        j = int(np.searchsorted(y["key"], limit, side="right"))
        both = np.concatenate([x[:i], y[:j]])
        out.append(both[np.argsort(both["key"], kind="stable")])
        x = x[i:] if i < len(x) else next(left, None)
        y = y[j:] if j < len(y) else next(right, None)
    for rest, more in ((x, left), (y, right)):
        while rest is not None:
            out.append(rest)
            rest = next(more, None)
    return out
