"""The one engine: the read half shared by `run`, `plan` and `validate`, for every entity.

extract (the entity opens its feed) → prepare (map, check, hash, serialize; worker threads)
→ admit (duplicates, references, change detection; in source order) → quality gates. What
follows differs by command: `run` sends and records (:mod:`.sync_run`), `plan` counts and
samples (:mod:`.plan`), `validate` judges (:mod:`.validation`). Everything an entity does
differently is its :class:`~pipelines.entities.EntityRun`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.admit.acked_state import AckedState
from pipelines.admit.admission import Admission, Screened
from pipelines.admit.ledger_state import LedgerState
from pipelines.admit.memo import MemoFile
from pipelines.entities import EntityRun
from pipelines.extract.feed import Feed
from pipelines.load.batching import Pending
from pipelines.ops.sorted_keys import SpilledKeys
from pipelines.quality.gatekeeper import WINDOW_ROWS, Gatekeeper
from pipelines.quality.row_warnings import RowWarning, WarningTally
from pipelines.run.options import partial_feed
from pipelines.run.parallel import prepare_in_parallel
from pipelines.run.summary import RunSummary
from pipelines.transform.convert import normalize_text
from pipelines.transform.prepared import Prepared, passed_rows
from pipelines.transform.rejects import RejectsWriter
from pipelines.transform.serialize import key_hashes

if TYPE_CHECKING:
    from pipelines.entities import RunContext
    from pipelines.extract.chunks import Chunk

__all__ = [
    "SMALL_FEED_ROWS",
    "acked_state",
    "admission_for",
    "admitted",
    "feed_keys",
    "gatekeeper_for",
    "judge_size",
]


# A feed that ends within this many rows names its keys before the acknowledged state is
# read: only their outcomes are kept (a cron-sized feed against a big ledger).
SMALL_FEED_ROWS = 20_000


def acked_state(ctx: RunContext, *, full: bool = False) -> AckedState | LedgerState:
    """What the target acknowledged before (nothing when ``full``: send everything), read
    from the ledger as the feed is (see LedgerState)."""
    if full:
        return AckedState.empty()
    return LedgerState(ctx.ledger, target_id=ctx.target.id, entity=ctx.job.entity)


def admission_for(
    er: EntityRun,
    state: AckedState,
    rejects: RejectsWriter,
    summary: RunSummary,
    *,
    on_kept=None,
    memo=None,
) -> Admission:
    return Admission(
        key_column=er.job.key,
        state=state,
        rejects=rejects,
        summary=summary,
        unique_columns=er.unique_columns,
        references=er.references,
        on_kept=on_kept,
        memo=memo,
        workdir=work_dir(er.ctx),
    )


def work_dir(ctx: RunContext) -> Path:
    """Where a run's temporary files go (they are deleted as they are made): beside the
    ledger and memo, on storage sized for them, rather than a possibly small /tmp."""
    return ctx.options.state_dir / "tmp"


def admitted(
    er: EntityRun,
    feed: Feed,
    admission: Admission,
    warnings: WarningTally | None = None,
    *,
    warn_unchanged: bool = False,
    run: bool = False,
) -> Iterator[Pending]:
    """The one streaming path: chunks prepared in parallel, screened for duplicates in
    source order on the workers, admitted in order here; yields each chunk's records that
    differ from the acknowledged state.

    With ``warnings``, each chunk's warnings are kept for the records it sends (and, with
    ``warn_unchanged``, for every record that passed its checks: `validate` judges a feed).
    With ``run``, the caller is a run: it leaves the order it read keys in for the next run
    (`plan` and `validate` only read that order, and leave the memo as it was).
    """

    shard, key = er.ctx.options.shard, er.job.key

    def prepare(chunk: Chunk) -> tuple[Prepared, list[RowWarning]]:
        chunk = er.keyed(chunk)
        if shard is not None:  # other shards' rows are not read by this worker
            chunk = shard.take(chunk, key)
        p = er.prepare(chunk)
        return p, (er.warnings(p) if warnings is not None else [])

    def screen(item: tuple[Prepared, list[RowWarning]]) -> tuple[Screened, list[RowWarning]]:
        return admission.screen(item[0]), item[1]

    guide = _order_guide(er, admission, keep=run)
    chunks = er.chunked(_opened(er, feed, admission.state))
    for screened, found in prepare_in_parallel(chunks, prepare, in_order=screen):
        pending = admission.admit(screened)
        if found:
            _keep_warnings(warnings, screened, found, pending, warn_unchanged)
        yield pending
    if guide is not None:
        guide.save()


def _order_guide(er: EntityRun, admission: Admission, *, keep: bool) -> MemoFile | None:
    """Where no memo of source rows is kept (an entity without one, `plan`, `validate`): the
    memo at this job's place read for the order keys came in last time, so that the state is
    found alongside the feed (see LedgerState) rather than key by key. With ``keep``, this
    run's order is recorded there (no tags) for the next run."""
    if admission.memo is not None or not isinstance(admission.state, LedgerState):
        return None
    ctx = er.ctx
    guide = MemoFile.for_scope(
        ctx.options.state_dir,
        job=er.job.job,
        entity=er.job.entity,
        target_id=ctx.target.id,
        log=ctx.options.log,
    )
    guide.load_into(admission.state)
    if not keep:
        return None
    admission.memo = guide
    return guide


