"""The library entry points behind the CLI: each builds its resources, runs, cleans up."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from pipelines.jobs.specs import JobConfig, load_job
from pipelines.ledger import Ledger, lock_holder
from pipelines.load.sender import RetryPolicy
from pipelines.run.engine import RunOptions, run_products
from pipelines.run.plan import Plan, plan_products
from pipelines.run.summary import RunSummary

if TYPE_CHECKING:
    from pipelines.ops.doctor import DoctorSettings
from pipelines.run.validation import ValidationReport, validate_feed
from pipelines.targets import Target, default_state_dir, fingerprint, resolve_target

__all__ = [
    "PlanSettings",
    "SyncSettings",
    "validate",
    "client_for",
    "local_target",
    "open_target",
    "run_options",
    "plan",
    "sync",
]

LOCAL_KEY = "local-emulator-key"  # the in-process emulator's own key: not a secret


@dataclass(frozen=True)
class SyncSettings:
    job_path: Path
    target: str = "local"
    source: Path | None = None
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


@dataclass(frozen=True)
class PlanSettings(SyncSettings):
    against_api: bool = False  # compare with what the org holds, not what the ledger says
    sample: int = 10  # updates shown field by field


def sync(settings: SyncSettings) -> RunSummary:
    """Run one job against one target; the summary says what happened to every row."""
    from pipelines.entities.orders.order_job import (
        entity_of,  # the orders package builds on this module
    )

    if entity_of(settings.job_path) in ("orders", "customers"):
        from pipelines.run.entity_run import sync_entity

        return sync_entity(settings)
    job = load_job(settings.job_path)
    with (
        _resources(settings, job) as (target, ledger, client),
        # One run per job and target; taken before run_products finishes interrupted runs.
        ledger.acquire_lock(job=job.job, target_id=target.id, holder=lock_holder()) as lock,
    ):
        if lock.took_over_from:
            settings.log(f"took over the lock of {lock.took_over_from}, which had stopped")
        return run_products(job, target, ledger, client, run_options(settings))


def plan(settings: PlanSettings) -> Plan:
    """What ``sync`` would do now, writing nothing to the API or the ledger."""
    job = load_job(settings.job_path)
    with _resources(settings, job) as (target, ledger, client):
        return plan_products(
            job,
            target,
            ledger,
            client,
            run_options(settings),
            against_api=settings.against_api,
            sample=settings.sample,
        )


def validate(settings: SyncSettings) -> ValidationReport:
    """Read, map and check a feed; judge the gates; send nothing, record no run."""
    job = load_job(settings.job_path)
    with _resources(settings, job) as (target, ledger, _client):
        return validate_feed(job, target, ledger, run_options(settings))


@contextmanager
def _resources(
    settings: SyncSettings, job: JobConfig
) -> Iterator[tuple[Target, Ledger, httpx.Client]]:
    ledger = Ledger.connect(settings.ledger_url or default_ledger_url(settings.state_dir))
    try:
        with (
            open_target(
                settings,
                allow_production=settings.allow_production or job.allow_production,
                warn=settings.log,
            ) as target,
            client_for(
                target, job.batch.timeout_s, settings.concurrency or job.batch.concurrency
            ) as client,
        ):
            yield target, ledger, client
    finally:
        ledger.close()


def run_options(settings: SyncSettings) -> RunOptions:
    """The run's options, as every entity's runner takes them."""
    return RunOptions(
        source=settings.source,
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
    )


def default_ledger_url(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / 'ledger.sqlite').as_posix()}"


@contextmanager
def open_target(
    settings: SyncSettings | DoctorSettings,
    *,
    allow_production: bool,
    warn: Callable[[str], None],
) -> Iterator[Target]:
    """The target a command names: the in-process emulator for ``local``, else a resolved
    remote target (``allow_production`` is the caller's decision: writes need consent)."""
    if settings.target == "local":
        with local_target(settings.state_dir) as target:
            yield target
        return
    yield resolve_target(
        settings.target,
        api_key_file=settings.api_key_file,
        environ=settings.environ,
        allow_production=allow_production,
        warn=warn,
    )


@contextmanager
def local_target(state_dir: Path) -> Iterator[Target]:
    """The emulator, in this process, keeping its data in the state directory between runs."""
    from pipelines.emulator import Emulator, EmulatorSettings  # only the local target needs it

    state_dir.mkdir(parents=True, exist_ok=True)
    db = (state_dir / "emulator.sqlite").resolve()
    settings = EmulatorSettings(api_keys={LOCAL_KEY: "org_local"}, db_path=str(db))
    with Emulator.start(settings) as emulator:
        yield Target("local", emulator.base_url, LOCAL_KEY, fingerprint(f"local:{db}", LOCAL_KEY))


def client_for(target: Target, timeout_s: float, concurrency: int) -> httpx.Client:
    """One pooled keep-alive client for the whole run (CONTRACT §1.2: key in x-api-key)."""
    return httpx.Client(
        base_url=target.base_url,
        headers={"x-api-key": target.api_key, "user-agent": "nymble-sync/0.1"},
        timeout=httpx.Timeout(timeout_s, connect=10.0),
        limits=httpx.Limits(
            max_connections=max(concurrency, 4) * 2,
            max_keepalive_connections=max(concurrency, 4) * 2,
        ),
    )
