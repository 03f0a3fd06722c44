"""One sync run, top to bottom: extract, map, validate, diff, load, ledger.

``run_products`` is handed everything it talks to (ledger, HTTP client, target) and returns
the run summary. A rerun after a crash needs nothing special: what the target acknowledged
is in the ledger, and everything else is sent again, idempotently by externalId.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np

from pipelines.admit.acked_state import AckedState
from pipelines.admit.memo import MemoFile, RowFingerprints, code_digest, file_digest
from pipelines.contract import BULK_ENDPOINTS
from pipelines.entities.products.mirror import Deactivations, deactivations, find_vanished
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_admission import Admission
from pipelines.entities.products.product_prepare import (
    Recall,
    prepare_in_parallel,
    prepare_products,
)
from pipelines.errors import GateFailed, JobFileError, NymbleSyncError, Problem
from pipelines.extract import files as extract
from pipelines.extract.files import Chunk
from pipelines.jobs.specs import CsvSource, JobConfig, ParquetSource, check_columns
from pipelines.load.api_reader import ApiReader
from pipelines.load.batching import Pending
from pipelines.load.pacing import Pacer
from pipelines.load.sender import RetryPolicy, Sender
from pipelines.ops.memory import return_freed_memory
from pipelines.quality.gatekeeper import Gatekeeper, source_size
from pipelines.run.delivery import Delivery, open_run
from pipelines.run.summary import RunSummary
from pipelines.targets import Target
from pipelines.transform.convert import normalize_text
from pipelines.transform.rejects import Reject
from pipelines.transform.serialize import key_hashes

if TYPE_CHECKING:
    from pipelines.ledger import Ledger

__all__ = [
    "PARTIAL_FEED_NOTE",
    "RunOptions",
    "admitted",
    "feed_keys",
    "load_price_list",
    "open_feed",
    "open_source",
    "partial_feed",
    "run_products",
]

# ~4,000 catalog rows a chunk: big enough for vectorized work to pay, small enough that
# Arrow's CSV read-ahead stays small (measured: 1 MB blocks hold 17 MB, 2 MB blocks 73 MB).
CSV_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class RunOptions:
    source: Path | None = None  # replaces the job's source path for this run
    full: bool = False  # send everything, even what the target already has
    rejects_path: Path | None = None
    state_dir: Path = Path(".nymble-sync")
    concurrency: int | None = None
    batch_items: int | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    pacer: Pacer | None = None  # share one between runs of the same process to share a budget
    allow_mass_deactivate: bool = False  # mirror mode may exceed max_deactivate_pct
    override_gates: frozenset[str] = frozenset()  # quality gates ignored for this run, by name
    log: Callable[[str], None] = print
    progress: Callable[[RunSummary], None] | None = None  # called after each chunk


def open_source(
    source: CsvSource | ParquetSource, path: Path | None = None, log: Callable[[str], None] = print
) -> tuple[list[str], Iterator[Chunk]]:
    """The source's columns (read before any data) and its chunks."""
    path = path or source.path
    if isinstance(source, ParquetSource):
        return extract.parquet_columns(path), extract.read_parquet(path)
    encoding = source.encoding
    if encoding == "auto":
        choice = extract.detect_encoding(path)
        log(f"{path}: reading as {choice.encoding} ({choice.reason})")
        encoding = choice.encoding
    columns = extract.csv_columns(path, encoding=encoding, delimiter=source.delimiter)
    return columns, extract.read_csv(
        path, encoding=encoding, delimiter=source.delimiter, block_bytes=CSV_BLOCK_BYTES
    )


def run_products(
    job: JobConfig, target: Target, ledger: Ledger, client: httpx.Client, options: RunOptions
) -> RunSummary:
    source_name, chunks = open_feed(job, options)
    price_list = load_price_list(job, options)
    mirror, notes = None, []
    if job.missing == "deactivate":
        if partial_feed(options):
            notes.append(PARTIAL_FEED_NOTE)
        else:
            # Two passes: the cap must be decided before the first send, and a scan of
            # the key column costs less than spilling every pending body to disk.
            keys = feed_keys(job, chunks)
            acked = AckedState(*ledger.acked_state(target_id=target.id, entity=job.entity))
            vanished = find_vanished(ledger, job, target_id=target.id, feed_keys=keys, acked=acked)
            vanished.check_cap(job, allow=options.allow_mass_deactivate)
            mirror = deactivations(ApiReader(client), vanished)
            _, chunks = open_feed(job, options)
    run = _Run(job, target, ledger, client, options, source_name)
    run.summary.notes.extend(notes)
    return run.execute(chunks, price_list, mirror)


