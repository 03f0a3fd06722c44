"""Cutting the records to send into batches bounded by item count and bytes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xxhash

__all__ = ["Batch", "Batcher", "Pending"]


@dataclass(frozen=True)
class Pending:
    """Records that must be sent, aligned lists: the output of change detection for a chunk."""

    external_ids: list[str]
    rows: np.ndarray
    key_hashes: np.ndarray
    content_hashes: np.ndarray
    bodies: list[bytes]

    def __len__(self) -> int:
        return len(self.bodies)

    def take(self, start: int, stop: int) -> Pending:
        return Pending(
            self.external_ids[start:stop],
            self.rows[start:stop],
            self.key_hashes[start:stop],
            self.content_hashes[start:stop],
            self.bodies[start:stop],
        )

    @staticmethod
    def concat(parts: list[Pending]) -> Pending:
        if len(parts) == 1:
            return parts[0]
        return Pending(
            [i for p in parts for i in p.external_ids],
            np.concatenate([p.rows for p in parts]),
            np.concatenate([p.key_hashes for p in parts]),
            np.concatenate([p.content_hashes for p in parts]),
            [b for p in parts for b in p.bodies],
        )


@dataclass(frozen=True)
class Batch:
    """One request's worth of records. Its id derives from its content, so a resend of the
    same records after a crash is recognisably the same batch."""

    id: str
    records: Pending

    @classmethod
    def of(cls, records: Pending) -> Batch:
        digest = xxhash.xxh3_128()
        for body in records.bodies:
            digest.update(body)
        return cls(digest.hexdigest(), records)

    @property
    def byte_count(self) -> int:
        return sum(map(len, self.records.bodies)) + len(self.records.bodies) + 1


class Batcher:
    """Accumulates pending records across chunks; yields a batch whenever one is full.

    A record larger than ``max_bytes`` on its own is a batch of one: the bound is for
    grouping, and whether the API can take it is the sender's call (``MAX_BODY_BYTES``)."""

    def __init__(self, max_items: int, max_bytes: int):
        self.max_items, self.max_bytes = max_items, max_bytes
        self._parts: list[Pending] = []
        self._items = self._bytes = 0

    def add(self, records: Pending) -> list[Batch]:
        """Take all of ``records``; return the batches that are now full, oldest first."""
        full, start = [], 0
        for i, body in enumerate(records.bodies):
            size = len(body) + 1
            if self._items and (
                self._items >= self.max_items or self._bytes + size > self.max_bytes
            ):
                self._parts.append(records.take(start, i))
                full.append(self._cut())
                start = i
            self._items += 1
            self._bytes += size
        if start < len(records):
            self._parts.append(records.take(start, len(records)))
        return full

    def _cut(self) -> Batch:
        batch = Batch.of(Pending.concat(self._parts))
        self._parts, self._items, self._bytes = [], 0, 0
        return batch

    def flush(self) -> list[Batch]:
        return [self._cut()] if self._items else []
