"""The pure, per-chunk part of a run: map, check, hash and serialize one chunk.

It needs no state from other chunks (only, read-only, what the target acknowledged and the
memo of source rows behind it), so chunks are prepared on worker threads in parallel (Arrow
and numpy release the GIL for most of it). Duplicate keys across the run are found on the
workers too, one chunk at a time in source order; the main thread does the rest of the
ordered part: change detection, batching, the ledger.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.admit.acked_state import AckedState, Located
from pipelines.admit.memo import RowFingerprints
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_mapping import map_identities, map_products
from pipelines.extract.files import Chunk
from pipelines.jobs.specs import JobConfig
from pipelines.quality.row_checks import Failure, check_products
from pipelines.transform.serialize import key_hashes, serialize

__all__ = ["Prepared", "Recall", "prepare_in_parallel", "prepare_products"]

# Changed rows of a coalesced chunk are mapped this many at a time (a 1 MB chunk of a typical
# catalog export holds ~4,000 rows).
SLICE_ROWS = 8192

P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Prepared:
    chunk: Chunk
    # The mapped records, one per chunk row. When rows were recalled and mapping could be
    # skipped: only externalId and sku, for every row (the records to send are in bodies).
    table: pa.Table
    failures: list[Failure]  # rows that broke a rule of their own
    keys: np.ndarray  # externalId hashes, one per row
    sku_keys: np.ndarray  # lower-cased SKU hashes (SKUs are unique case-insensitively)
    passed: np.ndarray  # rows without failures: the ones with a content hash
    bodies: list[bytes | None]  # canonical JSON of the passed rows; None: recalled unchanged
    hashes: np.ndarray  # content hashes of the passed rows
    located: Located | None = None  # where each row's key is in the acknowledged state
    fingerprints: np.ndarray | None = None  # source-row fingerprints, one per row (memo.py)


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
    chunk: Chunk, job: JobConfig, price_list: PriceListIndex | None, recall: Recall | None = None
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
    return Prepared(
        chunk,
        ids,
        failures,
        keys,
        key_hashes(pc.utf8_lower(ids.column("sku").combine_chunks())),
        passed,
        bodies,
        hashes[passed],
        at,
        prints,
    )


def _prepare(
    chunk: Chunk,
    job: JobConfig,
    price_list: PriceListIndex | None,
    serialize_rows: np.ndarray | None = None,
) -> Prepared:
    """Every row mapped and checked; the rows that pass (and are in ``serialize_rows``, when
    given) serialized and hashed. ``hashes`` has a place for each passed row: 0 where a row
    was not serialized, ``bodies`` None."""
    table, failures = map_products(chunk, job, price_list)
    failures += check_products(table, job)
    passed = (
        ~np.logical_or.reduce([f.mask for f in failures])
        if failures
        else np.ones(len(table), dtype=bool)
    )
    keys = key_hashes(table.column("externalId").combine_chunks())
    sku_keys = key_hashes(pc.utf8_lower(table.column("sku").combine_chunks()))
    chosen = passed if serialize_rows is None else passed & serialize_rows
    if chosen.all():
        bodies, hashes = serialize(table)
        return Prepared(chunk, table, failures, keys, sku_keys, passed, bodies, hashes)
    all_bodies: list[bytes | None] = [None] * int(passed.sum())
    hashes = np.zeros(len(all_bodies), np.int64)
    if chosen.any():
        bodies, new_hashes = serialize(table.filter(pa.array(chosen)))
        slots = np.flatnonzero(chosen[passed])
        hashes[slots] = new_hashes
        for slot, body in zip(slots.tolist(), bodies, strict=True):
            all_bodies[slot] = body
    return Prepared(chunk, table, failures, keys, sku_keys, passed, all_bodies, hashes)


def prepare_in_parallel(
    chunks: Iterable[Chunk],
    prepare: Callable[[Chunk], P],
    *,
    workers: int = 2,
    in_order: Callable[[P], R] | None = None,
) -> Iterator[R]:
    """Prepared chunks in source order; besides the one the caller holds, at most ``workers``
    are read ahead (bounded memory).

    A reader thread pulls chunks from the source and hands them to the workers, so reading
    goes on while the caller handles a prepared chunk; an error from the source is raised
    here after the chunks read before it. ``in_order`` (a stateful step such as duplicate
    detection) runs on the workers too, one chunk at a time in source order, so the
    caller's thread is left with what must happen there.
    """
    slots = threading.Semaphore(workers)
    ready: queue.Queue[Future | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def task(chunk: Chunk, turn: threading.Event, next_turn: threading.Event):
        try:
            try:
                prepared = None if stop.is_set() else prepare(chunk)
            finally:
                turn.wait()  # the chunk before has been through in_order
            if in_order is None or prepared is None:
                return prepared
            return in_order(prepared)
        finally:
            next_turn.set()

    def read(pool: ThreadPoolExecutor) -> None:
        source = iter(chunks)
        turn = threading.Event()
        turn.set()
        try:
            try:
                while True:
                    slots.acquire()  # before reading: a chunk read is a chunk held
                    if stop.is_set():
                        return
                    chunk = next(source, None)
                    if chunk is None:
                        break
                    next_turn = threading.Event()
                    ready.put(pool.submit(task, chunk, turn, next_turn))
                    turn = next_turn
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # noqa: BLE001 - raised on the consuming thread, in order
            ready.put(exc)
        else:
            ready.put(None)

    # Tasks are never cancelled: each must pass its turn on, or the next would wait forever.
    # After a stop they skip their work instead.
    with ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        reader = threading.Thread(target=read, args=(pool,), name="read", daemon=True)
        reader.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                result = item.result()
                slots.release()
                yield result
        finally:
            stop.set()
            slots.release()  # a reader waiting for a slot sees the stop
            reader.join()
