"""Products as an entity of the one engine: a feed (with its price list), the per-chunk
preparation with the source-row memo, SKUs unique in a run, mirror mode, and what the org
holds seen as the job would send it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa

from pipelines.admit.acked_state import AckedState
from pipelines.admit.memo import MemoFile, RowFingerprints, code_digest, file_digest
from pipelines.entities import EntityPlugin, EntityRun, SampleDiff
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_checks import product_warnings
from pipelines.entities.products.product_job import ProductsJob, parse_products_job
from pipelines.entities.products.product_mapping import map_products
from pipelines.entities.products.product_prepare import Recall, prepare_products
from pipelines.errors import JobFileError, Problem
from pipelines.extract.chunks import Chunk, coalesce, empty_table
from pipelines.extract.feed import Feed, SourceOpener
from pipelines.extract.row_keys import RowKeys
from pipelines.jobs.specs import SqlSource, spec_column
from pipelines.quality.row_warnings import RowWarning
from pipelines.transform.prepared import Prepared
from pipelines.transform.rejects import Reject

# Mirror mode and `plan` load their code when they need it: a plain run does not (issue 18).
if TYPE_CHECKING:
    from pipelines.entities.products.mirror import Deactivations, Vanished
    from pipelines.load.api_reader import ApiReader
    from pipelines.transform.projection import Projection

__all__ = ["PLUGIN", "ProductsRun", "load_price_list"]

# What a chunk's table holds when the memo recalled its rows without mapping them.
IDENTITY_FIELDS = ("externalId", "sku")


class ProductsRun(EntityRun):
    job: ProductsJob

    def __init__(self, job: ProductsJob, ctx):
        super().__init__(job, ctx)
        self.unique_columns = {"sku": spec_column(job.fields.get("sku")) or "sku"}
        self.index: PriceListIndex | None = None
        self._list_rejects: list[Reject] = []
        self._recall: Recall | None = None

    def open_feed(self) -> Feed:
        feed, _columns = self.ctx.opener.open_main(self.job)
        self._load_price_list()
        return feed

    def chunked(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """While nearly every row is recalled, small chunks are joined (see ``Recall``)."""
        if self._recall is None:
            return iter(chunks)
        return coalesce(chunks, self._recall.chunk_rows)

    def prepare(self, chunk: Chunk) -> Prepared:
        return prepare_products(chunk, self.job, self.index, self._recall)

    def warnings(self, prepared: Prepared) -> list[RowWarning]:
        """Product warnings (:func:`product_warnings`). A chunk the memo recalled holds only
        the keys of its rows: the rows it serialized are mapped again to be looked at (the
        recalled ones are unchanged, so not sent, so not warned about)."""
        p = prepared
        if p.fingerprints is None or p.table.column_names != list(IDENTITY_FIELDS):
            return product_warnings(p.table, self.job)
        serialized = np.flatnonzero(p.passed)[[body is not None for body in p.bodies]]
        if not serialized.size:
            return []
        chunk = p.chunk
        rows = Chunk(chunk.table.take(serialized), chunk.rows[serialized], chunk.source)
        table, _ = map_products(rows, self.job)
        found = product_warnings(table, self.job)
        return [w.spread(serialized, len(chunk.rows)) for w in found]

    def side_rejects(self) -> list[Reject]:
        return self._list_rejects

    def recall(self, state: AckedState) -> MemoFile | None:
        """The source-row memo of this job at this target, loaded into ``state``."""
        log = self.ctx.options.log
        if self.index is not None and self.index.digest is None:
            log(
                "the price list's bytes are not known (read by SQL, or changed while read): "
                "every row is mapped"
            )
            return None
        if code_digest() is None:
            log("nymble-sync's sources are not readable: every row is mapped")
            return None
        memo = MemoFile.for_scope(
            self.ctx.options.state_dir,
            job=self.job.job,
            entity=self.job.entity,
            target_id=self.ctx.target.id,
            log=log,
        )
        memo.load_into(state)
        digest = self.index.digest if self.index is not None else None
        fingerprints = RowFingerprints(self.job, price_list_digest=digest)
        self._recall = Recall(fingerprints, state, skip_mapping=not self.job.expectations)
        return memo

    def api_state(self, reader: ApiReader) -> AckedState:
        from pipelines.transform.projection import read_state

        return read_state(reader.pages(), self.projection())

    def sample(self, reader: ApiReader, external_id: str, body: bytes) -> SampleDiff:
        """The fields whose canonical values differ between the org's product and ``body``.

        One GET by SKU; only if the SKU changed (or is not held), a lookup by externalId.
        """
        new = orjson.loads(body)
        sku = new.get("sku")
        stored = reader.product(sku) if sku else None
        if stored is None or stored.get("externalId") != external_id:
            stored = reader.by_external_id(external_id)
        if stored is None:
            return SampleDiff(external_id, {k: [None, v] for k, v in new.items()}, found=False)
        old = self.projection().canonical(stored)
        changes = {k: [old.get(k), new[k]] for k in sorted(new) if old.get(k) != new[k]}
        return SampleDiff(external_id, changes)

    def projection(self) -> Projection:
        """Products as this job maps them: the schema of an empty chunk, mapped."""
        from pipelines.transform.projection import Projection

        used = set(self.job.source_columns_used().values())
        empty = empty_table(used)
        mapped, _ = map_products(Chunk(empty, np.empty(0, np.int64), ""), self.job, self.index)
        return Projection(mapped.schema)

    def feed_keys_needed(self) -> bool:
        return self.job.missing == "deactivate"

    def vanished(self, keys) -> Vanished:
        """Products this job synced that the feed (``keys``: sorted, or ascending blocks)
        no longer holds."""
        from pipelines.entities.products.mirror import find_vanished

        ctx = self.ctx
        return find_vanished(
            ctx.ledger,
            self.job,
            target_id=ctx.target.id,
            feed_keys=keys,
            directory=ctx.options.state_dir / "tmp",  # beside the ledger, as the run's files
        )

    def deactivations(self, vanished: Vanished) -> Deactivations:
        from pipelines.entities.products.mirror import deactivations
        from pipelines.load.api_reader import ApiReader

        return deactivations(ApiReader(self.ctx.client), vanished)

    def _load_price_list(self) -> None:
        if self.job.price_list is not None and self.index is None:  # the feed may open twice
            self.index, self._list_rejects = load_price_list(self.job, self.ctx.opener)


def load_price_list(
    job: ProductsJob, opener: SourceOpener
) -> tuple[PriceListIndex | None, list[Reject]]:
    """The job's long price list, indexed by key, and its rejected rows. The index carries
    the file's digest when the bytes were the same before and after reading (the memo's
    seed); a price list read through SQL has none, so the memo is off for it."""
    cfg = job.price_list
    if cfg is None:
        return None, []
    file = None if isinstance(cfg.source, SqlSource) else opener.path(cfg.source, main=False)
    before = file_digest(file) if file is not None else None
    columns, chunks = opener.open(cfg.source, main=False, number=job.number)
    missing = [c for c in (cfg.key, cfg.tier, cfg.quantity, cfg.price) if c not in columns]
    if missing:
        where = opener.name(cfg.source, main=False)
        raise JobFileError(
            str(job.path),
            [Problem("price_list", f"column {c!r} is not in {where}") for c in missing],
        )
    index, rejects = PriceListIndex.load(cfg, chunks, job.number)
    if file is not None and file_digest(file) == before:  # else the bytes read are unknown
        index.digest = before
    keys = RowKeys.of(cfg.source, cfg.key, opener, main=False)  # rows it could not parse
    keyed = list(keys(rejects))
    # a row that could not be read spoils its key too: no product is sent with part of its list
    unread = {r.external_id for r in keyed if r.external_id}
    if unread:
        index.bad_keys = pa.concat_arrays(
            [index.bad_keys.cast(pa.string()), pa.array(sorted(unread), pa.string())]
        )
    return index, keyed


PLUGIN = EntityPlugin("products", parse_products_job, ProductsRun)
