"""Run groups: the shard runs of one logical, sharded run (``--run-group``).

A row per shard run: which group it belongs to, its job (without the shard suffix) and its
shard; and a row per finalize step of the group (``run --finalize``, shard index
``FINALIZE``). ``runs`` uses them to show a sharded run as one logical run with its shards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pipelines.ledger.models import RunInfo
from pipelines.ledger.schema import runs
from pipelines.ledger.side_tables import ensure_table

if TYPE_CHECKING:
    from pipelines.ledger.ledger import Ledger

__all__ = [
    "FINALIZE",
    "FINALIZE_LABEL",
    "ShardRun",
    "base_job",
    "group_run_infos",
    "group_runs",
    "later_runs",
    "record_shard_run",
    "shard_runs",
]

_SUFFIX = re.compile(r"#\d+of\d+$")
FINALIZE = -1  # the shard index a group's finalize step is recorded with
FINALIZE_LABEL = "finalize"  # and how it is shown in place of K/N


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
    def is_finalize(self) -> bool:
        return self.shard_index == FINALIZE

    @property
    def shard(self) -> str:
        """``K/N``, or ``finalize`` for the group's finalize step."""
        return FINALIZE_LABEL if self.is_finalize else f"{self.shard_index}/{self.shard_count}"


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


def group_run_infos(ledger: Ledger, run_group: str, job: str) -> list[tuple[ShardRun, RunInfo]]:
    """The shard runs of ``job`` recorded in ``run_group`` (finalize steps left out), each
    with its run as the ledger knows it, by shard then run."""
    shards = [r for r in group_runs(ledger, run_group) if r.job == job and not r.is_finalize]
    if not shards:
        return []
    query = sa.select(runs).where(runs.c.run_id.in_([r.run_id for r in shards]))
    with ledger._begin() as conn:  # noqa: SLF001
        infos = {row.run_id: RunInfo.from_row(row) for row in conn.execute(query)}
    return [(r, infos[r.run_id]) for r in shards if r.run_id in infos]


def later_runs(ledger: Ledger, job: str, target_id: str, after: int) -> list[RunInfo]:
    """The runs of ``job`` and of its shard jobs (``job#KofN``) at ``target_id`` recorded
    after run ``after``, oldest first."""
    # LIKE's wildcards in a job name match themselves ("/" escapes: MySQL treats "\\" twice)
    pattern = job.replace("/", "//").replace("%", "/%").replace("_", "/_") + "#%"
    r = runs.c
    query = (
        sa.select(runs)
        .where(r.run_id > after, r.target_id == target_id)
        .where(sa.or_(r.job == job, r.job.like(pattern, escape="/")))
        .order_by(r.run_id)
    )
    with ledger._begin() as conn:  # noqa: SLF001
        found = [RunInfo.from_row(row) for row in conn.execute(query)]
    return [run for run in found if base_job(run.job) == job]


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
