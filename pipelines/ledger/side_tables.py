"""Tables of the ledger that belong to one feature (run groups, rate budgets), kept outside
the versioned schema: made the first time the feature is used, by whichever of several
workers starting at once gets there first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["ensure_table"]


def ensure_table(ledger: Ledger, table: sa.Table) -> None:
    """Create ``table`` in the ledger's database unless it is there.

    Workers started at the same instant race to create it; the loser's ``CREATE TABLE``
    fails (PostgreSQL: ``pg_type_typname_nsp_index``; MariaDB: table exists), and what
    matters is only that the table exists afterwards, so that failure is checked, not shown.
    """
    engine = ledger._engine  # noqa: SLF001 - ledger/ is the code that talks to its database
    try:
        with engine.begin() as conn:
            table.create(conn, checkfirst=True)
    except sa.exc.DBAPIError:
        with ledger._begin() as conn:  # noqa: SLF001 - translated errors if it is not there
            if not sa.inspect(conn).has_table(table.name):
                table.create(conn)  # fails again, with the ledger's own message
