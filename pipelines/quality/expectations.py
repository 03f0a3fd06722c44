"""User quality suites: Great Expectations run on the mapped records of a whole feed.

A job file lists expectations by their GX names and arguments::

    expectations:
      - {expectation: expect_column_values_to_not_be_null, column: price, mostly: 0.995}
      - {expectation: expect_column_values_to_be_between, column: price, min_value: 0}
      - {expectation: expect_table_row_count_to_be_between, min_value: 1000}

Column-map expectations (values checked one by one) reject the rows they flag, so one bad
row never blocks the others; an expectation that fails as a whole (fewer than ``mostly`` of
the values pass, or a table-level expectation) is a gate: nothing is sent. GX is imported
only here, only when a job has expectations (it costs seconds), with its progress bars off
and analytics disabled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import pandas

__all__ = ["ExpectationSpec", "ExpectationOutcome", "SuiteResult", "check_specs", "run_suite"]

ROW_ID = "__row__"


class ExpectationSpec(BaseModel):
    """One expectation: its GX name (``expect_…``) and its arguments (``column``, ``mostly``)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    expectation: str = Field(pattern=r"^expect_[a-z0-9_]+$")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")


@dataclass(frozen=True)
class ExpectationOutcome:
    spec: ExpectationSpec
    success: bool
    row_level: bool
    element_count: int
    unexpected_count: int
    unexpected_rows: np.ndarray  # row numbers (as in the rejects report) the expectation flags

    @property
    def description(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.spec.kwargs.items())
        return f"{self.spec.expectation}({args})"


@dataclass(frozen=True)
class SuiteResult:
    outcomes: list[ExpectationOutcome]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


def check_specs(specs: list[ExpectationSpec], fields: set[str]) -> list[str]:
    """Problems with the listed expectations, found before any data is read."""
    classes = _classes()
    problems = []
    for i, spec in enumerate(specs):
        if _camel(spec.expectation) not in classes:
            problems.append(f"expectations[{i}]: GX has no expectation {spec.expectation!r}")
        elif spec.column is not None and spec.column not in fields:
            problems.append(
                f"expectations[{i}]: column {spec.column!r} is not a mapped field "
                f"(expectations check mapped records: {', '.join(sorted(fields))})"
            )
    return problems


def run_suite(frame: pandas.DataFrame, specs: list[ExpectationSpec]) -> SuiteResult:
    """Validate ``frame`` (mapped columns plus ``__row__``, the source row numbers)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation import ColumnMapExpectation

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas("nymble")
        .add_dataframe_asset("records")
        .add_batch_definition_whole_dataframe("all")
    )
    classes = _classes()
    expectations = [classes[_camel(s.expectation)](**s.kwargs) for s in specs]
    suite = context.suites.add(gx.ExpectationSuite(name="job", expectations=expectations))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="job", data=batch, suite=suite)
    )
    result = validation.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]},
    )
    return SuiteResult(
        [
            _outcome(spec, r, isinstance(e, ColumnMapExpectation))
            for spec, e, r in zip(specs, expectations, result.results, strict=True)
        ]
    )


def _outcome(spec: ExpectationSpec, r, row_level: bool) -> ExpectationOutcome:
    index = r.result.get("unexpected_index_list") or []
    rows = np.array([i[ROW_ID] if isinstance(i, dict) else i for i in index], dtype=np.int64)
    return ExpectationOutcome(
        spec,
        bool(r.success),
        row_level,
        int(r.result.get("element_count") or 0),
        int(r.result.get("unexpected_count") or 0),
        rows,
    )


def _classes() -> dict[str, type]:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations.expectations as gxe

    return {name: getattr(gxe, name) for name in dir(gxe) if name.startswith("Expect")}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
