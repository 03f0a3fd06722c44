"""What the org holds of one entity, as a compact index sorted by key: reconcile's memory.

Each record read from the API is projected onto the job's fields (``transform.projection``) and
serialized as the job would send it. Memory keeps only fixed-width columns per record: key
hash, content hash, where its canonical body lies in a spill file on disk, and a few facts
(a product's active flag; an order's customer and id as hashes). The bodies, and an order's
money, stay on disk until a record needs a closer look. About 50 bytes a record: a million
products cost 50 MB, whatever their size.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.load.api_reader import field_of
from pipelines.transform.canonical_compare import parse_exact
from pipelines.transform.fast_projection import canonical_page
from pipelines.transform.projection import Projection
from pipelines.transform.serialize import key_hashes

__all__ = ["Facts", "TargetIndex"]

# record dicts → named int64 columns, one value per record (e.g. an order's customer hash)
Facts = Callable[[list[dict]], dict[str, np.ndarray]]
Extra = Callable[[dict], bytes]  # what else to keep on disk per record (an order's money)


class TargetIndex:
    def __init__(
        self,
        projection: Projection,
        *,
        spill_dir: Path | None = None,
        facts: Facts | None = None,
        extra: Extra | None = None,
    ):
        self.projection, self.facts_of, self.extra_of = projection, facts, extra
        # Closed (and so deleted) by close(): the index is itself a context manager.
        self._spill = tempfile.TemporaryFile(dir=spill_dir, prefix="nymble-reconcile-")  # noqa: SIM115
        self._written = 0
        self._parts: dict[str, _Growing] = {}
        self.duplicates = 0  # records read twice (the list changed while it was paged)
        self.keys = np.empty(0, np.int64)

    def add(self, records: list[dict]) -> list[dict]:
        """Index the records that carry a key; return those that carry none."""
        key = self.projection.key
        keyed = [r for r in records if field_of(r, key) not in (None, "")]
        unkeyed = [r for r in records if field_of(r, key) in (None, "")]
        if not keyed:
            return unkeyed
        bodies, hashes = canonical_page(self.projection, keyed)
        keys = [str(field_of(r, key)) for r in keyed]
        extras = [self.extra_of(r) for r in keyed] if self.extra_of else [b""] * len(keyed)
        offsets, lengths = self._write(bodies, extras)
        columns = {
            "keys": key_hashes(pa.array(keys, pa.string())),
            "hashes": hashes,
            "offsets": offsets,
            "lengths": lengths,
            "extra_lengths": np.fromiter(map(len, extras), np.int64, len(extras)),
        }
        columns |= self.facts_of(keyed) if self.facts_of else {}
        for name, values in columns.items():
            self._parts.setdefault(name, _Growing(values.dtype)).extend(values)
        return unkeyed

    def _write(self, bodies: list[bytes], extras: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.fromiter(map(len, bodies), np.int64, len(bodies))
        sizes = lengths + np.fromiter(map(len, extras), np.int64, len(extras))
        offsets = self._written + np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self._spill.write(b"".join(b for pair in zip(bodies, extras, strict=True) for b in pair))
        self._written += int(sizes.sum())
        return offsets.astype(np.int64), lengths

    def finish(self) -> None:
        """Sort by key once every page is in; a key read twice is kept once. One column at a
        time, each released as it is sorted: memory peaks at the index and one column more,
        not twice the index."""
        parts, self._parts = self._parts, {}
        held = parts.pop("keys", None)
        keys = held.values() if held is not None else np.empty(0, np.int64)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        del held
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        self.duplicates = int((~first).sum())
        self.keys = keys[first] if self.duplicates else keys
        self.columns = {}
        for name in list(parts):
            values = parts.pop(name).values()[order]
            self.columns[name] = values[first] if self.duplicates else values
        self.seen = np.zeros(len(self.keys), dtype=bool)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, name: str) -> np.ndarray:
        """A column, aligned with ``keys`` (empty when no record was read)."""
        return self.columns.get(name, np.empty(0, np.int64))

    def locate(self, keys: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, ...]:
        """(found, same content, position) of each key with its content hash; the position
        is meaningless where the key is not found."""
        if not len(self.keys):
            nowhere = np.zeros(len(keys), dtype=bool)
            return nowhere, nowhere, np.zeros(len(keys), np.intp)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[pos] == keys
        return found, found & (self["hashes"][pos] == hashes), pos

    def record(self, pos: int) -> dict:
        """The record at ``pos`` as the job would send it, numbers exact."""
        return parse_exact(self._read(pos, extra=False))

    def extra(self, pos: int) -> bytes:
        return self._read(pos, extra=True)

    def _read(self, pos: int, *, extra: bool) -> bytes:
        offset, length = int(self["offsets"][pos]), int(self["lengths"][pos])
        if extra:
            offset, length = offset + length, int(self["extra_lengths"][pos])
        self._spill.seek(offset)
        return self._spill.read(length)

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> TargetIndex:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Growing:
    """One column's values as pages add them: an array grown by a quarter when full, so the
    index costs its own size (not a list of small arrays, then their concatenation too)."""

    def __init__(self, dtype: np.dtype):
        self._data, self._size = np.empty(1 << 14, dtype), 0

    def extend(self, values: np.ndarray) -> None:
        end = self._size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, len(self._data) * 5 // 4), self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = values
        self._size = end

    def values(self) -> np.ndarray:
        return self._data[: self._size]
