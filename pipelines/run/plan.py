"""`plan`: what a run would do now, for every entity, counted by the same streaming code as
`run` (the engine), with a few updates shown field by field. Nothing is written to the API or
the ledger; only the rejects file is, as a run writes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from pipelines.admit.acked_state import AckedState
from pipelines.entities import EntityRun, SampleDiff
from pipelines.errors import GateFailed
from pipelines.load.api_reader import ApiReader
from pipelines.quality.row_warnings import WarningTally, warning_lines, warnings_path
from pipelines.run.engine import (
    acked_state,
    admission_for,
    admitted,
    gatekeeper_for,
    judge_size,
)
from pipelines.run.options import PARTIAL_FEED_NOTE, partial_feed
from pipelines.run.shards import SHARDED_MIRROR, base_job
from pipelines.run.summary import RunSummary
from pipelines.transform.rejects import RejectsWriter

if TYPE_CHECKING:
    from pipelines.admit.admission import Admission
    from pipelines.entities import RunContext
    from pipelines.load.batching import Pending

__all__ = ["Plan", "plan_job"]

# A plan judges the whole feed at once, as `validate` does: a gate that would stop a run
# mid-way is reported, not obeyed.
_WHOLE_FEED = 10**12


@dataclass
class Plan:
    job: str
    entity: str
    target: str
    basis: Literal["ledger", "api"]  # what "already at the target" was taken from
    rows_read: int = 0
    create: int = 0  # key never acknowledged by this target (or, against the API, not held)
    update: int = 0  # acknowledged, content differs
    unchanged: int = 0
    reject: int = 0  # see the rejects file
    held: int = 0  # of the rejected: waiting for a reference the target lacks (orders)
    given_up: int = 0  # of the rejected: the job's hold policy would give up waiting for them
    deactivate: int = 0  # mirror mode: records this job synced, gone from the feed
    failed_gate: str | None = None  # a run would stop at this quality gate
    rejects_path: str | None = None
    warnings: list[dict] = field(default_factory=list)  # in what a run would send
    warnings_path: str | None = None
    samples: list[SampleDiff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        """The plan as the CLI prints it."""
        lines = [f"plan of {self.job} ({self.entity}) → {self.target} (against the {self.basis})"]
        for label in ("rows_read", "create", "update", "unchanged", "reject", "deactivate"):
            lines.append(f"  {label.replace('_', ' '):<11} {getattr(self, label):>10,}")
            if label == "reject" and self.held:
                waiting = f"{self.held:,} of them wait for a customer or SKU the target lacks"
                lines.append(f"    {waiting}")
            if label == "reject" and self.given_up:
                lines.append(f"    {self.given_up:,} of them the hold policy would give up on")
        if self.failed_gate:
            lines.append(f"  ✗ a run would stop: quality gate {self.failed_gate} fails")
        for diff in self.samples:
            lines.append(f"  ~ {diff.external_id}" + ("" if diff.found else " (not found)"))
            lines += [f"      {k}: {old!r} → {new!r}" for k, (old, new) in diff.changes.items()]
        if self.rejects_path:
            lines.append(f"  rejects: {self.rejects_path}")
        lines += [f"  {line}" for line in warning_lines(self.warnings, self.warnings_path)]
        return "\n".join(lines + [f"  note: {note}" for note in self.notes])


def plan_job(
    er: EntityRun,
    ctx: RunContext,
    *,
    start: str | None = None,
    against_api: bool = False,
    sample: int = 10,
) -> Plan:
    """Count what a run would create, update, leave, reject and deactivate."""
    job, o = ctx.job, ctx.options
    reader = ApiReader(ctx.client)
    feed = er.open_feed()
    state = er.api_state(reader) if against_api else acked_state(ctx)
    result = Plan(job.job, job.entity, ctx.target.label, "api" if against_api else "ledger")
    if start is not None:
        result.notes.append(f"incremental read from {start}")
    summary = RunSummary(job=job.job, entity=job.entity, target=ctx.target.label)
    path = o.rejects_path or o.state_dir / "rejects" / f"{job.job}-plan.csv"
    picked: list[tuple[str, bytes]] = []
    warnings = WarningTally(warnings_path(path))
    if o.shard is not None:
        result.notes.append(f"shard {o.shard.label}: only the records of this shard are read")
    with feed, RejectsWriter(path) as rejects, warnings:
        if o.shard is None or o.shard.index == 0:  # a side source's rejects: once
            rejects.write(er.side_rejects())
        admission = gate = None
        try:
            gate = gatekeeper_for(er, ctx, summary, rejects, feed, window_rows=_WHOLE_FEED)
            judge_size(ctx, gate, feed)
            admission = admission_for(er, state, rejects, summary, on_kept=gate.kept)
            for pending in admitted(er, feed, admission, warnings):
                gate.add(pending)
            for pending in gate.finish():
                _count(result, state, pending, picked, sample)
        except GateFailed as exc:
            results = gate.results if gate is not None else []
            result.failed_gate = next((g.name for g in results if g.blocks), "row_count")
            result.notes.append(f"a run would stop here, sending nothing: {exc}")
    result.rows_read, result.unchanged = summary.rows_read, summary.unchanged
    result.reject, result.held = summary.rejected, summary.held
    result.given_up = summary.given_up
    result.rejects_path = str(path) if rejects.count else None
    result.warnings = warnings.report()
    result.warnings_path = None if warnings.path is None else str(warnings.path)
    result.notes += summary.notes
    if admission is not None:
        result.notes += er.notes(admission)
        _plan_mirror(result, er, ctx, admission)
    result.samples = [er.sample(reader, *pair) for pair in picked]
    return result


def _count(
    result: Plan,
    state: AckedState,
    pending: Pending,
    picked: list[tuple[str, bytes]],
    sample: int,
) -> None:
    known = _known(state, pending.key_hashes)
    result.update += int(known.sum())
    result.create += int((~known).sum())
    for i in np.flatnonzero(known)[: max(0, sample - len(picked))]:
        picked.append((pending.external_ids[i], pending.bodies[i]))


def _plan_mirror(result: Plan, er: EntityRun, ctx: RunContext, admission: Admission) -> None:
    """Count deactivations exactly as a run would decide them, and say if it would refuse."""
    if not er.feed_keys_needed():
        return
    if partial_feed(ctx.options):
        result.notes.append(PARTIAL_FEED_NOTE)
        return
    if ctx.options.shard is not None:
        result.notes.append(SHARDED_MIRROR.format(job=base_job(ctx.job.job)))
        return
    vanished = er.vanished(admission.feed_key_blocks())
    result.deactivate = len(vanished)
    job = ctx.job
    if vanished.exceeds_cap(job) and not ctx.options.allow_mass_deactivate:
        result.notes.append(
            f"a run would be refused: {len(vanished):,} deactivations exceed "
            f"max_deactivate_pct ({job.max_deactivate_pct:g}% of {vanished.owned:,}); "
            "--allow-mass-deactivate overrides"
        )


def _known(state: AckedState, keys: np.ndarray) -> np.ndarray:
    """True where the target acknowledged the key (whatever the content)."""
    return state.locate(keys).found
