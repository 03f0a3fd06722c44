"""`nymble-sync validate`: read, map and check a feed, judge it by the quality gates, and write
the rejects report, without sending anything or recording a run."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.admit.acked_state import AckedState
from pipelines.entities.products.product_admission import Admission
from pipelines.errors import GateFailed
from pipelines.jobs.specs import JobConfig
from pipelines.ledger import Ledger
from pipelines.quality.gatekeeper import Gatekeeper, source_size
from pipelines.quality.gates import GateResult
from pipelines.run.engine import RunOptions, admitted, load_price_list, open_feed
from pipelines.run.summary import RunSummary
from pipelines.targets import Target
from pipelines.transform.rejects import RejectsWriter

__all__ = ["ValidationReport", "validate_feed"]


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


def validate_feed(
    job: JobConfig, target: Target, ledger: Ledger, options: RunOptions
) -> ValidationReport:
    source, chunks = open_feed(job, options)
    index, list_rejects = load_price_list(job, options)
    summary = RunSummary(job=job.job, entity=job.entity, target=target.label, status="valid")
    report = ValidationReport(summary)
    path = options.rejects_path or options.state_dir / "rejects" / f"{job.job}-validate.csv"
    with RejectsWriter(path) as rejects:
        rejects.write(list_rejects)
        gate = Gatekeeper(
            settings=job.gates,
            expectations=list(job.expectations),
            summary=summary,
            rejects=rejects,
            source=source,
            overrides=options.override_gates,
            window_rows=10**12,
            log=options.log,
        )
        state = AckedState(*ledger.acked_state(target_id=target.id, entity=job.entity))
        admission = Admission(job, state, rejects, summary, on_kept=gate.kept)
        try:
            summary.source_size = source_size(options.source or job.source.path, job.source.type)
            last = ledger.last_successful_run(job=job.job, target_id=target.id, entity=job.entity)
            gate.check_size(
                summary.source_size, (last.counts or {}).get("source_size") if last else None
            )
            for pending in admitted(chunks, job, index, admission):
                gate.add(pending)
            gate.finish()
        except GateFailed as exc:
            summary.status = "gated"
            summary.notes.append(str(exc))
            report.failed_gate = next((g.name for g in gate.results if g.blocks), None)
        report.gates = gate.results
    summary.rejects_path = str(path) if rejects.count else None
    summary.skipped = summary.rows_read - summary.rejected - summary.unchanged
    return report
