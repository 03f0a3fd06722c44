"""Run groups: the shard runs of one logical, sharded run (``--run-group``).

A row per shard run: which group it belongs to, its job (without the shard suffix) and its
shard. ``runs`` uses it to show a sharded run as one logical run with its shards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pipelines.ledger.side_tables import ensure_table

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = ["ShardRun", "base_job", "group_runs", "record_shard_run", "shard_runs"]

_SUFFIX = re.compile(r"#\d+of\d+$")


def base_job(name: str) -> str:
    """The job a shard's ledger name belongs to: ``products#2of4`` → ``products``."""
    return _SUFFIX.sub("", name)


_meta = sa.MetaData()
run_groups = sa.Table(
    "run_groups",
    _meta,
    sa.Column("run_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("run_group", sa.String(200), nullable=False, index=True),
    sa.Column("job", sa.String(200), nullable=False),
    sa.Column("shard_index", sa.Integer, nullable=False),
    sa.Column("shard_count", sa.Integer, nullable=False),
)


@dataclass(frozen=True)
class ShardRun:
    run_id: int
    run_group: str
    job: str
    shard_index: int
    shard_count: int

    @property
    def shard(self) -> str:
        return f"{self.shard_index}/{self.shard_count}"


def record_shard_run(ledger: Ledger, run: ShardRun) -> None:
    """Remember that ``run.run_id`` is shard ``run.shard`` of ``run.run_group``."""
    ensure_table(ledger, run_groups)
    with ledger._begin() as conn:  # noqa: SLF001 - ledger/ talks to its database
        conn.execute(sa.insert(run_groups).values(**_values(run)))


def shard_runs(ledger: Ledger, run_ids: list[int]) -> dict[int, ShardRun]:
    """The group and shard of each of ``run_ids`` that ran as a shard (the others: absent)."""
    if not run_ids or not _present(ledger):
        return {}
    query = sa.select(run_groups).where(run_groups.c.run_id.in_(run_ids))
    with ledger._begin() as conn:  # noqa: SLF001
        return {r.run_id: ShardRun(**r._mapping) for r in conn.execute(query)}


def group_runs(ledger: Ledger, run_group: str) -> list[ShardRun]:
    """Every shard run recorded in ``run_group``, by shard then run."""
    if not _present(ledger):
        return []
    t = run_groups
    query = sa.select(t).where(t.c.run_group == run_group).order_by(t.c.shard_index, t.c.run_id)
    with ledger._begin() as conn:  # noqa: SLF001
        return [ShardRun(**r._mapping) for r in conn.execute(query)]


def _present(ledger: Ledger) -> bool:
    with ledger._begin() as conn:  # noqa: SLF001
        return sa.inspect(conn).has_table(run_groups.name)


def _values(run: ShardRun) -> dict:
    return {
        "run_id": run.run_id,
        "run_group": run.run_group,
        "job": run.job,
        "shard_index": run.shard_index,
        "shard_count": run.shard_count,
    }
