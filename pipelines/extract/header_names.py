"""Header rows as spreadsheets and legacy systems write them, made usable.

- Names padded with spaces (fixed-width exports such as AS/400's ``ITNBR     ``) are trimmed,
  so a job names the column ``ITNBR``.
- A column with no name (the ``;;`` Excel writes after formatted but empty cells) is allowed;
  it is dropped from the rows, and a row with a value under it is rejected (``unnamed_column``)
  rather than losing that value in silence.
- A row with no value at all (``;;;;``, what Excel writes for formatted empty rows) is a blank
  line: skipped and not counted, as a truly blank line is.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.extract.chunks import Chunk
from pipelines.transform.rejects import Reject

__all__ = ["HeaderNames"]


class HeaderNames:
    """A file's header as read (``raw``) and as the job names it (``names``: trimmed, ``""``
    where a column has no name)."""

    def __init__(self, raw: list[str]):
        self.raw = raw
        self.names = [name.strip() for name in raw]
        self.unnamed = [i for i, name in enumerate(self.names) if not name]

    @property
    def usable(self) -> bool:
        """Whether chunks need no change but the blank-row check (the common case)."""
        return self.names == self.raw and not self.unnamed

    def tidy(self, chunk: Chunk) -> Chunk:
        table, rows, rejects = chunk.table, chunk.rows, chunk.rejects
        if not len(table):
            return Chunk(self._renamed(table), rows, chunk.source, rejects)
        keep = ~_blank_rows(table)
        found = []
        for index in self.unnamed:
            column = table.column(index)
            valued = pc.is_valid(column).to_numpy(zero_copy_only=False) & keep
            for i in np.flatnonzero(valued):  # rare: a value under a nameless column
                found.append(self._reject(chunk.source, int(rows[i]), index, column[int(i)]))
            keep &= ~valued
        if not keep.all():
            table, rows = table.filter(pa.array(keep)), rows[keep]
        if found:
            rejects = tuple(sorted(rejects + tuple(found), key=lambda r: r.row or 0))
        return Chunk(self._renamed(table), rows, chunk.source, rejects)

    def _renamed(self, table: pa.Table) -> pa.Table:
        if self.usable:
            return table
        named = [i for i in range(len(self.names)) if self.names[i]]
        return table.select(named).rename_columns([self.names[i] for i in named])

    def _reject(self, source: str, row: int, index: int, value: pa.Scalar) -> Reject:
        text = str(value.as_py())[:500]
        message = (
            f"a value under column {index + 1}, which has no name in the header; name the "
            "column, or leave its cells empty"
        )
        return Reject(source, row, None, f"#{index + 1}", text, "unnamed_column", message)


def _blank_rows(table: pa.Table) -> np.ndarray:
    """Rows where every cell is empty; free when some column has no empty cell (usually the
    key column)."""
    if not table.num_columns or any(column.null_count == 0 for column in table.columns):
        return np.zeros(len(table), dtype=bool)
    blank = np.ones(len(table), dtype=bool)
    for column in table.columns:
        blank &= pc.is_null(column).to_numpy(zero_copy_only=False)
        if not blank.any():
            break
    return blank
