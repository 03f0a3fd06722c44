"""Warnings: values sent as they are, but worth a look (a SKU unusable in URL paths, an
uncommon unit, an order dated in the future). They reject nothing and count in no bucket of
the row balance.

An entity finds them per prepared chunk (``EntityRun.warnings``) in a ``Failure``'s shape:
a mask over the chunk's rows, the source column, the values, a code and a message. The run
keeps them bounded in memory (a count per kind and the first few examples, for the summary)
and writes every flagged row to a warnings file beside the rejects file, in the same
columns (``rule`` holds the warning's code).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipelines.quality.row_checks import Failure
from pipelines.transform.rejects import Reject, RejectsWriter

__all__ = [
    "EXAMPLES",
    "RowWarning",
    "WarningKind",
    "WarningTally",
    "warning_lines",
    "warnings_path",
]

# A warning has a failure's shape and rejects nothing.
RowWarning = Failure
EXAMPLES = 5  # examples kept per kind for the summary; the file has every row


def warnings_path(rejects_path: Path) -> Path:
    """A run's warnings file, beside its rejects file: ``run1.csv`` → ``run1.warnings.csv``."""
    return rejects_path.with_name(f"{rejects_path.stem}.warnings{rejects_path.suffix or '.csv'}")


@dataclass
class WarningKind:
    """One kind of warning (a code on a column) over a whole run: how many rows, and the
    first few with their row number, key and value."""

    code: str
    column: str | None
    message: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        """The kind in one line, as the terminal summary shows it."""
        where = f"{self.column}: " if self.column else ""
        shown = ", ".join(_example(e) for e in self.examples)
        rest = self.count - len(self.examples)
        more = f" and {rest:,} more" if rest > 0 else ""
        return f"{where}{self.message} [{self.code}]: {self.count:,} row(s), e.g. {shown}{more}"


def _example(example: dict[str, Any]) -> str:
    value = example["value"]
    return f"row {example['row']}" + ("" if value is None else f" ({value!r})")


class WarningTally:
    """The warnings of one run: every flagged row written to ``path`` (created only when
    something is flagged), each kind counted with its first ``EXAMPLES`` rows kept."""

    def __init__(self, path: Path):
        self.file = RejectsWriter(path)
        self.kinds: dict[tuple[str, str | None], WarningKind] = {}

    @property
    def path(self) -> Path | None:
        """The warnings file, once something was written to it."""
        return self.file.path if self.file.count else None

    def add(
        self,
        found: list[RowWarning],
        *,
        rows: np.ndarray,
        ids: pa.Array,
        source: str,
        among: np.ndarray | None = None,
    ) -> None:
        """Count and write ``found`` (masks over a chunk whose spreadsheet rows are ``rows``
        and keys ``ids``), only for the rows of ``among`` when given."""
        lines: list[Reject] = []
        for warning in found:
            flagged = warning.mask if among is None else warning.mask & among
            at = np.flatnonzero(flagged)
            if at.size:
                lines += self._record(warning, at, rows, ids, source)
        self.file.write(sorted(lines, key=lambda line: line.row or 0))  # stable: kinds in order

    def _record(
        self, warning: RowWarning, at: np.ndarray, rows: np.ndarray, ids: pa.Array, source: str
    ) -> list[Reject]:
        key = (warning.rule, warning.column)
        if key not in self.kinds:
            self.kinds[key] = WarningKind(warning.rule, warning.column, warning.message)
        kind = self.kinds[key]
        kind.count += int(at.size)
        taken = pa.array(at)
        keys = ids.take(taken).to_pylist()
        values = warning.values.take(taken).to_pylist() if warning.values is not None else None
        text = f"{warning.column}: {warning.message}" if warning.column else warning.message
        lines = []
        for n, i in enumerate(at.tolist()):
            value = None if values is None or values[n] is None else str(values[n])
            if len(kind.examples) < EXAMPLES:
                kind.examples.append({"row": int(rows[i]), "external_id": keys[n], "value": value})
            lines.append(
                Reject(source, int(rows[i]), keys[n], warning.column, value, warning.rule, text)
            )
        return lines

    def report(self) -> list[dict[str, Any]]:
        """Every kind, most frequent first: the ``warnings`` list of the JSON summaries."""
        return [asdict(k) for k in self._ordered()]

    def _ordered(self) -> list[WarningKind]:
        return sorted(self.kinds.values(), key=lambda k: (-k.count, k.code, k.column or ""))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> WarningTally:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def warning_lines(warnings: list[dict[str, Any]], path: str | None) -> list[str]:
    """The terminal lines of a summary's ``warnings`` (as :meth:`WarningTally.report` gives
    them) and its warnings file."""
    lines = [f"warning: {WarningKind(**w).line()}" for w in warnings]
    if path:
        lines.append(f"warnings: {path} (sent as they are; not rejects)")
    return lines
