"""The records a run holds back, collected as columns chunk by chunk and spilled to disk.

A migration run before its customers are loaded holds every order (2,500,000 for a
10,000,000-line file). One Python object per held order was ~0.5 GB; here each chunk's held
orders become one Arrow record batch appended to an anonymous temporary file (deleted as it
is created: a crash leaves nothing behind), and only their key hashes (8 bytes an order)
stay in memory, for the set operations at the end of the run. The ledger reads the batches
back a few thousand rows at a time (:func:`pipelines.ledger.held_records.record_held`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pyarrow as pa

from pipelines.ops.record_files import anonymous_file

__all__ = ["HELD_SCHEMA", "HeldColumns", "as_text"]

HELD_SCHEMA = pa.schema(
    [
        pa.field("key_hash", pa.int64()),
        pa.field("external_id", pa.string()),
        pa.field("rule", pa.string()),  # unknown_customer, unknown_sku
        pa.field("value", pa.string()),  # the customer number, or "line N: SKU"
        pa.field("watermark", pa.string()),
    ]
)


def as_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``values`` as strings, each as Python's ``str`` writes it (Arrow's cast writes some
    types differently, e.g. timestamps, and the ledger keeps what earlier versions wrote)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_string(values.type):
        return values
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        return values.cast(pa.string())
    return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())


class HeldColumns:
    """Held records in append order: key hashes in memory, everything else on disk."""

    def __init__(self, directory: Path | None = None):
        self._directory = directory
        self._file: IO[bytes] | None = None  # opened by the first append
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._keys: list[np.ndarray] = []
        self._lock = threading.Lock()  # chunks may be admitted on more than one thread
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(
        self,
        keys: np.ndarray,
        external_ids: pa.Array,
        rule: str,
        values: pa.Array | None = None,
        watermarks: pa.Array | None = None,
    ) -> None:
        """One chunk's held records; ``values`` and ``watermarks`` aligned with the keys,
        or None when there are none."""
        n = len(keys)
        if not n:
            return
        keys = np.ascontiguousarray(keys, np.int64)
        nulls = pa.nulls(n, pa.string())
        batch = pa.record_batch(
            [
                pa.array(keys),
                as_text(external_ids),
                pa.array([rule] * n, pa.string()),
                nulls if values is None else as_text(values),
                nulls if watermarks is None else as_text(watermarks),
            ],
            schema=HELD_SCHEMA,
        )
        with self._lock:
            if self._writer is None:
                self._file = open(anonymous_file(self._directory), "w+b")  # noqa: SIM115
                # Closed with this object at the latest: a plan, or a run that stops
                # midway, never reaches close().
                weakref.finalize(self, self._file.close)
                self._writer = pa.ipc.new_stream(self._file, HELD_SCHEMA)
            self._writer.write_batch(batch)
            self._keys.append(keys.copy())
            self.count += n

    def keys(self) -> np.ndarray:
        """Every key hash, in append order (one record may come more than once)."""
        with self._lock:
            if len(self._keys) != 1:
                self._keys = [np.concatenate([np.empty(0, np.int64), *self._keys])]
            return self._keys[0]

    def batches(self, rows: int) -> Iterator[pa.RecordBatch]:
        """Every record in append order, at most ``rows`` at a time. Ends the appending."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            file = self._file
        if file is None:
            return
        file.seek(0)
        for batch in pa.ipc.open_stream(file):
            for lo in range(0, batch.num_rows, rows):
                yield batch.slice(lo, rows)

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            if self._file is not None:
                self._file.close()
                self._file = None
