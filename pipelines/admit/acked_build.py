"""A run's acknowledged state, built on disk from the ledger's outcomes and the memo in
bounded memory.

The ledger holds outcomes batch by batch, in the order they were recorded; a record's state
is its last outcome. Holding every outcome to sort them took ~400 MB at 10,000,000
records. Here outcomes and memo entries are first spread over buckets by the top bits of
their key (files on disk, each about ``BUCKET_ENTRIES`` long, in recorded order within a
bucket), then each bucket is settled alone: its keys' last outcomes, joined with their memo
entries. The result:

- ``by_key``: every acknowledged key and every key the memo holds, in key order, as
  :data:`ENTRY` records (a file on disk);
- ``valid``: a bit per memo entry, set where the entry is its key's first and the ledger
  holds that key acknowledged with the entry's content hash: such an entry answers for its
  key as the ledger would (see :mod:`.ledger_state`).

Peak memory is a bucket's worth (a few MB) whatever the size of the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.admit.memo import MemoFile, PackedBits
from pipelines.ledger.key_sets import in_sorted
from pipelines.ledger.records import FAILED, last_outcomes
from pipelines.ops.record_files import RecordFile, take

__all__ = [
    "BUCKET_ENTRIES",
    "ENTRY",
    "IN_MEMORY_ENTRIES",
    "Buckets",
    "Built",
    "bucket_bits",
    "build_state",
]

# key, acknowledged content hash (0: none), memo tag (0: none), the key's first entry in the
# memo (-1: none), whether the target holds the key acknowledged
ENTRY = np.dtype(
    [("key", "<i8"), ("hash", "<i8"), ("tag", "<i8"), ("memo", "<i8"), ("acked", "i1")],
    align=True,  # 40 bytes: aligned fields are copied about twice as fast
)
_OUTCOME = np.dtype([("key", "<i8"), ("hash", "<i8"), ("code", "i1")], align=True)
_MEMO = np.dtype([("key", "<i8"), ("tag", "<i8"), ("hash", "<i8"), ("memo", "<i8")])
BUCKET_ENTRIES = 1 << 18  # outcomes and memo entries per bucket, on average
# Up to this many outcomes and memo entries, the buckets stay in memory (~60 MB at most, at
# the start of a run, when little else is held): writing them out cost more than the rest.
IN_MEMORY_ENTRIES = 1 << 21

Outcomes = Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class Built:
    by_key: RecordFile
    valid: PackedBits  # memo entries that answer for their key as the ledger would
    acked: int  # keys the target holds acknowledged

    def close(self) -> None:
        self.by_key.close()


def build_state(
    outcomes: Outcomes,
    memo: MemoFile | None,
    *,
    total: int,
    directory: Path | None = None,
    only: np.ndarray | None = None,
) -> Built:
    """The state the ``outcomes`` (key hashes, content hashes, status codes, in the order
    they apply; ``total`` of them) leave, joined with the ``memo``'s entries. With ``only``
    (sorted key hashes), just those keys (and no memo entry answers: so few are looked up)."""
    entries = 0 if memo is None else memo.count
    bits = bucket_bits(total + entries) if only is None else 0
    on_disk = only is None and total + entries > IN_MEMORY_ENTRIES
    ledger = Buckets(_OUTCOME, bits, directory if on_disk else None, on_disk=on_disk)
    ledger.add_all(_outcome_records(outcomes, only))
    memo_buckets = Buckets(_MEMO, bits, directory, on_disk=on_disk)
    if memo is not None:
        memo_buckets.add_all(_memo_records(memo, only))
    by_key = RecordFile(ENTRY, directory, sorted=True)
    valid = PackedBits(entries if only is None else 0)
    acked = 0
    for bucket in range(1 << bits):
        settled, known, agree = _settle(ledger.take(bucket), memo_buckets.take(bucket))
        by_key.append(settled)
        acked += int(settled["acked"].sum())
        if memo is not None:
            memo.mark_known(known)
            if only is None:
                valid.set(agree)
    return Built(by_key, valid, acked)


def bucket_bits(entries: int) -> int:
    bits = 0
    while (entries >> bits) > BUCKET_ENTRIES and bits < 16:
        bits += 1
    return bits


def _outcome_records(outcomes: Outcomes, only: np.ndarray | None) -> Iterator[np.ndarray]:
    for keys, hashes, codes in outcomes:
        if only is not None:
            inside = in_sorted(only, keys)
            if not inside.any():  # most rows, when a small feed reads a big ledger
                continue
            keys, hashes, codes = keys[inside], hashes[inside], codes[inside]
        records = np.empty(len(keys), _OUTCOME)
        records["key"], records["hash"], records["code"] = keys, hashes, codes
        yield records


def _memo_records(memo: MemoFile, only: np.ndarray | None) -> Iterator[np.ndarray]:
    for start, block in memo.entries():
        if only is not None:  # the rest of the memo is not looked at: it is all kept
            inside = in_sorted(only, block["key"])
            memo.mark_known(start + np.flatnonzero(~inside))
        records = np.empty(len(block), _MEMO)
        for name in ("key", "tag", "hash"):
            records[name] = block[name]
        records["memo"] = np.arange(start, start + len(block))
        yield records if only is None else take(records, inside)


class Buckets:
    """Records spread over ``2**bits`` buckets by the top bits of their key (int64 order:
    bucket 0 holds the lowest keys), each bucket in the order records came. ``on_disk``,
    one file holds them all, in segments (a file per bucket would take one descriptor each);
    else they are held as they came."""

    def __init__(self, dtype: np.dtype, bits: int, directory: Path | None, *, on_disk: bool):
        self.dtype, self.bits = dtype, bits
        self.file = RecordFile(dtype, directory) if on_disk else None
        self.segments: list[list[tuple[int, int]]] = [[] for _ in range(1 << bits)]
        self.held: list[np.ndarray] = []  # in memory: the records, each bucket a segment
        self._pending: list[np.ndarray] = []
        self._count = 0

    def add_all(self, pieces: Iterable[np.ndarray]) -> None:
        for piece in pieces:
            self._pending.append(piece)
            self._count += len(piece)
            if self._count >= BUCKET_ENTRIES:  # fewer, larger writes
                self._flush()
        self._flush()

    def _flush(self) -> None:
        records = np.concatenate([np.empty(0, self.dtype), *self._pending])
        self._pending, self._count = [], 0
        if not len(records):
            return
        counts = np.array([len(records)])
        if self.bits:
            ids = (records["key"] >> (64 - self.bits)) + (1 << (self.bits - 1))
            ids = ids.astype(np.uint16)
            records = take(records, np.argsort(ids, kind="stable"))  # a radix sort, in order
            counts = np.bincount(ids, minlength=1 << self.bits)
        if self.file is None:
            start = sum(len(part) for part in self.held)
            self.held.append(records)
        else:
            start = len(self.file)
            self.file.append(records)  # bucket by bucket: each bucket's segment contiguous
        starts = np.cumsum(counts) - counts
        for bucket, (begin, count) in enumerate(zip(starts, counts, strict=True)):
            if count:
                self.segments[bucket].append((start + int(begin), int(count)))

    def take(self, bucket: int) -> np.ndarray:
        """A bucket's records, in the order they came (the file goes with the last)."""
        parts = [self._read(at, at + count) for at, count in self.segments[bucket]]
        self.segments[bucket] = []
        if bucket == len(self.segments) - 1:
            self.held = []
            if self.file is not None:
                self.file.close()
        return np.concatenate([np.empty(0, self.dtype), *parts])

    def _read(self, start: int, stop: int) -> np.ndarray:
        if self.file is not None:
            return self.file.read(start, stop)
        for part in self.held:  # a handful of parts: the ledger's, ~BUCKET_ENTRIES each
            if start < len(part):
                return part[start:stop]
            start, stop = start - len(part), stop - len(part)
        return np.empty(0, self.dtype)


