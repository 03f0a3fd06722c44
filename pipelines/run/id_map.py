"""`ids`: the mapping from each source key this job owns to the ids Nymble gave the record
(a product's productId, an order's id and orderNumber), for systems downstream.

The keys come from the ledger (the records whose last acknowledgment was this job's); the ids
from the target itself, every page of the entity's list route read in parallel within the
pacing, as `reconcile` reads it. Each page is written out as it arrives: memory holds the
ledger's owned keys as a sorted int64 array and a few pages, never the map.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.ledger.ownership import keys_synced_by_job
from pipelines.load.api_reader import field_of
from pipelines.load.pacing import Pacer
from pipelines.load.paged_reads import PagedReads
from pipelines.ops.run_reports import TextTable
from pipelines.run.reconcile_views import reconcile_view
from pipelines.transform.serialize import key_hashes

if TYPE_CHECKING:
    from pipelines.entities import RunContext

__all__ = ["ID_COLUMNS", "IdMap", "export_ids"]

# The columns of the map per entity: the key the job sends first, then what Nymble assigns.
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "products": ("externalId", "sku", "productId"),
    "orders": ("externalId", "id", "orderNumber"),
    "customers": ("customerNumber", "id"),
}
_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}


@dataclass
class IdMap:
    """What ``ids`` wrote: one row per owned record the target holds."""

    job: str
    entity: str
    target: str
    path: str
    owned: int = 0  # keys this job owns according to the ledger
    written: int = 0  # rows written: owned records found at the target
    not_found: int = 0  # owned, yet no longer at the target (deleted by hand?)
    target_records: int = 0  # records the target listed
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def tables(self) -> list[TextTable]:
        facts = [
            ("job", f"{self.job} ({self.entity})"),
            ("target", self.target),
            ("keys this job owns (ledger)", f"{self.owned:,}"),
            ("written", f"{self.written:,} to {self.path}"),
            ("owned but not at the target", f"{self.not_found:,}"),
            ("target records read", f"{self.target_records:,} in {self.requests:,} requests"),
        ]
        return [TextTable("id map", ("", ""), facts)]


def export_ids(ctx: RunContext, out: Path) -> IdMap:
    """Write the id map of ``ctx.job`` at ``ctx.target`` to ``out`` (.csv, .json or .jsonl)."""
    job, entity = ctx.job, ctx.job.entity
    fmt = _format(out)
    owned, _ids = keys_synced_by_job(
        ctx.ledger, job=job.job, target_id=ctx.target.id, entity=entity
    )
    result = IdMap(job.job, entity, ctx.target.label, str(out), owned=len(owned))
    view = reconcile_view(entity)
    key, columns = _key_field(entity), ID_COLUMNS[entity]
    workers = ctx.options.concurrency or job.batch.concurrency
    reads = PagedReads(
        ctx.client, pacer=ctx.options.pacer or Pacer(workers), policy=ctx.options.policy,
        workers=workers,
    )  # fmt: skip
    with _writer(out, fmt, columns) as write:
        for filters in view.listings:
            for page in reads.pages(view.route, *filters):
                result.target_records += len(page)
                rows = _owned_rows(page, key, owned, columns)
                write(rows)
                result.written += len(rows)
    result.not_found = result.owned - result.written
    result.requests = reads.requests
    return result


def _format(out: Path) -> str:
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"--out {out}: name a .csv, .json or .jsonl file (the suffix picks the format)"
        )
    return fmt


def _key_field(entity: str) -> str:
    return ID_COLUMNS[entity][0]


def _owned_rows(page: list[dict], key: str, owned: np.ndarray, columns: tuple[str, ...]) -> list:
    """The page's records whose key this job owns, as rows of ``columns``."""
    keyed = [r for r in page if field_of(r, key) not in (None, "")]
    if not owned.size or not keyed:
        return []
    hashes = key_hashes(pa.array([str(field_of(r, key)) for r in keyed], pa.string()))
    pos = np.minimum(np.searchsorted(owned, hashes), owned.size - 1)
    mine = owned[pos] == hashes
    return [[field_of(r, c) for c in columns] for r, m in zip(keyed, mine, strict=True) if m]


@contextmanager
def _writer(out: Path, fmt: str, columns: tuple[str, ...]) -> Iterator[_Rows]:
    """Rows written to ``out`` in ``fmt``; the file appears only once complete (written
    beside it, then renamed), so a consumer never reads half a map."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as handle:
        rows = _Rows(handle, fmt, columns)
        yield rows
        rows.close()
    partial.replace(out)


class _Rows:
    def __init__(self, handle: IO[str], fmt: str, columns: tuple[str, ...]):
        self.handle, self.fmt, self.columns, self.count = handle, fmt, columns, 0
        if fmt == "csv":
            self.csv = csv.writer(handle)
            self.csv.writerow(columns)
        elif fmt == "json":
            handle.write("[")

    def __call__(self, rows: list[list]) -> None:
        if self.fmt == "csv":
            self.csv.writerows(["" if v is None else v for v in row] for row in rows)
        else:
            for row in rows:
                text = orjson.dumps(dict(zip(self.columns, row, strict=True))).decode()
                lead = "" if self.fmt == "jsonl" else ("\n" if not self.count else ",\n")
                self.handle.write(lead + text + ("\n" if self.fmt == "jsonl" else ""))
                self.count += 1

    def close(self) -> None:
        if self.fmt == "json":
            self.handle.write("\n]\n" if self.count else "]\n")
