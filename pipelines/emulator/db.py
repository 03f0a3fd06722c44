"""The emulator's SQLite database: one connection, one lock, the schema and shared helpers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .page_cursors import PageCursors

__all__ = ["ENTITY_TABLES", "Database", "EmulatorConnection", "fetch_in", "next_number"]

# entity name in stats -> table
ENTITY_TABLES = {
    "products": "products",
    "customers": "customers",
    "orders": "orders",
    "invoices": "invoices",
}
_IN_CHUNK = 499  # plus the org parameter: 500 parameters per statement

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    rid INTEGER PRIMARY KEY, org TEXT NOT NULL, product_id TEXT NOT NULL, external_id TEXT,
    sku_lower TEXT NOT NULL, price REAL, active INTEGER NOT NULL, doc TEXT NOT NULL);
-- ProductStore matches in memory, so no match indexes (their upkeep was about a third of the
-- cost of a bulk write; files from earlier versions lose them here). One index serves the list
-- in its default order (§6.9: by Active, then SKU), so a page seeks (listing.py).
DROP INDEX IF EXISTS products_by_external_id;
DROP INDEX IF EXISTS products_by_sku;
CREATE INDEX IF NOT EXISTS products_listing ON products (org, active, sku_lower);
CREATE TABLE IF NOT EXISTS customers (
    org TEXT NOT NULL, number_lower TEXT NOT NULL, doc TEXT NOT NULL,
    PRIMARY KEY (org, number_lower)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS customers_listing
    ON customers (org, json_extract(doc, '$.companyName') COLLATE NOCASE, number_lower);
CREATE TABLE IF NOT EXISTS orders (
    rid INTEGER PRIMARY KEY, org TEXT NOT NULL, id TEXT NOT NULL, external_id TEXT,
    number_lower TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_id ON orders (org, id);
CREATE INDEX IF NOT EXISTS orders_external_id ON orders (org, external_id);
-- Matching by number and the list's default order (number, then id) in one index.
DROP INDEX IF EXISTS orders_number;
CREATE INDEX IF NOT EXISTS orders_listing ON orders (org, number_lower, id);
CREATE TABLE IF NOT EXISTS invoices (
    org TEXT NOT NULL, id TEXT NOT NULL, order_id TEXT, doc TEXT NOT NULL,
    PRIMARY KEY (org, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS invoices_order ON invoices (org, order_id);
CREATE INDEX IF NOT EXISTS invoices_listing
    ON invoices (org, json_extract(doc, '$.invoiceNumber') COLLATE NOCASE, id);
CREATE TABLE IF NOT EXISTS categories (
    org TEXT NOT NULL, name_lower TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (org, name_lower)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequences (
    org TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (org, name)) WITHOUT ROWID;
"""


class EmulatorConnection(sqlite3.Connection):
    """The connection, carrying where the list pages it served ended (page_cursors.py);
    None pages every list by OFFSET alone."""

    page_cursors: PageCursors | None = None


def _fold(value: Any) -> str | None:
    """SQL `fold(x)`: case-insensitive text form; SQLite's own lower() is ASCII-only."""
    if value is None:
        return None
    return str(value).casefold()


class Database:
    """One SQLite connection shared by all request threads, serialized by a lock."""

    def __init__(self, path: str | None = None, *, remember_pages: bool = True) -> None:
        """``remember_pages=False``: every list page by OFFSET (tests compare the two)."""
        self._conn = sqlite3.connect(
            path or ":memory:",
            check_same_thread=False,
            isolation_level=None,
            factory=EmulatorConnection,
        )
        self._conn.page_cursors = PageCursors() if remember_pages else None
        self._lock = threading.RLock()
        if path:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: keep the indexes hot
        self._conn.create_function("fold", 1, _fold, deterministic=True)
        self._conn.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside BEGIN ... COMMIT (ROLLBACK on error), holding the lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, holding the (re-entrant) lock: also for several transactions in a row."""
        with self._lock:
            yield self._conn

    def reset(self) -> None:
        with self.transaction() as conn:
            for table in (*ENTITY_TABLES.values(), "categories", "sequences"):
                conn.execute(f"DELETE FROM {table}")

    def record_counts(self) -> dict[str, dict[str, int]]:
        """{org: {entity: count}} for every org holding at least one record."""
        counts: dict[str, dict[str, int]] = {}
        with self.reading() as conn:
            for entity, table in ENTITY_TABLES.items():
                sql = f"SELECT org, count(*) FROM {table} GROUP BY org"
                for org, n in conn.execute(sql):
                    counts.setdefault(org, dict.fromkeys(ENTITY_TABLES, 0))[entity] = n
        return counts

    def page_counts(self) -> dict[str, int]:
        """List pages served by seeking past where an earlier page ended, and by OFFSET."""
        cursors = self._conn.page_cursors
        return cursors.counts() if cursors is not None else {"seek": 0, "offset": 0}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def fetch_in(
    conn: sqlite3.Connection, sql: str, org: str, values: Iterable[Any]
) -> Iterator[Sequence[Any]]:
    """Run `sql` (with `org = ?` then `IN ({marks})`) over `values` in chunks of 500 parameters."""
    unique = list(dict.fromkeys(v for v in values if v is not None))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(sql.format(marks=marks), (org, *chunk))


def next_number(conn: sqlite3.Connection, org: str, name: str, count: int = 1) -> int:
    """Reserve `count` values of a per-organization counter; returns the first one.

    Call inside a transaction.
    """
    row = conn.execute(
        "INSERT INTO sequences (org, name, value) VALUES (?, ?, ?) "
        "ON CONFLICT (org, name) DO UPDATE SET value = value + excluded.value RETURNING value",
        (org, name, count),
    ).fetchone()
    return int(row[0]) - count + 1
