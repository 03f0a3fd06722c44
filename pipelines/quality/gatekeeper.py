"""Holding records back until the quality gates have seen them.

Admitted records are released to the loader one window at a time (default 50,000 rows).
Before a window goes out, the user's expectation suite runs on its mapped records (rows it
flags are rejected), and the gates are checked on everything read so far. The first window
is therefore judged before the first request is sent: a broken export (a column of empty
prices, nearly every row rejected) stops the run before it touches the live catalog, and a
small feed is judged whole. A gate that fails later stops the rest from being sent. A job
without a suite holds only its first window, then releases each chunk once the gates allow.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from pipelines.errors import GateFailed
from pipelines.load.batching import Pending
from pipelines.quality.expectations import ROW_ID, ExpectationSpec, run_suite
from pipelines.quality.gates import GateResult, GateSettings, evaluate_gates
from pipelines.run.summary import RunSummary
from pipelines.transform.rejects import Reject, RejectsWriter

__all__ = ["WINDOW_ROWS", "Gatekeeper"]

WINDOW_ROWS = 50_000


class Gatekeeper:
    def __init__(
        self,
        *,
        settings: GateSettings,
        expectations: list[ExpectationSpec],
        summary: RunSummary,
        rejects: RejectsWriter,
        source: str,
        key_field: str = "externalId",
        overrides: frozenset[str] = frozenset(),
        window_rows: int = WINDOW_ROWS,
        log: Callable[[str], None] = print,
    ):
        self.settings, self.expectations, self.summary = settings, expectations, summary
        self.rejects, self.source, self.overrides = rejects, source, overrides
        self.key_field = key_field  # the mapped field holding each record's key
        self.window_rows, self.log = window_rows, log
        self._held: list[Pending] = []
        self._frames: list[pa.Table] = []
        self._window_start = 0
        self._released_once = False
        self._totals: dict[int, list[int]] = {}  # expectation → [unexpected, elements]
        self.results: list[GateResult] = []

    def check_size(self, size: int, last_size: int | None) -> None:
        """The row-count gate, before anything is read: is the export truncated?"""
        results = evaluate_gates(
            rows_read=size,
            rejected=0,
            last_rows_read=last_size,
            settings=self.settings,
            overrides=self.overrides,
        )
        self._enforce([r for r in results if r.name == "row_count"])

    def kept(self, table: pa.Table, rows: np.ndarray) -> None:
        """Mapped records that passed the contract checks (sent or unchanged): GX input."""
        if self.expectations:
            columns = {c: table.column(c) for c in self._columns() if c in table.column_names}
            self._frames.append(pa.table({**columns, ROW_ID: pa.array(rows)}))

    def add(self, pending: Pending) -> list[Pending]:
        """Hold ``pending``; return what may be sent now (a judged window, or nothing).

        Without an expectation suite only the first window is held: after it, each chunk goes
        out as soon as the gates, checked on everything read so far, allow. Holding more would
        only cost memory and leave the connection idle while the next window fills.
        """
        self._held.append(pending)
        streaming = self._released_once and not self.expectations
        if not streaming and self.summary.rows_read - self._window_start < self.window_rows:
            return []
        return self._release()

    def finish(self) -> list[Pending]:
        return self._release()

    def _release(self) -> list[Pending]:
        self._released_once = True
        flagged, failed = self._run_expectations()
        held, self._held = self._held, []
        self._window_start = self.summary.rows_read
        if flagged.size:
            before = sum(len(p) for p in held)
            held = [self._drop(p, flagged) for p in held]
            was_unchanged = flagged.size - (before - sum(len(p) for p in held))
            self.summary.rejected += int(flagged.size)
            self.summary.unchanged -= int(was_unchanged)
        self._held = held  # until the gates pass: a run that stops counts them as skipped
        self._enforce(failed)  # after the counts: the rows flagged are rejected either way
        results = evaluate_gates(
            rows_read=self.summary.rows_read,
            rejected=self.summary.rejected - self.summary.held - self.summary.given_up,
            last_rows_read=None,
            settings=self.settings,
            overrides=self.overrides,
        )
        self._enforce([r for r in results if r.name == "reject_rate"])
        self._held = []
        return [p for p in held if len(p)]

    def _run_expectations(self) -> tuple[np.ndarray, list[GateResult]]:
        """The rows the suite flags, and its failed results (enforced by the caller once the
        flagged rows are counted)."""
        if not self.expectations or not self._frames:
            return np.empty(0, np.int64), []
        frame = pa.concat_tables(self._frames, promote_options="default").to_pandas()
        self._frames = []
        suite = run_suite(frame, self.expectations)
        flagged, results = [], []
        for i, outcome in enumerate(suite.outcomes):
            total = self._totals.setdefault(i, [0, 0])
            total[0] += outcome.unexpected_count
            total[1] += outcome.element_count
            mostly = float(outcome.spec.kwargs.get("mostly", 1.0))
            passed = (
                outcome.success
                if not outcome.row_level
                else (total[0] <= (1 - mostly) * total[1] + 1e-9)
            )
            if outcome.row_level and outcome.unexpected_rows.size:
                flagged.append(outcome.unexpected_rows)
                self._reject_rows(outcome, frame)
            if not passed:
                results.append(
                    GateResult(
                        "expectations",
                        False,
                        f"{outcome.description} failed: {total[0]:,} of {total[1]:,} values "
                        f"unexpected so far",
                        "expectations" in self.overrides,
                    )
                )
        return (np.unique(np.concatenate(flagged)) if flagged else np.empty(0, np.int64)), results

    def _reject_rows(self, outcome, frame) -> None:
        """One reject per flagged row, naming its key (``why`` finds it by the key)."""
        from pandas import isna  # the frame is pandas already (GX's input)

        column = outcome.spec.column
        by_row = frame.set_index(ROW_ID)
        values = by_row[column] if column else None
        keys = by_row[self.key_field] if self.key_field in by_row.columns else None
        for row in np.unique(outcome.unexpected_rows):
            value = None if values is None else values.get(row)
            key = None if keys is None else keys.get(row)
            key = None if key is None or isna(key) else key
            self.rejects.write(
                [
                    Reject(
                        self.source,
                        int(row),
                        None if key is None else str(key),
                        column,
                        None if value is None else str(value),
                        f"expectation:{outcome.spec.expectation}",
                        f"{column or 'row'}: does not meet {outcome.description}",
                    )
                ]
            )

    def _drop(self, pending: Pending, rows: np.ndarray) -> Pending:
        keep = ~np.isin(pending.rows, rows)
        return Pending(
            [i for i, k in zip(pending.external_ids, keep, strict=True) if k],
            pending.rows[keep],
            pending.key_hashes[keep],
            pending.content_hashes[keep],
            [b for b, k in zip(pending.bodies, keep, strict=True) if k],
        )

    def _columns(self) -> set[str]:
        return {self.key_field} | {s.column for s in self.expectations if s.column}

    def _enforce(self, results: list[GateResult]) -> None:
        self.results.extend(results)
        for result in results:
            if result.overridden:
                self.summary.notes.append(f"gate {result.name} overridden: {result.message}")
            elif not result.passed:
                raise GateFailed(f"quality gate {result.name} failed: {result.message}")
