"""One sync run, top to bottom: extract, map, validate, diff, load, ledger.

``run_products`` is handed everything it talks to (ledger, HTTP client, target) and returns
the run summary. A rerun after a crash needs nothing special: what the target acknowledged
is in the ledger, and everything else is sent again, idempotently by externalId.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np

from . import extract
from .admit import Admission
from .api_state import ApiReader
from .batching import Batch, Batcher, Pending
from .config import CsvSource, JobConfig, ParquetSource, check_columns
from .contract import BULK_ENDPOINTS
from .convert import normalize_text
from .diff import AckedState
from .dispatch import Dispatcher
from .errors import GateFailed, JobFileError, NymbleSyncError, Problem
from .extract import Chunk
from .gatekeeper import Gatekeeper, source_size
from .load import BatchResult, RetryPolicy, Sender
from .mirror import Deactivations, deactivations, find_vanished
from .pacing import Pacer
from .prepare import prepare_in_parallel, prepare_products
from .price_list import PriceListIndex
from .records import key_hashes
from .rejects import Reject, RejectsWriter
from .summary import RunSummary
from .targets import Target

if TYPE_CHECKING:
    from .ledger import Ledger

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
    chunks: Iterable[Chunk], job: JobConfig, index: PriceListIndex | None, admission: Admission
) -> Iterator[Pending]:
    """The one streaming path of `run` and `plan`: chunks prepared in parallel, admitted in
    order; yields each chunk's records that differ from the acknowledged state."""
    prepared = prepare_in_parallel(chunks, lambda chunk: prepare_products(chunk, job, index))
    for chunk in prepared:
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
    columns, chunks = open_source(job.price_list.source, log=options.log)
    cfg = job.price_list
    missing = [c for c in (cfg.key, cfg.tier, cfg.quantity, cfg.price) if c not in columns]
    if missing:
        raise JobFileError(
            str(job.path),
            [Problem("price_list", f"column {c!r} is not in {cfg.source.path}") for c in missing],
        )
    return PriceListIndex.load(cfg, chunks)


