"""`validate`: read, map and check a feed of any entity, judge it by the quality gates and
write the rejects report, without sending anything or recording a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.entities import EntityRun
from pipelines.errors import GateFailed
from pipelines.quality.gatekeeper import Gatekeeper
from pipelines.quality.gates import GateResult
from pipelines.quality.row_warnings import WarningTally, warnings_path
from pipelines.run.engine import (
    acked_state,
    admission_for,
    admitted,
    gatekeeper_for,
    judge_size,
)
from pipelines.run.summary import RunSummary
from pipelines.transform.rejects import RejectsWriter

if TYPE_CHECKING:
    from pipelines.entities import RunContext

__all__ = ["ValidationReport", "validate_job"]


@dataclass
class ValidationReport:
    summary: RunSummary
    gates: list[GateResult] = field(default_factory=list)
    failed_gate: str | None = None

    def to_dict(self) -> dict:
        return {
            **self.summary.to_dict(),
            "failed_gate": self.failed_gate,
            "gates": [
                {
                    "name": g.name,
                    "passed": g.passed,
                    "overridden": g.overridden,
                    "message": g.message,
                }
                for g in self.gates
            ],
        }


def validate_job(er: EntityRun, ctx: RunContext, *, start: str | None = None) -> ValidationReport:
    job, o = ctx.job, ctx.options
    summary = RunSummary(job=job.job, entity=job.entity, target=ctx.target.label, status="valid")
    if start is not None:
        summary.notes.append(f"incremental read from {start}")
    report = ValidationReport(summary)
    path = o.rejects_path or o.state_dir / "rejects" / f"{job.job}-validate.csv"
    feed = er.open_feed()
    gate: Gatekeeper | None = None
    warnings = WarningTally(warnings_path(path))
    if o.shard is not None:
        summary.shard = o.shard.label
    with feed, RejectsWriter(path) as rejects, warnings:
        if o.shard is None or o.shard.index == 0:  # a side source's rejects: once
            rejects.write(er.side_rejects())
        try:
            gate = gatekeeper_for(er, ctx, summary, rejects, feed, window_rows=10**12)
            judge_size(ctx, gate, feed)
            admission = admission_for(er, acked_state(ctx), rejects, summary, on_kept=gate.kept)
            for pending in admitted(er, feed, admission, warnings, warn_unchanged=True):
                gate.add(pending)
            gate.finish()
            summary.notes += er.notes(admission)
        except GateFailed as exc:
            summary.status = "gated"
            summary.notes.append(str(exc))
            results = gate.results if gate is not None else []
            report.failed_gate = next((g.name for g in results if g.blocks), "row_count")
        report.gates = gate.results if gate is not None else []
    summary.rejects_path = str(path) if rejects.count else None
    summary.warnings = warnings.report()
    summary.warnings_path = None if warnings.path is None else str(warnings.path)
    summary.skipped = summary.rows_read - summary.rejected - summary.unchanged
    return report