def partial_feed(options: RunOptions) -> bool:
    """Whether this run reads less than the whole catalog, so absence proves nothing."""
    return options.source is not None


PARTIAL_FEED_NOTE = (
    "mirror mode skipped: --source reads a subset of the feed, so nothing was deactivated"
)


def open_feed(job: JobConfig, options: RunOptions) -> tuple[str, Iterator[Chunk]]:
    """The source's name and chunks, once its columns are known to hold what the job reads."""
    source_name = str(options.source or job.source.path)
    columns, chunks = open_source(job.source, options.source, options.log)
    check_columns(job, columns, source=source_name)
    return source_name, chunks


def admitted(
    chunks: Iterable[Chunk],
    job: JobConfig,
    index: PriceListIndex | None,
    admission: Admission,
    recall: Recall | None = None,
) -> Iterator[Pending]:
    """The one streaming path of `run` and `plan`: chunks prepared in parallel, admitted in
    order; yields each chunk's records that differ from the acknowledged state."""
    if recall is not None:
        chunks = extract.coalesce(chunks, recall.chunk_rows)
    screened = prepare_in_parallel(
        chunks,
        lambda chunk: prepare_products(chunk, job, index, recall),
        in_order=admission.screen,
    )
    for chunk in screened:
        yield admission.admit(chunk)


def feed_keys(job: JobConfig, chunks: Iterable[Chunk]) -> np.ndarray:
    """Sorted, distinct key hashes of every keyed row of the feed, rejected rows included (a
    product whose row failed a check is still in the feed). Reads only the key column: about
    a fifth of what preparing the chunks costs."""
    found = [np.empty(0, np.int64)]
    for chunk in chunks:
        keys = key_hashes(normalize_text(chunk.table.column(job.key).combine_chunks()))
        found.append(np.unique(keys[keys != 0]))  # 0: a missing key
    return np.unique(np.concatenate(found))


def load_price_list(
    job: JobConfig, options: RunOptions
) -> tuple[PriceListIndex | None, list[Reject]]:
    if job.price_list is None:
        return None, []
    cfg = job.price_list
    before = file_digest(cfg.source.path)
    columns, chunks = open_source(cfg.source, log=options.log)
    missing = [c for c in (cfg.key, cfg.tier, cfg.quantity, cfg.price) if c not in columns]
    if missing:
        raise JobFileError(
            str(job.path),
            [Problem("price_list", f"column {c!r} is not in {cfg.source.path}") for c in missing],
        )
    index, rejects = PriceListIndex.load(cfg, chunks)
    if file_digest(cfg.source.path) == before:  # else the bytes read are not known
        index.digest = before
    return index, rejects


