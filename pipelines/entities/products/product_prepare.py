"""The pure, per-chunk part of a product run: map, check, hash and serialize one chunk.

It needs no state from other chunks (only, read-only, what the target acknowledged and the
memo of source rows behind it), so chunks are prepared on worker threads in parallel (Arrow
and numpy release the GIL for most of it). Rows the memo recalls as unchanged are neither
serialized nor, without an expectation suite, mapped beyond their keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.admit.acked_state import AckedState, Located
from pipelines.admit.memo import RowFingerprints
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_checks import check_products
from pipelines.entities.products.product_job import ProductsJob
from pipelines.entities.products.product_mapping import map_identities, map_products
from pipelines.extract.chunks import Chunk
from pipelines.quality.row_checks import Failure
from pipelines.transform.prepared import Prepared, passed_rows
from pipelines.transform.serialize import key_hashes, serialize

__all__ = ["Recall", "RecallRate", "prepare_products"]

# Changed rows of a coalesced chunk are mapped this many at a time (a 1 MB chunk of a typical
# catalog export holds ~4,000 rows).
SLICE_ROWS = 8192


@dataclass(frozen=True)
class Recall:
    """What a worker needs to skip unchanged rows: how to fingerprint a source row, and the
    acknowledged state with its memo tags (read-only while chunks are prepared ahead; the
    main thread's later updates only make more rows recallable)."""

    fingerprints: RowFingerprints
    state: AckedState
    # Whether recalled rows may also skip mapping and the contract checks: they passed them
    # before, with this very mapping. Not when an expectation suite must see every record.
    skip_mapping: bool = True
    rate: RecallRate = field(default_factory=lambda: RecallRate())

    def chunk_rows(self) -> int:
        """How many rows to prepare as one chunk at least: recalled rows cost little memory,
        so while nearly all rows are recalled, small source chunks are joined (fewer fixed
        costs per row); otherwise each source chunk goes alone."""
        recalling = self.skip_mapping and self.rate.value >= RecallRate.HIGH
        return RecallRate.ROWS if recalling else 1


class RecallRate:
    """The share of rows recalled in the chunk prepared last (written by the workers)."""

    HIGH = 0.9
    ROWS = 16_384  # ~4 MB of a typical catalog export

    def __init__(self) -> None:
        self.value = 0.0


def prepare_products(
    chunk: Chunk, job: ProductsJob, price_list: PriceListIndex | None, recall: Recall | None = None
) -> Prepared:
    """Map, check, hash and serialize a chunk; with ``recall``, rows known to be unchanged
    are not serialized, nor mapped beyond their keys when ``recall.skip_mapping``."""
    if recall is None:
        return _prepare(chunk, job, price_list)
    prints = recall.fingerprints(chunk.table)
    if prints is None:
        return _prepare(chunk, job, price_list)
    if not len(recall.state):  # nothing to recall; the fingerprints go into the memo
        return replace(_prepare(chunk, job, price_list), fingerprints=prints)
    ids = map_identities(chunk, job)
    keys = key_hashes(ids.column("externalId").combine_chunks())
    at = recall.state.locate(keys)
    known, hashes = recall.state.recall(at, prints)  # known rows keep the acked hash
    recall.rate.value = float(known.mean()) if len(known) else 0.0
    if not recall.skip_mapping or (not known.any() and len(known) <= SLICE_ROWS):
        full = _prepare(chunk, job, price_list, ~known)
        passed_hashes = hashes[full.passed]
        serialized = ~known[full.passed]
        passed_hashes[serialized] = full.hashes[serialized]
        return replace(full, hashes=passed_hashes, located=at, fingerprints=prints)
    passed, failures, fresh_bodies = known.copy(), [], []
    fresh = np.flatnonzero(~known)
    # A coalesced chunk may turn out to be mostly changed rows: those are mapped a slice
    # at a time, so its memory stays that of a chunk of ordinary size.
    for start in range(0, len(fresh), SLICE_ROWS):
        rows = fresh[start : start + SLICE_ROWS]
        part = _prepare(
            Chunk(chunk.table.take(rows), chunk.rows[rows], chunk.source), job, price_list
        )
        passed[rows] = part.passed
        hashes[rows[part.passed]] = part.hashes
        failures += [f.spread(rows, len(known)) for f in part.failures]
        fresh_bodies += part.bodies
    bodies: list[bytes | None] = [None] * int(passed.sum())
    for slot, body in zip(np.flatnonzero(~known[passed]).tolist(), fresh_bodies, strict=True):
        bodies[slot] = body
    return _prepared(chunk, ids, failures, keys, passed, bodies, hashes[passed], at, prints)


def _prepare(
    chunk: Chunk,
    job: ProductsJob,
    price_list: PriceListIndex | None,
    serialize_rows: np.ndarray | None = None,
) -> Prepared:
    """Every row mapped and checked; the rows that pass (and are in ``serialize_rows``, when
    given) serialized and hashed. ``hashes`` has a place for each passed row: 0 where a row
    was not serialized, ``bodies`` None."""
    table, failures = map_products(chunk, job, price_list)
    failures += check_products(table, job)
    passed = passed_rows(failures, len(table))
    keys = key_hashes(table.column("externalId").combine_chunks())
    chosen = passed if serialize_rows is None else passed & serialize_rows
    if chosen.all():
        bodies, hashes = serialize(table)
        return _prepared(chunk, table, failures, keys, passed, bodies, hashes)
    all_bodies: list[bytes | None] = [None] * int(passed.sum())
    hashes = np.zeros(len(all_bodies), np.int64)
    if chosen.any():
        bodies, new_hashes = serialize(table.filter(pa.array(chosen)))
        slots = np.flatnonzero(chosen[passed])
        hashes[slots] = new_hashes
        for slot, body in zip(slots.tolist(), bodies, strict=True):
            all_bodies[slot] = body
    return _prepared(chunk, table, failures, keys, passed, all_bodies, hashes)


def _prepared(
    chunk: Chunk,
    table: pa.Table,
    failures: list[Failure],
    keys: np.ndarray,
    passed: np.ndarray,
    bodies: list[bytes | None],
    hashes: np.ndarray,
    located: Located | None = None,
    fingerprints: np.ndarray | None = None,
) -> Prepared:
    """A product chunk's records: SKUs are unique in a run, compared case-insensitively."""
    skus = table.column("sku").combine_chunks()
    return Prepared(
        chunk,
        table,
        table.column("externalId").combine_chunks(),
        failures,
        keys,
        passed,
        bodies,
        hashes,
        unique={"sku": (skus, key_hashes(pc.utf8_lower(skus)))},
        located=located,
        fingerprints=fingerprints,
    )
