"""`run JOB --finalize --run-group G`: the final step of a sharded run.

Why a flag of ``run`` rather than a command of its own: the step is one more run of the
job, recorded in the ledger and in the group, and everything around a run applies to it
unchanged: ``--target``, the key, ``--ledger``, ``--allow-production``, the mirror cap and
``--allow-mass-deactivate``, ``--json``, ``--notify``, ``--metrics-file``, the exit codes.
A scheduler's final task is the shards' command with ``--finalize`` in place of ``--shard``.

It reads no feed: it checks in the ledger that every shard 0..N-1 of the group finished,
then mirror mode deactivates the records the job owns that no shard read
(:mod:`pipelines.run.shard_mirror`). The job's lock (the unsharded one) is held meanwhile,
as for a plain run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from pipelines.entities import EntityRun, RunContext, entity_plugin
from pipelines.errors import ConfigError
from pipelines.extract.feed import SourceOpener
from pipelines.jobs.job_file import load_job
from pipelines.jobs.specs import JobBase
from pipelines.ledger import Ledger, lock_holder
from pipelines.run.commands import SyncSettings, run_options
from pipelines.run.resources import client_for, default_ledger_url, open_target
from pipelines.run.shard_mirror import group_shards
from pipelines.run.summary import RunSummary
from pipelines.run.sync_run import finalize_job

__all__ = ["finalize"]


def finalize(settings: SyncSettings) -> RunSummary:
    """Finish the sharded run ``settings.run_group`` of the job: refused (exit 4, recorded)
    unless every shard finished; then deactivate what none of them read (mirror mode)."""
    _check_options(settings)
    job = load_job(settings.job_path)
    with _context(settings, job) as (er, ctx):
        shards = group_shards(ctx.ledger, settings.run_group, job.job, ctx.target.id)
        holder = lock_holder()
        with ctx.ledger.acquire_lock(job=job.job, target_id=ctx.target.id, holder=holder) as lock:
            if lock.took_over_from:
                settings.log(f"took over the lock of {lock.took_over_from}, which had stopped")
            return finalize_job(er, ctx, shards)


def _check_options(settings: SyncSettings) -> None:
    """What --finalize cannot be given, each with the fix (exit 2)."""
    if not settings.run_group:
        raise ConfigError(
            "--finalize finishes a sharded run: give the run group its shards ran with, "
            "--run-group G (or NYMBLE_RUN_GROUP)"
        )
    wrong = [
        ("--shard", settings.shard is not None, "it runs once for the whole group, after it"),
        ("--source", settings.source is not None, "it reads no feed: the shards did"),
        ("--partial", settings.partial, "it reads no feed: the shards did"),
        ("--full", settings.full, "it sends only deactivations"),
        ("--adopt", settings.adopt, "it sends only deactivations"),
    ]
    for option, given, why in wrong:
        if given:
            raise ConfigError(f"--finalize with {option}: leave {option} out ({why})")


@contextmanager
def _context(settings: SyncSettings, job: JobBase) -> Iterator[tuple[EntityRun, RunContext]]:
    """The job bound to the ledger, target and HTTP client; no source is opened (nor any
    SQL engine made): the finalize step reads what the shards recorded."""
    with ExitStack() as stack:
        url = settings.ledger_url or default_ledger_url(settings.state_dir)
        ledger = Ledger.connect(url)
        stack.callback(ledger.close)
        production = settings.allow_production or job.allow_production
        target = stack.enter_context(
            open_target(settings, allow_production=production, warn=settings.log)
        )
        concurrency = settings.concurrency or job.batch.concurrency
        client = stack.enter_context(client_for(target, job.batch.timeout_s, concurrency))
        opener = SourceOpener(log=settings.log)
        ctx = RunContext(job, target, ledger, client, run_options(settings), opener)
        yield entity_plugin(job.entity).bind(job, ctx), ctx
