"""The pure, per-chunk part of a run: map, check, hash and serialize one chunk.

It needs no state from other chunks, so chunks are prepared on worker threads in parallel
(Arrow and numpy release the GIL for most of it) while the main thread does the ordered,
stateful part: duplicate keys across the run, change detection, batching, the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .config import JobConfig
from .extract import Chunk
from .mapping import map_products
from .price_list import PriceListIndex
from .records import key_hashes, serialize
from .validate import Failure, check_products

__all__ = ["Prepared", "prepare_in_parallel", "prepare_products"]


@dataclass(frozen=True)
class Prepared:
    chunk: Chunk
    table: pa.Table  # the mapped records, one per chunk row
    failures: list[Failure]  # rows that broke a rule of their own
    keys: np.ndarray  # externalId hashes, one per row
    sku_keys: np.ndarray  # lower-cased SKU hashes (SKUs are unique case-insensitively)
    passed: np.ndarray  # rows without failures: the ones serialized
    bodies: list[bytes]  # canonical JSON of the passed rows, in order
    hashes: np.ndarray  # content hashes of the passed rows


def prepare_products(chunk: Chunk, job: JobConfig, price_list: PriceListIndex | None) -> Prepared:
    table, failures = map_products(chunk, job, price_list)
    failures += check_products(table, job)
    passed = (
        ~np.logical_or.reduce([f.mask for f in failures])
        if failures
        else np.ones(len(table), dtype=bool)
    )
    keys = key_hashes(table.column("externalId").combine_chunks())
    sku_keys = key_hashes(pc.utf8_lower(table.column("sku").combine_chunks()))
    bodies, hashes = serialize(table.filter(pa.array(passed)) if not passed.all() else table)
    return Prepared(chunk, table, failures, keys, sku_keys, passed, bodies, hashes)


def prepare_in_parallel(
    chunks: Iterable[Chunk], prepare: Callable[[Chunk], Prepared], *, workers: int = 2
) -> Iterator[Prepared]:
    """Prepared chunks in source order, at most ``workers + 1`` chunks ahead (bounded memory)."""
    with ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        ahead: list[Future] = []
        try:
            for chunk in chunks:
                ahead.append(pool.submit(prepare, chunk))
                if len(ahead) > workers:
                    yield ahead.pop(0).result()
            while ahead:
                yield ahead.pop(0).result()
        finally:
            for future in ahead:
                future.cancel()
