"""Opening a ledger's schema: one cheap statement on every run, creation once per database.

Every run reads the schema version with one statement that also names every ledger table
(:func:`read_version`), so an existing ledger costs one round trip: no catalog inspection,
no DDL. Only when that statement fails (a new database, or one from before a table was
added) are tables created, and then under a lock the database itself holds, because several
workers often start at the same instant on a fresh shared ledger: concurrent ``CREATE
TABLE`` of one name fails on PostgreSQL (``pg_type_typname_nsp_index``) and on MariaDB.

- PostgreSQL: a transaction-scoped advisory lock; its DDL is transactional, so a waiter
  sees the whole schema or none of it.
- MySQL/MariaDB: ``GET_LOCK`` on a name made from the database's (DDL commits at once there,
  so the lock, not the transaction, keeps the waiters out).
- SQLite: ``BEGIN IMMEDIATE``, the file's write lock (waiters wait out the busy timeout).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pipelines.errors import LedgerError
from pipelines.ledger.database import display_url
from pipelines.ledger.schema import SCHEMA_VERSION, meta, metadata

__all__ = ["LOCK_TIMEOUT_S", "ensure_schema", "read_version", "recorded_version"]

LOCK_TIMEOUT_S = 60  # creating the tables takes well under a second
# pg_advisory_xact_lock's key: any constant the ledger alone uses (b"nymble_l" as an int64).
_PG_LOCK_KEY = 0x6E796D626C655F6C


def ensure_schema(engine: sa.Engine) -> int:
    """The schema version the database records, creating the ledger's tables first if it
    has none or lacks some (a ledger of this version from before a table was added).

    A database of another version is left as it is, for the caller to refuse.
    """
    found = read_version(engine)
    if found is not None:
        return found
    with _creation_lock(engine) as conn:  # a worker that waited finds the tables made
        found = recorded_version(conn)
        if found is None:
            metadata.create_all(conn, checkfirst=True)
            conn.execute(sa.insert(meta).values(name="schema_version", value=str(SCHEMA_VERSION)))
            return SCHEMA_VERSION
        if found == SCHEMA_VERSION:  # tables added since this ledger was made
            metadata.create_all(conn, checkfirst=True)
        return found


def read_version(engine: sa.Engine) -> int | None:
    """The recorded schema version if every ledger table exists, else None; one statement.

    The version row is read together with an empty select from each other table, so the
    statement fails (and None is returned) if any table is missing.
    """
    try:
        with engine.connect() as conn:
            found = conn.execute(_probe()).scalar()
    except sa.exc.DBAPIError:  # a missing table; any other failure recurs where it is reported
        return None
    return None if found is None else int(found)


def recorded_version(conn: sa.Connection) -> int | None:
    """The schema version the database records; None when it has no ledger."""
    if not sa.inspect(conn).has_table(meta.name):
        return None
    found = conn.scalar(sa.select(meta.c.value).where(meta.c.name == "schema_version"))
    return None if found is None else int(found)


def _probe() -> sa.CompoundSelect:
    version = sa.select(meta.c.value).where(meta.c.name == "schema_version")
    others = [
        sa.select(sa.literal_column("'-'")).select_from(table).where(sa.false())
        for table in metadata.sorted_tables
        if table is not meta
    ]
    return sa.union_all(version, *others)


@contextmanager
def _creation_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that no other process creating this ledger shares."""
    dialect = engine.dialect.name
    if dialect in ("mysql", "mariadb"):
        # The version row must be committed before the lock is released: a waiter that
        # got the lock first and read no row inserted it again (duplicate key).
        with engine.connect() as conn, _named_lock(conn, display_url(engine.url)):
            yield conn
            conn.commit()
        return
    with engine.begin() as conn:
        if dialect == "postgresql":
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'"))
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


@contextmanager
def _named_lock(conn: sa.Connection, where: str) -> Iterator[None]:
    # GET_LOCK names are server-wide: the database's name keeps two ledgers apart.
    name = f"nymble_ledger.{conn.scalar(sa.text('SELECT DATABASE()'))}"[:64]
    wait = {"name": name, "wait": LOCK_TIMEOUT_S}
    if conn.scalar(sa.text("SELECT GET_LOCK(:name, :wait)"), wait) != 1:
        raise LedgerError(
            f"run ledger at {where}: another process has been creating the ledger's tables "
            f"for {LOCK_TIMEOUT_S} s (lock {name!r}); run again once it has finished"
        )
    try:
        yield
    finally:
        conn.scalar(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
