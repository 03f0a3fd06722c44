"""The one engine: the read half shared by `run`, `plan` and `validate`, for every entity.

extract (the entity opens its feed) → prepare (map, check, hash, serialize; worker threads)
→ admit (duplicates, references, change detection; in source order) → quality gates. What
follows differs by command: `run` sends and records (:mod:`.sync_run`), `plan` counts and
samples (:mod:`.plan`), `validate` judges (:mod:`.validation`). Everything an entity does
differently is its :class:`~pipelines.entities.EntityRun`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from pipelines.admit.acked_state import AckedState
from pipelines.admit.admission import Admission, Screened
from pipelines.entities import EntityRun
from pipelines.extract.feed import Feed
from pipelines.load.batching import Pending
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
    "acked_state",
    "admission_for",
    "admitted",
    "feed_keys",
    "gatekeeper_for",
    "judge_size",
]


def acked_state(ctx: RunContext, *, full: bool = False) -> AckedState:
    """What the target acknowledged before (nothing when ``full``: send everything)."""
    if full:
        return AckedState.empty()
    entity = ctx.job.entity
    return AckedState(*ctx.ledger.acked_state(target_id=ctx.target.id, entity=entity))


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
    )


def admitted(
    er: EntityRun,
    feed: Feed,
    admission: Admission,
    warnings: WarningTally | None = None,
    *,
    warn_unchanged: bool = False,
) -> Iterator[Pending]:
    """The one streaming path: chunks prepared in parallel, screened for duplicates in
    source order on the workers, admitted in order here; yields each chunk's records that
    differ from the acknowledged state.

    With ``warnings``, each chunk's warnings are kept for the records it sends (and, with
    ``warn_unchanged``, for every record that passed its checks: `validate` judges a feed).
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

    chunks = er.chunked(feed.chunks)
    for screened, found in prepare_in_parallel(chunks, prepare, in_order=screen):
        pending = admission.admit(screened)
        if found:
            _keep_warnings(warnings, screened, found, pending, warn_unchanged)
        yield pending


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


def feed_keys(key: str, feed: Feed) -> np.ndarray:
    """Sorted, distinct key hashes of every keyed row of the feed, rejected rows included (a
    record whose row failed a check is still in the feed). Reads only the key column: about
    a fifth of what preparing the chunks costs."""
    found = [np.empty(0, np.int64)]
    for chunk in feed.chunks:
        keys = key_hashes(normalize_text(chunk.table.column(key).combine_chunks()))
        found.append(np.unique(keys[keys != 0]))  # 0: a missing key
    return np.unique(np.concatenate(found))
