"""A chunk prepared for admission: its rows mapped, checked, hashed and serialized.

Preparing needs nothing from other chunks, so it runs on worker threads; what needs the
whole run (duplicates, change detection, counts) is the admission's, in source order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from pipelines.extract.chunks import Chunk
from pipelines.quality.row_checks import Failure
from pipelines.transform.serialize import key_hashes, serialize

if TYPE_CHECKING:
    from pipelines.admit.acked_state import Located

__all__ = ["Prepared", "passed_rows", "prepared"]


@dataclass(frozen=True)
class Prepared:
    chunk: Chunk
    # The mapped records, one per chunk row. When rows were recalled and mapping could be
    # skipped (products' memo): only the key fields, for every row.
    table: pa.Table
    ids: pa.Array  # the ledger's externalId per row
    failures: list[Failure]  # rows that broke a rule of their own
    keys: np.ndarray  # hashes of ids
    passed: np.ndarray  # rows without failures: the ones with a content hash
    bodies: list[bytes | None]  # canonical JSON of the passed rows; None: recalled unchanged
    hashes: np.ndarray  # content hashes of the passed rows
    # Other fields unique in a run (a product's SKU, an order's number): values and hashes.
    unique: dict[str, tuple[pa.Array, np.ndarray]] = field(default_factory=dict)
    located: Located | None = None  # where each row's key is in the acknowledged state
    fingerprints: np.ndarray | None = None  # source-row fingerprints, one per row (memo.py)
    lines: int = 0  # sub-rows read with the chunk (an order's lines)
    references: Any = None  # what the entity's reference checks look at (orders: SKUs, customers)


def passed_rows(failures: list[Failure], length: int) -> np.ndarray:
    """True for the rows no failure flags."""
    if not failures:
        return np.ones(length, dtype=bool)
    return ~np.logical_or.reduce([f.mask for f in failures])


def prepared(
    chunk: Chunk, table: pa.Table, ids: pa.Array, failures: list[Failure], **extra
) -> Prepared:
    """Serialize and hash the rows of ``table`` that passed every check."""
    passed = passed_rows(failures, len(table))
    bodies, hashes = serialize(table if passed.all() else table.filter(pa.array(passed)))
    return Prepared(chunk, table, ids, failures, key_hashes(ids), passed, bodies, hashes, **extra)
