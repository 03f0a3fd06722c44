"""Where the list pages just served ended, so the next page seeks instead of skipping (§5.4).

Paging by ``LIMIT ? OFFSET ?`` makes SQLite step over every row before the page: reading a
list of n rows page by page costs O(n²). A :class:`PageCursors` remembers, per list query (its
table, filters and sort, not its page size), the sort key of the last row of each page it
served, by that row's position. A request whose page starts where a remembered page ended
(or a few pages after: parallel readers' requests arrive slightly out of order) seeks past
that key and skips only the rest. Everything remembered belongs to one version of the
database: any write (:func:`data_version`) forgets it, so a page read after a write is an
OFFSET page of the new data, exactly as without this cache. The row count of a query is kept
the same way, saving a ``count(*)`` per page.

It lives on the database's connection (``db.EmulatorConnection``), used under its lock.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cursor", "PageCursors", "QueryPages", "data_version"]

Cursor = tuple[Any, Any]  # (sort value, key column value) of a page's last row

_QUERIES = 64  # list queries remembered (least recently used dropped)
_CURSORS = 64  # page ends remembered per query: more than any reader keeps in flight
_LOOK_BACK = 16  # pages before the requested one where a remembered end is looked for


def data_version(conn: sqlite3.Connection) -> tuple[int, int]:
    """Changes on this connection (every INSERT/UPDATE/DELETE row, committed or rolled back)
    and commits by other connections to the same file: equal values, same data."""
    (other,) = conn.execute("PRAGMA data_version").fetchone()
    return conn.total_changes, int(other)


@dataclass
class QueryPages:
    """What is known about one list query at one version of the data."""

    version: tuple[int, int]
    served: Counter[str]  # pages served by "seek" and by "offset" (shared by all queries)
    count: int | None = None
    ends: dict[int, Cursor] = field(default_factory=dict)  # row position after the page -> key

    def start_near(self, offset: int, page_size: int) -> tuple[int, Cursor | None]:
        """The nearest remembered page end at or before ``offset`` (at most ``_LOOK_BACK``
        pages back) and its cursor; (0, None) when there is none."""
        for back in range(_LOOK_BACK + 1):
            position = offset - back * page_size
            if position <= 0:
                break
            cursor = self.ends.get(position)
            if cursor is not None:
                self.served["seek"] += 1
                return position, cursor
        self.served["offset"] += 1
        return 0, None

    def remember(self, position: int, cursor: Cursor) -> None:
        self.ends.pop(position, None)
        self.ends[position] = cursor
        if len(self.ends) > _CURSORS:
            del self.ends[next(iter(self.ends))]


class PageCursors:
    """A bounded map of list queries to what is known about them at the current version."""

    def __init__(self) -> None:
        self._queries: OrderedDict[Hashable, QueryPages] = OrderedDict()
        self.served: Counter[str] = Counter()

    def query(self, shape: Hashable, version: tuple[int, int]) -> QueryPages:
        """The query's entry, emptied when the data changed since it was filled."""
        entry = self._queries.get(shape)
        if entry is None or entry.version != version:
            entry = self._queries[shape] = QueryPages(version, self.served)
        self._queries.move_to_end(shape)
        if len(self._queries) > _QUERIES:
            self._queries.popitem(last=False)
        return entry

    def counts(self) -> dict[str, int]:
        """Pages served so far by seeking past a remembered end, and by OFFSET alone."""
        return {"seek": self.served["seek"], "offset": self.served["offset"]}
