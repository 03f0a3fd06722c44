"""Dataset-level quality gates: checks on a whole feed that stop a run before anything is sent.

Row-level checks reject single rows and let the rest go on; a gate protects the live catalog
from a broken export as a whole: too many rejects, or far fewer rows than the last
successful run of the same job and target (a truncated file). Each gate can be turned off
for one run by name (``--override-gate row_count``) or tuned per job (``gates:``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GATE_NAMES", "GateResult", "GateSettings", "evaluate_gates"]

GATE_NAMES = ("reject_rate", "row_count", "expectations", "mass_deactivate")


class GateSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    max_reject_pct: float = Field(10.0, ge=0, le=100)
    max_row_drop_pct: float = Field(20.0, ge=0, le=100)
    min_rows_for_reject_rate: int = Field(20, ge=0)  # tiny feeds: a few rejects are no trend


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    message: str
    overridden: bool = False

    @property
    def blocks(self) -> bool:
        return not self.passed and not self.overridden


def evaluate_gates(
    *,
    rows_read: int,
    rejected: int,
    last_rows_read: int | None,
    settings: GateSettings,
    overrides: frozenset[str] = frozenset(),
) -> list[GateResult]:
    results = [
        _reject_rate(rows_read, rejected, settings),
        _row_count(rows_read, last_rows_read, settings),
    ]
    return [
        GateResult(r.name, r.passed, r.message, r.name in overrides and not r.passed)
        for r in results
    ]


def _reject_rate(rows: int, rejected: int, settings: GateSettings) -> GateResult:
    pct = 100.0 * rejected / rows if rows else 0.0
    limit = settings.max_reject_pct
    if rows < settings.min_rows_for_reject_rate or pct <= limit:
        return GateResult(
            "reject_rate",
            True,
            f"{rejected:,} of {rows:,} rows rejected ({pct:.1f}%, limit {limit:g}%)",
        )
    return GateResult(
        "reject_rate",
        False,
        f"{rejected:,} of {rows:,} rows were rejected ({pct:.1f}%), above the "
        f"limit of {limit:g}%: fix the export (see the rejects file) or raise "
        "gates.max_reject_pct; --override-gate reject_rate sends the good rows anyway",
    )


def _row_count(rows: int, last: int | None, settings: GateSettings) -> GateResult:
    if not last:
        return GateResult("row_count", True, "no earlier successful run to compare with")
    drop = 100.0 * (last - rows) / last
    limit = settings.max_row_drop_pct
    if drop <= limit:
        return GateResult(
            "row_count", True, f"{rows:,} rows; the last successful run read {last:,}"
        )
    return GateResult(
        "row_count",
        False,
        f"the feed has {rows:,} rows, {drop:.0f}% fewer than the {last:,} of the "
        f"last successful run (limit {limit:g}%): is the export truncated? If the "
        "catalog really shrank, run once with --override-gate row_count",
    )
