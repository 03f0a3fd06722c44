"""`run`: one sync of one job, top to bottom, for every entity: read and admit (the engine),
gates, send what changed with bounded concurrency, record every batch and outcome in the
ledger, deactivate what a complete feed lost (mirror mode), store the watermark.

A shard of a mirror-mode job deactivates nothing (the rest of the feed is in other shards):
it records the keys it read, and `run --finalize` (``finalize_job``) deactivates what no
shard of the group read, once every shard finished, sending only the deactivations.

A rerun after a crash needs nothing special: what the target acknowledged is in the ledger,
and everything else is sent again, idempotently by externalId.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipelines.entities import EntityRun
from pipelines.errors import NymbleSyncError
from pipelines.ledger.run_groups import FINALIZE, ShardRun, record_shard_run
from pipelines.ledger.shard_feeds import record_seen_keys
from pipelines.load.pacing import Pacer
from pipelines.ops.memory import return_freed_memory
from pipelines.quality.row_warnings import WarningTally, warnings_path
from pipelines.run.adopted import AdoptedRecords
from pipelines.run.delivery import Delivery, RunScope, open_run
from pipelines.run.engine import (
    admission_for,
    admitted,
    feed_keys,
    gatekeeper_for,
    judge_size,
    work_dir,
)
from pipelines.run.options import PARTIAL_FEED_NOTE, partial_feed
from pipelines.run.shard_mirror import ShareKeys, check_group
from pipelines.run.shards import base_job
from pipelines.run.shared_budget import budgeted, worker_concurrency
from pipelines.run.stopping import StopRequest
from pipelines.run.summary import RunSummary
from pipelines.run.watermarks import store_watermark

if TYPE_CHECKING:
    from pipelines.entities import RunContext
    from pipelines.ledger import RunInfo

__all__ = ["finalize_job", "run_job"]

# How a stopped run is recorded in the ledger; any other error records it as failed.
_RECORDED = ("gated", "refused", "interrupted")
_SHARD_MIRROR = (
    "mirror mode: a shard only records the keys it read; once every shard of the group "
    "finished, `nymble-sync run {job} --finalize --run-group {group}` deactivates what none "
    "of them read"
)


def _stop_note(exc: BaseException) -> str:
    """Why the run stopped, for the summary: the project's own message, or for anything
    else only its kind (its text may quote anything; the crash report has it, scrubbed)."""
    if isinstance(exc, NymbleSyncError):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"stopped by an internal error ({type(exc).__name__}); see the crash report"


def _recorded_status(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, NymbleSyncError):
        return exc.status if exc.status in _RECORDED else "failed"
    return "crashed"


def run_job(er: EntityRun, ctx: RunContext, start: str | None = None) -> RunSummary:
    """Run ``er``'s job against the context's target; ``start`` is the watermark the feed
    was opened from (None: a full read). The summary says what happened to every row; an
    error that stops the run carries it as ``error.summary``."""
    summary = _summary(ctx)
    shard = ctx.options.shard
    if shard is not None:
        summary.shard, summary.run_group = shard.label, ctx.options.run_group
    if start is not None:
        summary.notes.append(f"incremental read from {start}")
    run = _Run(er, ctx, summary)
    with _summary_on_error(summary):
        run.execute()
        er.after_run(summary.run_id, run.admission)
        store_watermark(ctx.job, ctx.ledger, ctx.target.id, run.feed, summary, er.hold_back())
    return summary


def finalize_job(
    er: EntityRun, ctx: RunContext, shards: list[tuple[ShardRun, RunInfo]]
) -> RunSummary:
    """`run --finalize`: the final step of a sharded run (``shards``: its shard runs, all
    of one group). Recorded as a run of the job and of the group; it reads no feed. Refused
    (exit 4) unless every shard finished; then mirror mode deactivates what no shard read."""
    summary = _summary(ctx)
    summary.run_group = shards[-1][0].run_group
    run = _Run(er, ctx, summary, finalizing=shards)
    with _summary_on_error(summary):
        run.execute()
    return summary


def _summary(ctx: RunContext) -> RunSummary:
    job = ctx.job
    return RunSummary(job=job.job, entity=job.entity, target=ctx.target.label)


@contextmanager
def _summary_on_error(summary: RunSummary) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        if summary.run_id is not None:  # a run was recorded: its counts say what it did
            exc.summary = summary  # for the JSON summary, alerts and metrics
        raise


class _Run:
    """The stages of one run, called in order by ``execute``. The send half (batches,
    concurrency, ledger outcomes) is the shared ``Delivery``."""

    def __init__(
        self,
        er: EntityRun,
        ctx: RunContext,
        summary: RunSummary,
        finalizing: list[tuple[ShardRun, RunInfo]] | None = None,
    ):
        self.er, self.ctx, self.summary = er, ctx, summary
        self.finalizing = finalizing  # the group's shard runs: this run is its finalize step
        o = ctx.options
        self.stop = o.stop or StopRequest()
        in_flight = worker_concurrency(ctx, o.concurrency or ctx.job.batch.concurrency)
        pacer = o.pacer or Pacer(in_flight)
        self.sender = er.sender(budgeted(pacer, ctx), self.stop)
        self.admission = self.feed = self.seen = None

    def execute(self) -> None:
        """Open the run in the ledger, decide mirror mode's deactivations (a refusal is a
        recorded run too), stream the feed, send, record how it ended."""
        ctx, o = self.ctx, self.ctx.options
        if self.finalizing is None:
            name = ctx.opener.name(ctx.job.source)
        else:
            name = f"run group {self.summary.run_group}"
        self.scope = open_run(ctx.ledger, ctx.target, self.summary, name, o)
        self._record_shard()
        self.delivery = Delivery(
            self.scope,
            self.sender,
            max_items=o.batch_items or ctx.job.batch.max_items,
            max_bytes=ctx.job.batch.max_bytes,
            stop=self.stop,
        )
        self.warnings = WarningTally(warnings_path(self.scope.rejects.path))
        try:
            if self.finalizing is None:
                self._read_and_send()
            else:
                self._finalize()
            self.summary.status = self._outcome()
        except BaseException as exc:
            self.summary.status = _recorded_status(exc)
            self.summary.notes.append(_stop_note(exc))
            self.stop.halt()  # retries in the sending threads give up their backoff
            self.delivery.stop(self.stop.grace_s)
            self._skip_unsettled()
            raise
        finally:
            if self.admission is not None:
                self.summary.notes.extend(self.er.notes(self.admission))
            self.warnings.close()
            self.summary.warnings = self.warnings.report()
            found = self.warnings.path
            self.summary.warnings_path = None if found is None else str(found)
            self.delivery.close()
            self.scope.finish()
            self.stop.rearm()  # an options.stop shared by runs is ready for the next one

    def _read_and_send(self) -> None:
        o = self.ctx.options
        mirror = self._mirror()
        self.feed = self.er.open_feed()
        with self.feed:
            if self.seen is not None:
                self.feed.chunks = self.seen.watch(self.feed.chunks)
            if o.shard is None or o.shard.index == 0:  # a price list's rejects: once
                self.scope.rejects.write(self.er.side_rejects())
            self._stream(self.scope)
        if mirror is not None:
            self._deactivate(mirror)
        self._save_seen()

    def _finalize(self) -> None:
        """The group's finalize step: every shard finished, then mirror mode over the
        union of what they read (the feed is not read again)."""
        ctx, s = self.ctx, self.summary
        mirrored = self.er.feed_keys_needed()
        group = check_group(
            ctx.ledger, self.finalizing, job_path=str(ctx.job.path), needs_keys=mirrored
        )
        s.notes.extend(group.notes)
        if not mirrored:
            s.notes.append(f"job {s.job!r} has no mirror mode: nothing to deactivate")
            return
        vanished = self.er.vanished(group.keys)
        vanished.check_cap(ctx.job, allow=ctx.options.allow_mass_deactivate)
        self._deactivate(self.er.deactivations(vanished))

    def _skip_unsettled(self) -> None:
        """Rows read but in no bucket when the run stopped (held for the quality gates, or
        admitted a moment before the stop) were not sent: skipped, for the next run."""
        s = self.summary
        settled = s.rejected + s.unchanged + s.created + s.updated + s.failed + s.skipped
        s.skipped += max(0, s.rows_read - settled)

    def _mirror(self):
        """Mirror mode's deactivations, decided before anything is sent: the cap must hold
        first. Two passes, since a scan of the key column costs less than spilling every
        pending body to disk. A shard only notes the keys it reads, for the finalize step."""
        if not self.er.feed_keys_needed():
            return None
        o, job = self.ctx.options, self.ctx.job
        if o.shard is not None:  # other shards' records are not in this feed: not vanished
            if not partial_feed(o):
                self.seen = ShareKeys(job.key, o.shard)
            group = self.summary.run_group  # given, or the default of this run
            self.summary.notes.append(_SHARD_MIRROR.format(job=job.path, group=group))
            return None
        if partial_feed(o):
            self.summary.notes.append(PARTIAL_FEED_NOTE)
            return None
        with self.er.open_feed() as feed:
            keys = feed_keys(job.key, feed, work_dir(self.ctx))
        try:
            vanished = self.er.vanished(keys)  # read in key order, bucket by bucket
        finally:
            keys.close()
        vanished.check_cap(job, allow=o.allow_mass_deactivate)
        return self.er.deactivations(vanished)

    def _save_seen(self) -> None:
        """A shard of a mirror-mode job: the keys of its share (none for ``--partial``,
        which is recorded too: the finalize step says why it cannot count that shard)."""
        o, s = self.ctx.options, self.summary
        if o.shard is None or not self.er.feed_keys_needed():
            return
        where = {"job": s.job, "target_id": self.ctx.target.id}
        if self.seen is None:
            record_seen_keys(self.ctx.ledger, s.run_id, None, **where)
        else:
            self.seen.save(self.ctx.ledger, s.run_id, **where)

    def _record_shard(self) -> None:
        """A shard's run, or a finalize step, joins its group, for ``runs`` to show the
        logical run whole."""
        shard, s = self.ctx.options.shard, self.summary
        if self.finalizing is not None:
            count = self.finalizing[-1][0].shard_count
            row = ShardRun(s.run_id, s.run_group, s.job, FINALIZE, count)
        elif shard is not None:
            s.run_group = self.ctx.options.run_group or f"run-{s.run_id}"
            row = ShardRun(s.run_id, s.run_group, base_job(s.job), shard.index, shard.count)
        else:
            return
        record_shard_run(self.ctx.ledger, row)

    def _stream(self, scope: RunScope) -> None:
        gate = gatekeeper_for(self.er, self.ctx, self.summary, scope.rejects, self.feed)
        judge_size(self.ctx, gate, self.feed)
        o = self.ctx.options
        state = o.baseline if o.baseline is not None else scope.acked_state(o.full)
        memo = self.er.recall(state)
        self.admission = admission_for(
            self.er, state, scope.rejects, self.summary, on_kept=gate.kept, memo=memo
        )
        if o.adopt:
            self.admission.on_unchanged = AdoptedRecords(scope)
        trimmed_at = 0  # rows read when freed memory was last given back
        progress = self.ctx.options.progress
        for pending in admitted(self.er, self.feed, self.admission, self.warnings, run=True):
            self.stop.check()  # between chunks: what was read and not sent is skipped
            released = gate.add(pending)
            self.delivery.send(released)
            if released and self.summary.rows_read - trimmed_at >= gate.window_rows:
                return_freed_memory()  # a window's bodies went out: garbage now
                trimmed_at = self.summary.rows_read
            scope.beat()
            if progress is not None:
                self.summary.elapsed_s = time.perf_counter() - scope.started
                progress(self.summary)
        self.delivery.send(gate.finish())
        self.delivery.finish()
        adopted = self.admission.on_unchanged
        if adopted is not None:
            self.summary.notes.append(
                f"{adopted.count:,} record(s) adopted: the org already held them as the source "
                "has them; recorded as acknowledged, counted unchanged, not sent"
            )
        if memo is not None:
            memo.save(state)

    def _deactivate(self, mirror) -> None:
        """After every feed record is settled: send the deactivations, recorded alike."""
        if mirror.gone:
            self.summary.notes.append(
                f"{len(mirror.gone):,} vanished record(s) are no longer at the target at all "
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