class _Run:
    """The state of one run; its methods are the stages, called in order by ``execute``."""

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
        self.batcher = Batcher(options.batch_items or job.batch.max_items, job.batch.max_bytes)
        self._queue: deque[Batch] = deque()
        self._deactivating = False  # batches now carry deactivations, not feed records
        self._deactivate_failed = 0

    def execute(
        self, chunks: Iterator[Chunk], price_list, mirror: Deactivations | None = None
    ) -> RunSummary:
        started = self._started = time.perf_counter()
        index, list_rejects = price_list
        crashed = self.ledger.abandon_unfinished(
            job=self.job.job, target_id=self.target.id, entity=self.job.entity
        )
        if crashed:
            self.options.log(f"finishing the work of interrupted run(s) {crashed}")
        run_id = self.ledger.begin_run(
            job=self.job.job,
            target_id=self.target.id,
            target_label=self.target.label,
            entity=self.job.entity,
            source=self.source,
            full=self.options.full,
        )
        self.summary.run_id = run_id
        self.run_id = run_id
        state = (
            AckedState.empty()
            if self.options.full
            else AckedState(
                *self.ledger.acked_state(target_id=self.target.id, entity=self.job.entity)
            )
        )
        rejects_path = self.options.rejects_path or (
            self.options.state_dir / "rejects" / f"{self.job.job}-run{run_id}.csv"
        )
        self.rejects = RejectsWriter(rejects_path)
        self.rejects.write(list_rejects)
        self.dispatcher = Dispatcher(self.sender, self.sender.pacer.max_in_flight, self._record)
        try:
            self._stream(chunks, index, state)
            if mirror is not None:
                self._deactivate(mirror)
            self.summary.status = self._outcome()
        except NymbleSyncError as exc:
            self.summary.status = "gated" if isinstance(exc, GateFailed) else "failed"
            self.summary.notes.append(str(exc))
            self._stop()
            raise
        finally:
            self._finish(started)
        return self.summary

    def _stream(self, chunks: Iterator[Chunk], index, state: AckedState) -> None:
        gate = self._gatekeeper()
        admission = Admission(self.job, state, self.rejects, self.summary, on_kept=gate.kept)
        for pending in admitted(chunks, self.job, index, admission):
            self._enqueue(gate.add(pending))
            self.ledger.heartbeat(self.run_id)
            if self.options.progress is not None:
                self.summary.elapsed_s = time.perf_counter() - self._started
                self.options.progress(self.summary)
        self._enqueue(gate.finish())
        self._queue.extend(self.batcher.flush())
        self._send_queued()
        self.dispatcher.drain()

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

    def _enqueue(self, released: list[Pending]) -> None:
        for pending in released:
            self._queue.extend(self.batcher.add(pending))
        self._send_queued()

    def _deactivate(self, mirror: Deactivations) -> None:
        """After every feed record is settled: send the deactivations, recorded alike."""
        if mirror.gone:
            self.summary.notes.append(
                f"{len(mirror.gone):,} vanished product(s) are no longer at the target at all "
                f"(e.g. {mirror.gone[0]!r}): nothing to deactivate"
            )
        self._deactivating = True
        self._queue.extend(self.batcher.add(mirror.records))
        self._queue.extend(self.batcher.flush())
        self._send_queued()
        self.dispatcher.drain()

    def _send_queued(self) -> None:
        while self._queue:
            batch = self._queue[0]
            self.ledger.batch_pending(
                self.run_id,
                batch_id=batch.id,
                entity=self.job.entity,
                item_count=len(batch.records),
                byte_count=batch.byte_count,
            )
            self.dispatcher.submit(batch)  # may raise AuthError collected from an earlier batch
            self._queue.popleft()
            self.summary.batches += 1

    def _record(self, batch: Batch, result: BatchResult) -> None:
        """Main thread only: count a finished batch and write its outcomes to the ledger."""
        rec, statuses = batch.records, [o.status for o in result.outcomes]
        failed = [i for i, s in enumerate(statuses) if s == "failed"]
        if self._deactivating:  # not source rows: kept out of the balanced row counts
            self.summary.deactivated += len(statuses) - len(failed)
            self._deactivate_failed += len(failed)
        else:
            self.summary.created += statuses.count("created")
            self.summary.updated += statuses.count("updated")
            self.summary.failed += len(failed)
        self.summary.requests += result.requests
        self.summary.retries += result.retries
        self.summary.throttled += result.throttled
        if result.shrink:
            self.batcher.max_items = max(1, self.batcher.max_items // 2)
            self.batcher.max_bytes = max(1_000, self.batcher.max_bytes // 2)
        self.ledger.record_outcomes(
            self.run_id,
            batch_id=batch.id,
            target_id=self.target.id,
            entity=self.job.entity,
            external_ids=rec.external_ids,
            key_hashes=rec.key_hashes,
            content_hashes=rec.content_hashes,
            statuses=statuses,
            messages=[o.message for o in result.outcomes],
        )
        self.ledger.batch_done(
            self.run_id,
            batch_id=batch.id,
            status="failed" if len(failed) == len(statuses) else "acked",
            http_status=result.http_status,
            attempts=result.requests,
            elapsed_ms=0.0,
            error="; ".join(result.errors) or None,
        )
        self.rejects.write(
            Reject(
                self.source,
                None if self._deactivating else int(rec.rows[i]),
                rec.external_ids[i],
                "active" if self._deactivating else None,
                None,
                "api_failed",
                result.outcomes[i].message or "failed",
            )
            for i in failed
        )

    def _stop(self) -> None:
        """Account for every record that will not be sent in this run (the next run will)."""
        unsent = [*self.dispatcher.abandon(), *self._queue, *self.batcher.flush()]
        count = sum(len(b.records) for b in unsent)
        if self._deactivating:
            self.summary.notes.append(f"{count:,} deactivation(s) not sent; the next run will")
        else:
            self.summary.skipped += count
        self._queue.clear()

    def _outcome(self) -> str:
        if self._deactivate_failed:
            self.summary.notes.append(
                f"{self._deactivate_failed:,} deactivation(s) failed; see the rejects file"
            )
        troubled = self.summary.rejected or self.summary.failed or self._deactivate_failed
        return "partial" if troubled else "succeeded"

    def _finish(self, started: float) -> None:
        self.dispatcher.close()
        self.rejects.close()
        self.summary.elapsed_s = time.perf_counter() - started
        self.summary.rejects_path = str(self.rejects.path) if self.rejects.count else None
        self.ledger.finish_run(
            self.run_id,
            status=self.summary.status,
            counts=self.summary.counts(),
            rejects_path=self.summary.rejects_path,
            elapsed_s=self.summary.elapsed_s,
        )
