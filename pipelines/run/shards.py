"""Shards: N workers split one job's feed by key, each taking the records of its shard.

The shard of a record is ``xxh3_64(key) mod N``: XXH3, 64 bits, seed 0, over the UTF-8 bytes
of the record key after the trimming every key gets (surrounding whitespace removed), read as
an unsigned integer. A blank or missing key is in shard 0, so its reject is reported once.
The hash is the one the ledger keys records by (``transform.serialize.key_hashes``): fixed by
the XXH3 specification, the same on every machine, OS and version. Orders are sharded by
their order key, so an order's lines stay with it.

A sharded run is its own job in the ledger: ``products#2of4`` (no ``/``, since job names
name files). Locks, runs, watermarks, the row-count gate's baseline, held orders and the
source-row memo are therefore per shard, and shards never wait for one another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

from pipelines.errors import ConfigError
from pipelines.ledger.run_groups import base_job
from pipelines.transform.convert import normalize_text
from pipelines.transform.serialize import key_hashes

if TYPE_CHECKING:
    from pipelines.extract.chunks import Chunk
    from pipelines.transform.rejects import Reject

__all__ = ["SHARDED_MIRROR", "Shard", "base_job", "shard_of"]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
MAX_SHARDS = 4096
SHARDED_MIRROR = (
    "mirror mode skipped in a shard: each shard records the keys it read, and once every "
    "shard of the group finished, `nymble-sync run {job} --finalize --run-group G` "
    "deactivates what none of them read"
)


def shard_of(hashes: np.ndarray, count: int) -> np.ndarray:
    """The shard of each key hash (int64 as the ledger stores them; 0: no key → shard 0)."""
    return (hashes.view(np.uint64) % np.uint64(count)).astype(np.int64)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` as the CLI takes it: shard K (0-based) of N."""
        found = _SPEC.match(text or "")
        if found is None:
            raise ConfigError(f"--shard {text!r}: write it as K/N, e.g. 0/4 (shard 0 of 4)")
        index, count = int(found[1]), int(found[2])
        if not 1 <= count <= MAX_SHARDS or index >= count:
            raise ConfigError(
                f"--shard {text!r}: K must be 0 to N-1 and N 1 to {MAX_SHARDS} "
                "(Kubernetes' JOB_COMPLETION_INDEX is 0-based, as K is)"
            )
        return cls(index, count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def job_name(self, name: str) -> str:
        """The name of this shard's job in the ledger."""
        return f"{name}#{self.index}of{self.count}"

    def job(self, job: Any) -> Any:
        """``job`` (a frozen job model) as this shard's job: its ledger name carries the shard."""
        return job.model_copy(update={"job": self.job_name(job.job)})

    def take(self, chunk: Chunk, key: str) -> Chunk:
        """The rows of ``chunk`` in this shard, and the unparsed rows (``*rejects``) whose key
        is in it: vectorized over the key column (one hash per row, as the ledger's)."""
        table = chunk.table
        if key in table.column_names and table.num_rows:
            keys = key_hashes(normalize_text(table.column(key).combine_chunks()))
            mine = shard_of(keys, self.count) == self.index
            if not mine.all():
                chunk = replace(chunk, table=table.filter(mine), rows=chunk.rows[mine])
        elif table.num_rows and self.index:  # no key column: every row is shard 0's reject
            chunk = replace(chunk, table=table.slice(0, 0), rows=chunk.rows[:0])
        kept = {
            f.name: tuple(r for r in getattr(chunk, f.name) if self._holds(r))
            for f in fields(chunk)
            if f.name.endswith("rejects") and getattr(chunk, f.name)
        }
        return replace(chunk, **kept) if kept else chunk

    def _holds(self, reject: Reject) -> bool:
        key = (reject.external_id or "").strip()
        if not key:
            return self.index == 0
        return xxhash.xxh3_64_intdigest(key.encode()) % self.count == self.index
