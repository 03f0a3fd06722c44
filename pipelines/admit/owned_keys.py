"""The keys a job owns at a target (see :mod:`pipelines.ledger.ownership`), read from the
ledger in ascending key order, a bucket at a time, in bounded memory.

Concatenating every outcome to sort them took hundreds of MB at 10,000,000 records, and
their external ids as many Python strings again. Here outcomes are spread over buckets by
the top bits of their key, as the acknowledged state is built (:mod:`.acked_build`: the
same buckets, on disk beyond a bound), and each bucket is settled alone: a key's last
acknowledged outcome says who owns it, its last outcome whether the target holds it, and
whether that outcome retired it (its content hash is the one ``retired`` gives for its
external id, compared as the rows are read: ids are never held). Where each owned key's
outcome is (row, position) is kept, so the ids of the few that are wanted can be read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pipelines.admit import acked_build
from pipelines.admit.acked_build import Buckets, bucket_bits
from pipelines.ledger.ownership import outcome_rows
from pipelines.ledger.records import FAILED, decode_detail, last_outcomes

if TYPE_CHECKING:
    from pipelines.ledger import Ledger

__all__ = ["OWNED", "owned_keys"]

# key, outcome row (seq) and position in it of its last acknowledged outcome, and whether
# the key is live: its last outcome is acknowledged and did not retire it, or it failed
# (the target then holds no acknowledged state for it, so it counts as live)
OWNED = np.dtype([("key", "<i8"), ("seq", "<i8"), ("index", "<i4"), ("live", "i1")], align=True)
_OUTCOME = np.dtype(
    [
        ("key", "<i8"),
        ("seq", "<i8"),
        ("index", "<i4"),
        ("code", "i1"),
        ("mine", "i1"),
        ("retired", "i1"),
    ],
    align=True,
)
_INT64_MAX = (1 << 63) - 1

# External ids → the content hash that means "retired" (deactivated) for each.
Retired = Callable[[pa.Array], np.ndarray]


def owned_keys(
    ledger: Ledger,
    *,
    job: str,
    target_id: str,
    entity: str,
    retired: Retired | None = None,
    directory: Path | None = None,
) -> Iterator[tuple[np.ndarray, int]]:
    """For each bucket in key order: the :data:`OWNED` records of the keys ``job`` owns
    (ascending), and the greatest key the bucket can hold (the next bucket's keys are above
    it). Without ``retired`` no key counts as retired."""
    scope = {"target_id": target_id, "entity": entity}
    total = ledger.outcome_total(**scope)
    bits = bucket_bits(total)
    on_disk = total > acked_build.IN_MEMORY_ENTRIES  # read now: tests lower it
    # The acknowledged state's own buckets: the same keys land in the same buckets.
    buckets = Buckets(_OUTCOME, bits, directory if on_disk else None, on_disk=on_disk)
    rows = outcome_rows(ledger, **scope)
    buckets.add_all(_records(row, job, retired) for row in rows)
    for bucket in range(1 << bits):
        yield _settle(buckets.take(bucket)), _upper_key(bucket, bits)


def _records(row, job: str, retired: Retired | None) -> np.ndarray:
    n = len(row.keys)
    records = np.empty(n, _OUTCOME)
    records["key"], records["seq"], records["index"] = row.keys, row.seq, np.arange(n)
    records["code"], records["mine"] = row.codes, row.job == job
    records["retired"] = 0
    if retired is not None and row.job == job:  # only this job's outcomes can be owned
        ids = decode_detail(row.detail)["external_id"].combine_chunks()
        records["retired"] = row.hashes == retired(ids)
    return records


def _settle(outcomes: np.ndarray) -> np.ndarray:
    """One bucket's owned keys, in key order."""
    keys, codes = outcomes["key"], outcomes["code"]
    distinct, last = last_outcomes(keys)
    last_failed = codes[last] == FAILED
    acked = np.flatnonzero(codes != FAILED)
    acked_keys, at = last_outcomes(keys[acked])
    at = acked[at]  # each key's last acknowledged outcome
    mine = outcomes["mine"][at] == 1
    failed_now = last_failed[np.searchsorted(distinct, acked_keys)]
    out = np.empty(int(mine.sum()), OWNED)
    out["key"] = acked_keys[mine]
    mine_at = at[mine]
    out["seq"], out["index"] = outcomes["seq"][mine_at], outcomes["index"][mine_at]
    out["live"] = failed_now[mine] | (outcomes["retired"][mine_at] == 0)
    return out


def _upper_key(bucket: int, bits: int) -> int:
    """The greatest int64 key in ``bucket`` of ``2**bits`` (bucket 0 holds the lowest)."""
    if not bits:
        return _INT64_MAX
    return min(((bucket + 1 - (1 << (bits - 1))) << (64 - bits)) - 1, _INT64_MAX)
