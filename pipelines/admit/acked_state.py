"""Change detection: which records differ from what the target last acknowledged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AckedState", "Located", "mix", "tags"]


def mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise: a bijection on 64 bits that spreads every input
    bit over the output (int64 or uint64 in, int64 out)."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z.view(np.int64)


def tags(fingerprints: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """The memo tag of each (source fingerprint, content hash) pair (see memo.py)."""
    return mix(fingerprints.view(np.uint64) ^ mix(hashes).view(np.uint64))


class AckedState:
    """Key hash → content hash of every record the target acknowledged, as sorted arrays.

    A million records cost 16 MB here, plus 8 MB when memo tags are attached. Key hashes
    only locate a record: the content hash includes the externalId itself, so a key-hash
    collision can only cause a resend, never a skipped record.
    """

    def __init__(self, keys: np.ndarray, hashes: np.ndarray):
        """``keys`` sorted ascending (as the ledger returns them), ``hashes`` aligned."""
        if len(keys) > 1 and not (keys[1:] >= keys[:-1]).all():
            order = np.argsort(keys)
            keys, hashes = keys[order], hashes[order]
        self.keys, self.hashes = keys, hashes
        self.tags: np.ndarray | None = None  # memo tags, aligned; 0: none

    @classmethod
    def empty(cls) -> AckedState:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def locate(self, keys: np.ndarray) -> Located:
        """Where each key sits in this state (searched once, used by the methods below)."""
        if not len(self.keys):
            return Located(np.zeros(len(keys), dtype=bool), np.zeros(len(keys), np.intp))
        order = np.argsort(keys)  # sorted needles search ~3x faster (see KeyTracker.check)
        pos = np.empty(len(keys), np.intp)
        pos[order] = np.minimum(np.searchsorted(self.keys, keys[order]), len(self.keys) - 1)
        return Located(self.keys[pos] == keys, pos)

    def unchanged(self, at: Located, hashes: np.ndarray) -> np.ndarray:
        """True where the record's content hash equals the acknowledged one."""
        return at.found & (self.hashes[at.pos] == hashes) if len(self.keys) else at.found

    def attach_tags(self) -> None:
        """Make room for memo tags; until then nothing is recalled."""
        if self.tags is None:
            self.tags = np.zeros(len(self.keys), np.int64)

    def recall(self, at: Located, fingerprints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows whose source row is the one behind the acknowledged record (their memo tag
        matches), and each row's acknowledged content hash (0 where there is none)."""
        if self.tags is None or not len(self.keys):
            return np.zeros(len(at.pos), dtype=bool), np.zeros(len(at.pos), np.int64)
        acked = np.where(at.found, self.hashes[at.pos], 0)
        return at.found & (self.tags[at.pos] == tags(fingerprints, acked)), acked

    def remember(self, at: Located, new_tags: np.ndarray) -> None:
        """Store the memo tags of the rows whose keys are held here."""
        if self.tags is not None and at.found.any():
            self.tags[at.pos[at.found]] = new_tags[at.found]


@dataclass(frozen=True)
class Located:
    """Where rows' keys sit in an AckedState: ``found`` per row, and its position there
    (meaningless where not found)."""

    found: np.ndarray
    pos: np.ndarray

    def __getitem__(self, rows: np.ndarray) -> Located:
        return Located(self.found[rows], self.pos[rows])
