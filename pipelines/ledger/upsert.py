"""Insert-or-update in each supported dialect's own syntax.

Each dialect's module is imported when a statement for it is built: a run loads only its
own ledger's dialect (the PostgreSQL and MySQL ones cost ~50 ms to import).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa

__all__ = ["upsert"]


def upsert(dialect: sa.Dialect, table: sa.Table, update: Sequence[str]) -> sa.Insert:
    """An INSERT into ``table`` that, when its primary key exists, sets ``update`` columns
    to the inserted values. Works with executemany: one statement, many parameter sets."""
    if dialect.name in ("mysql", "mariadb"):
        stmt = importlib.import_module("sqlalchemy.dialects.mysql").insert(table)
        # MySQL applies assignments left to right; each only reads the inserted row, so
        # the order cannot leak one column's new value into another.
        return stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in update})
    module = "postgresql" if dialect.name == "postgresql" else "sqlite"
    stmt = importlib.import_module(f"sqlalchemy.dialects.{module}").insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={name: stmt.excluded[name] for name in update},
    )
