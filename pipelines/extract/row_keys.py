"""The key of a CSV row that could not be parsed (too many or too few fields).

Its reject keeps the row's text; the cell at the key column's place in the header is its
key, so that ``why KEY`` finds the row. A row whose fields shifted before the key column (a
stray delimiter in an earlier cell) gives the cell found there: the reject's value shows the
whole row, as it was. The header is read only when such a row turns up.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from pipelines.errors import SourceError
from pipelines.extract.files import csv_columns
from pipelines.jobs.specs import CsvSource, XlsxSource
from pipelines.transform.rejects import Reject

__all__ = ["RowKeys"]

# A malformed row's text is cut at this length (extract.files keeps rejects small): the last
# cell of a text that long may be cut too, so it is not taken for a key.
_CUT_AT = 500


class RowKeys:
    """Fills the key of rejects of unparsed rows from their text."""

    def __init__(self, header: Callable[[], list[str]] | None, key: str, delimiter: str = ","):
        self._header, self.key, self.delimiter = header, key, delimiter
        self._index: int | None = None
        self._looked = False
        self._lock = threading.Lock()  # workers prepare chunks in parallel

    @classmethod
    def of(cls, source: Any, key: str, opener: Any, *, main: bool = True) -> RowKeys:
        """The reader for ``source`` (a job's source spec) opened by ``opener``; only CSV
        files and Excel sheets have rows that fail to parse (an Excel row's reject keeps its
        cells comma-separated)."""
        if isinstance(source, XlsxSource):

            def sheet_header() -> list[str]:
                # the Excel reader (python-calamine), only for a workbook's unparsed rows
                from pipelines.extract.excel import sheet_columns

                path = opener.path(source, main=main)
                return sheet_columns(path, sheet=source.sheet, header_row=source.header_row)

            return cls(sheet_header, key, ",")
        if not isinstance(source, CsvSource):
            return cls(None, key)

        def header() -> list[str]:
            path = opener.path(source, main=main)
            return csv_columns(path, encoding=source.encoding, delimiter=source.delimiter)

        return cls(header, key, source.delimiter)

    def __call__(self, rejects: Iterable[Reject]) -> tuple[Reject, ...]:
        return tuple(self._keyed(r) for r in rejects)

    def _keyed(self, reject: Reject) -> Reject:
        if reject.external_id is not None or not reject.value:
            return reject
        index = self._key_index()
        if index is None:
            return reject
        try:
            cells = next(csv.reader(io.StringIO(reject.value), delimiter=self.delimiter), [])
        except csv.Error:
            return reject
        readable = len(cells) - (1 if len(reject.value) >= _CUT_AT else 0)
        key = cells[index].strip() if index < readable else ""
        return replace(reject, external_id=key) if key else reject

    def _key_index(self) -> int | None:
        """The key column's place in the header (None: no header, or no such column)."""
        with self._lock:
            if not self._looked and self._header is not None:
                self._looked = True
                try:
                    names = self._header()
                except SourceError:
                    return None  # the file went away: its rejects keep no key; the run goes on
                self._index = names.index(self.key) if self.key in names else None
            return self._index
