"""One page of a list query as SQL: by OFFSET, or by seeking past a remembered page end.

The order is ``sort, key`` both ascending or both descending, where ``key`` (the table's row
identity) is unique per organization, so every row has one position and "the rows after
(sort value, key)" are exactly the rows after that position. SQLite sorts NULL before every
value; the seek conditions below follow that, so a page read by seeking holds the same rows as
the same page read by OFFSET (tests/emulator/test_listing_pages.py compares them).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from .page_cursors import Cursor, QueryPages

__all__ = ["Page"]


@dataclass(frozen=True)
class Page:
    table: str
    key: str  # the key column: unique per organization
    condition: str  # the WHERE clause (org and filters)
    params: tuple[Any, ...]
    sort: str  # the sort expression, with its collation
    descending: bool

    def rows(
        self, conn: sqlite3.Connection, offset: int, size: int, known: QueryPages | None
    ) -> list[tuple[Any, ...]]:
        """(doc, sort value, key) of the rows at ``offset`` .. ``offset + size``."""
        start, cursor = known.start_near(offset, size) if known else (0, None)
        forms = self._seeks(cursor) if cursor is not None else [("", ())]
        direction = "DESC" if self.descending else "ASC"
        for seek, seek_params in forms:
            sql = (
                f"SELECT doc, {self.sort}, {self.key} FROM {self.table} "
                f"WHERE {self.condition}{seek} "
                f"ORDER BY {self.sort} {direction}, {self.key} {direction} LIMIT ? OFFSET ?"
            )
            rows = conn.execute(sql, (*self.params, *seek_params, size, offset - start)).fetchall()
            if len(rows) == size:
                break
        if known is not None and rows:
            known.remember(offset + len(rows), (rows[-1][1], rows[-1][2]))
        return rows

    def _seeks(self, cursor: Cursor) -> list[tuple[str, tuple[Any, ...]]]:
        """Conditions for the rows after ``cursor``: a fast one that seeks with an index on
        the sort (``sort >= v AND (…)``, not ``(sort, key) > (v, k)``), and, where NULLs make
        it hold only a prefix of those rows, the complete one to use when the fast one comes
        back short of a page."""
        value, key = cursor
        s, k = self.sort, self.key
        if not self.descending:  # NULLs first, then values ascending
            if value is None:
                return [
                    (f" AND {s} IS NULL AND {k} > ?", (key,)),
                    (f" AND ({s} IS NOT NULL OR {k} > ?)", (key,)),
                ]
            return [(f" AND {s} >= ? AND ({s} > ? OR {k} > ?)", (value, value, key))]
        if value is None:  # descending: values descending, then NULLs
            return [(f" AND {s} IS NULL AND {k} < ?", (key,))]
        after = f"{s} <= ? AND ({s} < ? OR {k} < ?)"
        return [
            (f" AND {after}", (value, value, key)),
            (f" AND (({after}) OR {s} IS NULL)", (value, value, key)),
        ]
