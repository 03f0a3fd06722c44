"""The library entry points behind the CLI, one per command, for every entity: each reads the
job file, builds what the run talks to, runs the engine, cleans up."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.entities import EntityRun, RunContext, entity_plugin
from pipelines.errors import ConfigError, NoLedger
from pipelines.extract.feed import SourceOpener
from pipelines.jobs.job_file import load_job
from pipelines.jobs.specs import JobBase, SqlSource
from pipelines.ledger import Ledger, lock_holder
from pipelines.load.sender import RetryPolicy
from pipelines.run.options import RunOptions
from pipelines.run.resources import client_for, default_ledger_url, open_target
from pipelines.run.shards import Shard
from pipelines.run.stopping import StopRequest
from pipelines.run.summary import RunSummary
from pipelines.run.sync_run import run_job
from pipelines.run.watermarks import start_of
from pipelines.targets import default_state_dir

# ``plan`` and ``validate`` import their halves when they run: ``run`` (the one cron calls)
# loads only its own.
if TYPE_CHECKING:
    import sqlalchemy as sa

    from pipelines.admit.acked_state import AckedState
    from pipelines.ops.reconcile_report import Reconciliation
    from pipelines.run.id_map import IdMap
    from pipelines.run.plan import Plan
    from pipelines.run.validation import ValidationReport

__all__ = [
    "IdsSettings",
    "PlanSettings",
    "ReconcileSettings",
    "SyncSettings",
    "ids",
    "plan",
    "reconcile",
    "run_options",
    "sync",
    "validate",
]


@dataclass(frozen=True)
class SyncSettings:
    job_path: Path
    target: str = "local"
    source: Path | None = None
    partial: bool = False  # the source is a subset on purpose: no row-count gate, no mirror
    full: bool = False
    ledger_url: str | None = None
    rejects_path: Path | None = None
    api_key_file: Path | None = None
    allow_production: bool = False
    allow_mass_deactivate: bool = False  # mirror mode may deactivate over max_deactivate_pct
    override_gates: tuple[str, ...] = ()  # quality gates to ignore for this run, by name
    concurrency: int | None = None
    batch_items: int | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    state_dir: Path = field(default_factory=default_state_dir)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    log: Callable[[str], None] = print
    progress: Callable[[RunSummary], None] | None = None
    stop: StopRequest | None = None  # SIGTERM/SIGINT: stop between chunks (see run/stopping)
    baseline: AckedState | None = None  # taken as acknowledged instead of the ledger's state
    shard: Shard | None = None  # --shard K/N: this worker's share; its own job in the ledger
    run_group: str | None = None  # --run-group: the logical run of the shards
    rate_limit: float | None = None  # --rate-limit: requests/s shared by every worker
    adopt: bool = False  # --adopt: what the org already holds as the source has it is not sent


@dataclass(frozen=True)
class PlanSettings(SyncSettings):
    against_api: bool = False  # compare with what the org holds, not what the ledger says
    sample: int = 10  # updates shown field by field


@dataclass(frozen=True)
class ReconcileSettings(SyncSettings):
    differences_path: Path | None = None  # the differences CSV (default: in the state dir)
    fix: bool = False  # send what is missing or differs through a run, then compare again


@dataclass(frozen=True)
class IdsSettings(SyncSettings):
    out: Path = Path("ids.csv")  # .csv, .json or .jsonl


def sync(settings: SyncSettings) -> RunSummary:
    """Run one job of any entity against one target; the summary says what happened to
    every row. With ``adopt``, the org is read first: records it already holds as the
    source has them are recorded as acknowledged (counted unchanged), the rest are sent."""
    job = _sharded(load_job(settings.job_path), settings.shard)
    if settings.adopt:
        if settings.full:
            raise ConfigError(
                "--adopt sends only what the org lacks or holds differently, --full sends "
                "everything: choose one"
            )
        settings = replace(settings, baseline=_adoptable(settings, job))
    with (
        _context(settings, job) as (er, ctx, start),
        # One run per job and target; taken before the run finishes interrupted runs.
        ctx.ledger.acquire_lock(job=job.job, target_id=ctx.target.id, holder=lock_holder()) as lock,
    ):
        if lock.took_over_from:
            settings.log(f"took over the lock of {lock.took_over_from}, which had stopped")
        return run_job(er, ctx, start)


def plan(settings: PlanSettings) -> Plan:
    """What ``sync`` would do now, writing nothing to the API or the ledger."""
    from pipelines.run.plan import plan_job

    job = _sharded(load_job(settings.job_path), settings.shard)
    with _context(settings, job, writes=False) as (er, ctx, start):
        return plan_job(
            er, ctx, start=start, against_api=settings.against_api, sample=settings.sample
        )


def reconcile(settings: ReconcileSettings) -> Reconciliation:
    """Compare the whole source, as ``sync`` reads it, with everything the target holds;
    with ``fix``, send exactly what is missing or differs through a run, then compare again."""
    from pipelines.run.reconcile import reconcile_job

    job = load_job(settings.job_path)
    whole = replace(settings, full=True)  # the watermark is ignored: the whole source
    with _context(whole, job, writes=False) as (er, ctx, _start):
        found = reconcile_job(er, ctx, differences_path=settings.differences_path)
    if not settings.fix or not (found.missing or found.differ):
        return found
    summary = sync(replace(whole, partial=True, baseline=found.baseline))
    with _context(whole, job, writes=False) as (er, ctx, _start):
        again = reconcile_job(er, ctx, differences_path=settings.differences_path)
    again.fix_run = summary.to_dict()
    return again


def _adoptable(settings: SyncSettings, job: JobBase) -> AckedState:
    """The records of the whole source that the org holds with the same content: a
    reconcile without its money and linkage evidence. Its differences CSV lists what the
    run will send."""
    from pipelines.run.reconcile import reconcile_job

    path = settings.state_dir / "adopt" / f"{job.job}-differences.csv"
    with _context(replace(settings, full=True), job, writes=False) as (er, ctx, _start):
        found = reconcile_job(er, ctx, differences_path=path, evidence=False)
    settings.log(
        f"adopt: the org holds {found.target_records:,} {job.entity}; of {found.compared:,} "
        f"source records {found.agree:,} agree, {found.differ:,} differ, {found.missing:,} "
        "are missing: sending those"
        + (f" (listed in {found.differences_path})" if found.differences_path else "")
    )
    return found.baseline


def ids(settings: IdsSettings) -> IdMap:
    """Write source key → Nymble ids for every record this job owns, read from the target."""
    from pipelines.run.id_map import export_ids

    job = load_job(settings.job_path)
    with _context(settings, job, writes=False) as (_er, ctx, _start):
        return export_ids(ctx, settings.out)


def validate(settings: SyncSettings) -> ValidationReport:
    """Read, map and check a feed; judge the gates; send nothing, record no run."""
    from pipelines.run.validation import validate_job

    job = _sharded(load_job(settings.job_path), settings.shard)
    with _context(settings, job, writes=False) as (er, ctx, start):
        return validate_job(er, ctx, start=start)


@contextmanager
def _context(
    settings: SyncSettings, job: JobBase, *, writes: bool = True
) -> Iterator[tuple[EntityRun, RunContext, str | None]]:
    """The job's entity half bound to what it talks to: ledger, target, HTTP client and one
    database engine per ``url_env`` of its SQL sources; all closed on the way out."""
    if settings.source is not None and isinstance(job.source, SqlSource):
        raise ConfigError(
            f"--source {settings.source} replaces a file source, but {job.path} reads SQL "
            f"({job.source.query}); change the query or its params instead"
        )
    with ExitStack() as stack:
        url = settings.ledger_url or default_ledger_url(settings.state_dir)
        ledger = Ledger.connect(url) if writes else _reading(url, stack)
        stack.callback(ledger.close)
        target = stack.enter_context(
            open_target(
                settings,
                allow_production=settings.allow_production or job.allow_production,
                warn=settings.log,
            )
        )
        concurrency = settings.concurrency or job.batch.concurrency
        client = stack.enter_context(client_for(target, job.batch.timeout_s, concurrency))
        engines = _engines(job, settings.environ, stack)
        options = run_options(settings)
        start = start_of(job, ledger, target.id, full=settings.full)
        opener = SourceOpener(
            engines=engines, override=settings.source, watermark_from=start, log=settings.log
        )
        ctx = RunContext(job, target, ledger, client, options, opener)
        yield entity_plugin(job.entity).bind(job, ctx), ctx, start


def _sharded(job: JobBase, shard: Shard | None) -> JobBase:
    """A shard's job is its own job in the ledger (locks, runs, watermarks: per shard)."""
    return job if shard is None else shard.job(job)


