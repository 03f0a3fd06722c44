"""Running the ledger's hot statements at the driver, without per-row SQLAlchemy work.

At a million records, SQLAlchemy's per-row parameter processing costs more than SQLite
itself spends, and Row objects double the cost of reading. The statements are still
built and compiled by SQLAlchemy Core for the connection's dialect (once per ledger);
only their execution skips the per-row layer, inside the same connection and transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

__all__ = ["DriverStatement", "DriverStatements", "executemany", "fetch_chunks"]

_Convert = Callable[[Any], Any] | None


@dataclass(frozen=True)
class DriverStatement:
    """A compiled statement: SQL in the driver's paramstyle, plus how to bind it.

    Each execution supplies ``row_columns`` per row, as plain str/int/float/None that no
    supported driver converts, and ``fixed_columns`` once, converted through their types.
    """

    sql: str
    row_columns: tuple[str, ...]
    fixed_columns: tuple[str, ...]
    positions: tuple[str, ...] | None  # bind names in order, for positional drivers
    constants: dict[str, Any]  # values compiled into the statement, already converted
    converters: dict[str, _Convert]

    @classmethod
    def compile(
        cls,
        dialect: sa.Dialect,
        stmt: sa.Executable,
        row_columns: Sequence[str] = (),
        fixed_columns: Sequence[str] = (),
    ) -> DriverStatement:
        supplied = (*row_columns, *fixed_columns)
        compiled = stmt.compile(dialect=dialect, column_keys=list(supplied) or None)  # type: ignore[attr-defined]
        # An expanding IN renders its binds only at execution, which this path skips.
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("driver statements cannot use IN (...) lists; use or_(...)")
        converters = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
            if name in compiled.params
        }
        constants = {
            name: _apply(converters[name], value)
            for name, value in compiled.params.items()
            if name not in supplied
        }
        positions = tuple(compiled.positiontup) if compiled.positional else None
        return cls(
            compiled.string,
            tuple(row_columns),
            tuple(fixed_columns),
            positions,
            constants,
            converters,
        )

    def params(self, rows: Sequence[tuple], fixed: Mapping[str, Any] | None = None) -> list[Any]:
        """Each row's parameters, fixed values and constants included, in the driver's shape."""
        given = fixed or {}
        tail = {name: _apply(self.converters[name], given[name]) for name in self.fixed_columns}
        tail |= self.constants
        if self.positions is None:
            return [dict(zip(self.row_columns, row, strict=True), **tail) for row in rows]
        names = [*self.row_columns, *tail]
        pick = _picker([names.index(name) for name in self.positions])
        extra = tuple(tail.values())
        return [pick(row + extra) for row in rows]


def _apply(convert: _Convert, value: Any) -> Any:
    return convert(value) if convert is not None and value is not None else value


def _picker(indices: list[int]) -> Callable[[tuple], tuple]:
    """A fast tuple reorder (``operator.itemgetter`` returns a bare value for one index)."""
    if len(indices) > 1:
        return itemgetter(*indices)
    return lambda row: tuple(row[i] for i in indices)


class DriverStatements:
    """One engine's driver statements, each compiled on first use."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[str, DriverStatement] = {}

    def get(
        self,
        name: str,
        build: Callable[[sa.Dialect], sa.Executable],
        row_columns: Sequence[str],
        fixed_columns: Sequence[str] = (),
    ) -> DriverStatement:
        """The statement ``build`` makes, compiled once under ``name``."""
        if name not in self._compiled:
            stmt = build(self._dialect)
            compiled = DriverStatement.compile(self._dialect, stmt, row_columns, fixed_columns)
            self._compiled[name] = compiled
        return self._compiled[name]


def executemany(
    conn: sa.Connection,
    statement: DriverStatement,
    rows: Sequence[tuple],
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Execute ``statement`` once per row in a single driver ``executemany``."""
    conn.exec_driver_sql(statement.sql, statement.params(rows, fixed))


def fetch_chunks(conn: sa.Connection, stmt: sa.Executable, size: int) -> Iterator[Sequence[Any]]:
    """The result of ``stmt`` in chunks of ``size`` rows, each row a sequence.

    On SQLite the DBAPI cursor is read directly: it streams from the local file already.
    Server drivers need SQLAlchemy's streaming options to avoid buffering every row.
    """
    if conn.dialect.name != "sqlite":
        # On the statement, not the connection: a connection's options would make every
        # later statement in its transaction stream too (and executemany refuses to).
        yield from conn.execute(stmt.execution_options(yield_per=size)).partitions()
        return
    statement = DriverStatement.compile(conn.dialect, stmt)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(statement.sql, statement.params([()])[0])
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()
