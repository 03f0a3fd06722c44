"""What the target acknowledged, as a run reads it from the ledger: on disk, read alongside
the feed, never held whole.

Held in memory, a key hash, content hash and memo tag per record cost 24 bytes, 240 MB at
10,000,000 records (and reading them from the ledger twice that for a moment). Here the
ledger's state is built into a file in key order (see :mod:`.acked_build`), and a chunk's
keys are looked up:

- in the memo first: it lists keys in the order the last run read them, with their content
  hashes, and a nightly feed is mostly the same rows in the same order, so a chunk's keys
  are found in a window of it around where the previous chunk's keys were (a few MB read
  per chunk). Only entries the ledger agrees with answer (checked as the state is built:
  the ledger holds the key acknowledged with that very content hash);
- by key for the rest (new rows, moved rows, entries the ledger does not back): the blocks
  of the built file that can hold them are read (~2 µs a key).

Where a key is found decides only how fast the answer comes, never what it is: a feed in
another order is slower, never wrong.

A small feed (see :meth:`LedgerState.open`) names its keys up front: then only their
outcomes are kept, and a key outside them makes the whole state be read after all. A
small ledger (up to ``MEMORY_OUTCOMES`` outcomes) is simply held in memory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.admit.acked_build import Built, build_state
from pipelines.admit.acked_state import AckedState, Located, recalled, same_content
from pipelines.admit.memo import PackedBits
from pipelines.ledger.key_sets import in_sorted
from pipelines.ops.record_files import take

if TYPE_CHECKING:
    from pipelines.admit.memo import MemoFile
    from pipelines.ledger import Ledger

__all__ = ["MEMORY_OUTCOMES", "LedgerState"]

# Up to this many outcomes in the ledger's scope (a catalog of ~1,000,000 records and its
# deltas), the state is held in memory as arrays (16 bytes a record, ~50 MB for a moment
# while it is read): as fast as it gets, and no more than other parts of such a run hold.
# Beyond it, it is built on disk, so that memory no longer grows with the catalog.
MEMORY_OUTCOMES = 1 << 21


class LedgerState:
    """The acknowledged state of ``entity`` at ``target_id`` in ``ledger``, read when first
    needed (or at :meth:`open`), as it was at that moment."""

    MEMORY_OUTCOMES = MEMORY_OUTCOMES

    def __init__(self, ledger: Ledger, *, target_id: str, entity: str):
        self.ledger, self.target_id, self.entity = ledger, target_id, entity
        self._memo: MemoFile | None = None
        self._built: Built | AckedState | None = None
        self._only: np.ndarray | None = None  # the keys it was built for (None: all)
        self._directory: Path | None = None
        self._lock = threading.Lock()
        self._frontier = 0  # where in memo order the latest chunk's keys were found
        self.from_memo = self.by_key = 0  # keys answered each way (how well the memo led)

    def use_memo(self, memo: MemoFile) -> None:
        """Join the memo's tags (read when the state is built)."""
        self._memo = memo

    def open(self, *, directory: Path | None = None, only: np.ndarray | None = None) -> None:
        """Read the ledger now, its files going in ``directory`` (None: the system's
        temporary directory); with ``only`` (sorted key hashes: every key the feed holds),
        just those keys."""
        with self._lock:
            self._directory = directory
            self._build(only)

    def close(self) -> None:
        if self._built is not None:
            self._built.close()
            self._built = None

    def __len__(self) -> int:
        """How many of its keys the target holds acknowledged."""
        built = self._ready(None)
        return len(built) if isinstance(built, AckedState) else built.acked

    @property
    def entries(self) -> int:
        """How many keys it holds (acknowledged ones and the memo's): all of the ledger's,
        or only those of a small feed."""
        built = self._ready(None)
        return len(built) if isinstance(built, AckedState) else len(built.by_key)

    def locate(self, keys: np.ndarray) -> Located:
        built = self._ready(keys)
        if isinstance(built, AckedState):
            return built.locate(keys)
        found = np.zeros(len(keys), dtype=bool)
        hashes, tags = np.zeros(len(keys), np.int64), np.zeros(len(keys), np.int64)
        memo = np.full(len(keys), -1, np.int64)
        todo = np.ones(len(keys), dtype=bool)
        if self._memo is not None and len(built.valid) and len(keys):
            rows, entries, positions = self._in_window(built.valid, keys)
            found[rows], hashes[rows] = True, entries["hash"]
            tags[rows], memo[rows] = entries["tag"], positions
            todo[rows] = False
            self.from_memo += len(rows)
        if todo.any() and len(built.by_key):
            rest = np.flatnonzero(todo)
            rest = rest[np.argsort(keys[rest])]
            hit, entries = built.by_key.find(keys[rest])
            self.by_key += len(rest)
            rows, entries = rest[hit], take(entries, hit)
            found[rows] = entries["acked"] == 1
            hashes[rows] = np.where(found[rows], entries["hash"], 0)
            tags[rows], memo[rows] = entries["tag"], entries["memo"]
        self._follow(memo, len(keys))
        return Located(found, hashes, tags, memo)

    def unchanged(self, at: Located, hashes: np.ndarray) -> np.ndarray:
        return same_content(at, hashes)

    def recall(self, at: Located, fingerprints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return recalled(at, fingerprints)

    def _ready(self, keys: np.ndarray | None) -> Built:
        """The built state, able to answer for ``keys`` (None: built, for any keys)."""
        built = self._built
        if built is not None and self._covers(keys):
            return built
        with self._lock:
            if self._built is None or not self._covers(keys):
                self._build(None)  # a key it was not built for: read the whole state
            return self._built

    def _covers(self, keys: np.ndarray | None) -> bool:
        return keys is None or self._only is None or _within(keys, self._only)

    def _build(self, only: np.ndarray | None) -> None:
        ledger, scope = self.ledger, {"target_id": self.target_id, "entity": self.entity}
        total = ledger.outcome_total(**scope) if only is None else 0
        # A state built before stays open: another thread may be reading it right now.
        if only is None and total <= self.MEMORY_OUTCOMES:
            state = AckedState(*ledger.acked_state(**scope))
            if self._memo is not None:
                state.use_memo(self._memo)
            self._built, self._only = state, None
            return
        built = build_state(
            ledger.outcome_blocks(**scope),
            self._memo,
            total=total,
            directory=self._directory,
            only=only,
        )
        self._built, self._only = built, only

    def _in_window(
        self, valid: PackedBits, keys: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows whose key has an entry in the memo around the frontier that answers as
        the ledger would (see acked_build), with those entries and their positions. The
        window spans two chunks back (chunks are prepared in parallel, so out of order) and
        two ahead, plus a margin for rows added or removed since the memo was written."""
        n, at = len(keys), self._frontier
        margin = n // 4 + 256
        lo = max(0, at - 2 * n - margin)
        window = self._memo.read(lo, at + 2 * n + margin)
        usable = np.flatnonzero(valid.get(lo, lo + len(window)))
        if not len(usable):
            return usable, window[:0], usable
        usable = usable[np.argsort(window["key"][usable])]  # keys are distinct here
        ordered = window["key"][usable]
        pos = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
        rows = np.flatnonzero(ordered[pos] == keys)
        spot = usable[pos[rows]]
        return rows, take(window, spot), lo + spot

    def _follow(self, memo: np.ndarray, n: int) -> None:
        """Move the frontier to where this chunk's keys were (once enough were found)."""
        known = memo[memo >= 0]
        if len(known) * 8 >= n and len(known):
            self._frontier = int(np.median(known)) + n // 2 + 1


def _within(keys: np.ndarray, only: np.ndarray) -> bool:
    return bool(in_sorted(only, keys[keys != 0]).all())