class _Run:
    """One product run: the stages, called in order by ``execute``. The send half (batches,
    concurrency, ledger outcomes) is the shared ``Delivery``."""

    def __init__(
        self,
        job: JobConfig,
        target: Target,
        ledger: Ledger,
        client: httpx.Client,
        options: RunOptions,
        source: str,
    ):
        self.job, self.target, self.ledger, self.options = job, target, ledger, options
        self.source = source
        self.summary = RunSummary(job=job.job, entity=job.entity, target=target.label)
        concurrency = options.concurrency or job.batch.concurrency
        self.sender = Sender(
            client,
            BULK_ENDPOINTS[job.entity],
            policy=options.policy,
            pacer=options.pacer or Pacer(concurrency),
        )

    def execute(
        self, chunks: Iterator[Chunk], price_list, mirror: Deactivations | None = None
    ) -> RunSummary:
        index, list_rejects = price_list
        o = self.options
        self.scope = open_run(self.ledger, self.target, self.summary, self.source, o)
        self.rejects = self.scope.rejects
        self.rejects.write(list_rejects)
        self.delivery = Delivery(
            self.scope,
            self.sender,
            max_items=o.batch_items or self.job.batch.max_items,
            max_bytes=self.job.batch.max_bytes,
        )
        try:
            self._stream(chunks, index, self.scope.acked_state(o.full))
            if mirror is not None:
                self._deactivate(mirror)
            self.summary.status = self._outcome()
        except NymbleSyncError as exc:
            self.summary.status = "gated" if isinstance(exc, GateFailed) else "failed"
            self.summary.notes.append(str(exc))
            self.delivery.stop()
            raise
        finally:
            self.delivery.close()
            self.scope.finish()
        return self.summary

    def _stream(
        self, chunks: Iterator[Chunk], index: PriceListIndex | None, state: AckedState
    ) -> None:
        gate = self._gatekeeper()
        memo, recall = self._memo(state, index)
        admission = Admission(
            self.job, state, self.rejects, self.summary, on_kept=gate.kept, memo=memo
        )
        trimmed_at = 0  # rows read when freed memory was last given back
        for pending in admitted(chunks, self.job, index, admission, recall):
            released = gate.add(pending)
            self.delivery.send(released)
            if released and self.summary.rows_read - trimmed_at >= gate.window_rows:
                return_freed_memory()  # a window's bodies went out: garbage now
                trimmed_at = self.summary.rows_read
            self.scope.beat()
            if self.options.progress is not None:
                self.summary.elapsed_s = time.perf_counter() - self.scope.started
                self.options.progress(self.summary)
        self.delivery.send(gate.finish())
        self.delivery.finish()
        if memo is not None:
            memo.save(state)

    def _memo(
        self, state: AckedState, index: PriceListIndex | None
    ) -> tuple[MemoFile | None, Recall | None]:
        """The source-row memo of this job at this target, loaded into ``state``."""
        if index is not None and index.digest is None:
            self.options.log("the price list changed while it was read: every row is mapped")
            return None, None
        if code_digest() is None:
            self.options.log("nymble-sync's sources are not readable: every row is mapped")
            return None, None
        memo = MemoFile.for_scope(
            self.options.state_dir,
            job=self.job.job,
            entity=self.job.entity,
            target_id=self.target.id,
            log=self.options.log,
        )
        memo.load_into(state)
        digest = index.digest if index is not None else None
        fingerprints = RowFingerprints(self.job, price_list_digest=digest)
        return memo, Recall(fingerprints, state, skip_mapping=not self.job.expectations)

    def _gatekeeper(self) -> Gatekeeper:
        """Quality gates: the feed's size is judged before reading, the records by window."""
        gate = Gatekeeper(
            settings=self.job.gates,
            expectations=list(self.job.expectations),
            summary=self.summary,
            rejects=self.rejects,
            source=self.source,
            overrides=self.options.override_gates,
            log=self.options.log,
        )
        path = self.options.source or self.job.source.path
        self.summary.source_size = source_size(path, self.job.source.type)
        if partial_feed(self.options):  # a chosen subset is small on purpose
            return gate
        last = self.ledger.last_successful_run(
            job=self.job.job, target_id=self.target.id, entity=self.job.entity
        )
        gate.check_size(
            self.summary.source_size, (last.counts or {}).get("source_size") if last else None
        )
        return gate

    def _deactivate(self, mirror: Deactivations) -> None:
        """After every feed record is settled: send the deactivations, recorded alike."""
        if mirror.gone:
            self.summary.notes.append(
                f"{len(mirror.gone):,} vanished product(s) are no longer at the target at all "
                f"(e.g. {mirror.gone[0]!r}): nothing to deactivate"
            )
        self.delivery.deactivating = True
        self.delivery.send([mirror.records])
        self.delivery.finish()

    def _outcome(self) -> str:
        failed = self.delivery.deactivate_failed
        if failed:
            self.summary.notes.append(f"{failed:,} deactivation(s) failed; see the rejects file")
        troubled = self.summary.rejected or self.summary.failed or failed
        return "partial" if troubled else "succeeded"