def _settle(outcomes: np.ndarray, memo: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One bucket: each key's state (acknowledged keys and memo keys, in key order); the
    first memo entries of keys the target holds; those of them whose content hash is the
    acknowledged one."""
    distinct, last = last_outcomes(outcomes["key"])
    acked = outcomes["code"][last] != FAILED
    keys, hashes = distinct[acked], outcomes["hash"][last[acked]]
    by_key = np.argsort(memo["key"], kind="stable")  # a key's first memo entry leads
    ordered = memo["key"][by_key]
    leads = np.concatenate(([True], ordered[1:] != ordered[:-1]))[: len(ordered)]
    first = take(memo, by_key[leads])  # in key order
    everything = _union(keys, first["key"])
    columns = {
        "key": everything,
        "hash": np.zeros(len(everything), np.int64),
        "acked": np.zeros(len(everything), np.int8),
        "tag": np.zeros(len(everything), np.int64),
        "memo": np.full(len(everything), -1, np.int64),
    }
    at = np.searchsorted(everything, keys)
    columns["hash"][at], columns["acked"][at] = hashes, 1
    at = np.searchsorted(everything, first["key"])
    columns["tag"][at], columns["memo"][at] = first["tag"], first["memo"]
    held = columns["acked"][at] == 1
    agree = held & (columns["hash"][at] == first["hash"])
    return _records(columns), first["memo"][held], first["memo"][agree]


def _records(columns: dict[str, np.ndarray]) -> np.ndarray:
    out = np.empty(len(columns["key"]), ENTRY)
    for name, values in columns.items():
        out[name] = values
    return out


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two sorted arrays of distinct keys as one (a stable sort merges the two runs in
    linear time; numpy's union1d hashes, ~10x slower here)."""
    both = np.concatenate([a, b])
    both.sort(kind="stable")
    return both[np.concatenate(([True], both[1:] != both[:-1]))[: len(both)]]