def _reading(url: str, stack: ExitStack) -> Ledger:
    """The ledger for a command that only reads (``plan``, ``validate``), opened so that it
    cannot be written; where none exists yet, an empty one in a temporary directory."""
    try:
        return Ledger.connect(url, create=False)
    except NoLedger:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nymble-plan-")))
        return Ledger.connect(default_ledger_url(folder))


def _engines(job: JobBase, environ: Mapping[str, str], stack: ExitStack) -> dict[str, sa.Engine]:
    """One engine per database the job's SQL sources name, disposed of with ``stack``."""
    engines: dict[str, sa.Engine] = {}
    sql_sources = [source for source in job.sources() if isinstance(source, SqlSource)]
    if sql_sources:  # a file job never loads the SQL extractor (or its drivers)
        from pipelines.extract.sql import SqlSourceConfig, make_engine, resolve_url
    for source in sql_sources:
        if source.url_env not in engines:
            config = SqlSourceConfig(url_env=source.url_env, query_file=source.query)
            engine = make_engine(resolve_url(config, environ), env_var=source.url_env)
            engines[source.url_env] = engine
            stack.callback(engine.dispose)
    return engines


def run_options(settings: SyncSettings) -> RunOptions:
    """The run's options, as every entity's runner takes them."""
    return RunOptions(
        source=settings.source,
        partial=settings.partial,
        full=settings.full,
        rejects_path=settings.rejects_path,
        state_dir=settings.state_dir,
        concurrency=settings.concurrency,
        batch_items=settings.batch_items,
        policy=settings.policy,
        allow_mass_deactivate=settings.allow_mass_deactivate,
        override_gates=frozenset(settings.override_gates),
        log=settings.log,
        progress=settings.progress,
        stop=settings.stop,
        baseline=settings.baseline,
        shard=settings.shard,
        run_group=settings.run_group,
        rate_limit=settings.rate_limit,
        adopt=settings.adopt,
    )