def _opened(er: EntityRun, feed: Feed, state: AckedState | LedgerState) -> Iterable[Chunk]:
    """The feed's chunks, once ``state`` has read the ledger (here, on the caller's thread):
    for a small feed (one that ends within SMALL_FEED_ROWS), only its keys' outcomes."""
    if not isinstance(state, LedgerState):
        return feed.chunks
    source = iter(feed.chunks)
    head: list[Chunk] = []
    held, failed = 0, None
    try:
        while held <= SMALL_FEED_ROWS and (chunk := next(source, None)) is not None:
            head.append(chunk)
            held += len(chunk.table)
    except Exception as exc:  # noqa: BLE001 - raised after the chunks read before it
        failed = exc
    small = failed is None and held <= SMALL_FEED_ROWS
    state.open(directory=work_dir(er.ctx), only=_keys_of(head, er.job.key) if small else None)
    return _chained(head, source, failed)


def _chained(head: list[Chunk], source: Iterator[Chunk], failed: Exception | None):
    try:
        while head:
            yield head.pop(0)
        if failed is not None:
            raise failed
        yield from source
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()


def _keys_of(chunks: Iterable[Chunk], key: str) -> np.ndarray | None:
    """Sorted, distinct key hashes of the chunks' rows (None: the key is not a column)."""
    found = [np.empty(0, np.int64)]
    for chunk in chunks:
        if key not in chunk.table.column_names:
            return None
        found.append(key_hashes(normalize_text(chunk.table.column(key).combine_chunks())))
    return np.unique(np.concatenate(found))


def _keep_warnings(
    tally: WarningTally,
    screened: Screened,
    found: list[RowWarning],
    pending: Pending,
    warn_unchanged: bool,
) -> None:
    p = screened.prepared
    if warn_unchanged:
        among = passed_rows(p.failures + screened.duplicates, len(p.chunk.rows))
    else:
        among = np.isin(p.chunk.rows, pending.rows)
    tally.add(found, rows=p.chunk.rows, ids=p.ids, source=p.chunk.source, among=among)


def gatekeeper_for(
    er: EntityRun,
    ctx: RunContext,
    summary: RunSummary,
    rejects: RejectsWriter,
    feed: Feed,
    *,
    window_rows: int = WINDOW_ROWS,
) -> Gatekeeper:
    """The quality gates of a run over ``feed`` (records are judged window by window)."""
    job, options = ctx.job, ctx.options
    return Gatekeeper(
        settings=job.gates,
        expectations=list(job.expectations),
        summary=summary,
        rejects=rejects,
        source=feed.name,
        key_field=er.id_field,
        overrides=options.override_gates,
        window_rows=window_rows,
        log=options.log,
    )


def judge_size(ctx: RunContext, gate: Gatekeeper, feed: Feed) -> None:
    """The row-count gate, before reading: is the export truncated? Compared with the last
    run of the job that read a whole feed. A SQL feed has no size before it is read (and an
    incremental read is SQL); a run given ``--partial`` reads a subset on purpose: their
    size is neither judged nor kept as the next run's measure."""
    if feed.size is None:
        return
    if partial_feed(ctx.options):
        gate.summary.notes.append(PARTIAL_GATE_NOTE)
        return
    gate.summary.source_size = feed.size
    gate.check_size(feed.size, _last_size(ctx))


PARTIAL_GATE_NOTE = "row-count gate skipped: --partial says this run reads a subset of the feed"


def _last_size(ctx: RunContext) -> int | None:
    """The size of the feed the newest finished run of this job and target read whole."""
    job = ctx.job
    for run in ctx.ledger.recent_runs(limit=50, job=job.job):
        finished = run.status in ("succeeded", "partial")
        if finished and run.target_id == ctx.target.id and run.entity == job.entity:
            size = (run.counts or {}).get("source_size")
            if size:
                return size
    return None


def feed_keys(key: str, feed: Feed, directory: Path | None = None) -> SpilledKeys:
    """Every keyed row's key hash, rejected rows included (a record whose row failed a check
    is still in the feed), to be read back sorted and distinct, never held whole (on disk in
    ``directory`` beyond a bound; close it when done). Reads only the key column: about a
    fifth of what preparing the chunks costs."""
    found = SpilledKeys(directory)
    for chunk in feed.chunks:
        keys = key_hashes(normalize_text(chunk.table.column(key).combine_chunks()))
        found.add(np.unique(keys[keys != 0]))  # 0: a missing key
    return found
