"""The options of one run, as the CLI or a library caller sets them, for every entity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.load.pacing import Pacer
from pipelines.load.sender import RetryPolicy
from pipelines.run.shards import Shard
from pipelines.run.stopping import StopRequest

if TYPE_CHECKING:
    from pipelines.admit.acked_state import AckedState

__all__ = ["PARTIAL_FEED_NOTE", "RunOptions", "partial_feed"]


@dataclass(frozen=True)
class RunOptions:
    source: Path | None = None  # replaces the job's source path for this run
    partial: bool = False  # reads a subset on purpose: no row-count gate, no mirror mode
    full: bool = False  # send everything, even what the target already has
    rejects_path: Path | None = None
    state_dir: Path = Path(".nymble-sync")
    concurrency: int | None = None
    batch_items: int | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    pacer: Pacer | None = None  # share one between runs of the same process to share a budget
    allow_mass_deactivate: bool = False  # mirror mode may exceed max_deactivate_pct
    override_gates: frozenset[str] = frozenset()  # quality gates ignored for this run, by name
    log: Callable[[str], None] = print
    progress: Callable[[Any], None] | None = None  # called with the summary after each chunk
    stop: StopRequest | None = None  # set by SIGTERM/SIGINT: the run stops between chunks
    # Taken as what the target acknowledged, instead of the ledger's state: `reconcile --fix`
    # gives the records that agree, so the run sends exactly the others.
    baseline: AckedState | None = None
    # `run --adopt`: the baseline is what the org already holds as the source has it; those
    # records are recorded in the ledger as acknowledged (adopted), not sent.
    adopt: bool = False
    shard: Shard | None = None  # this worker's share of the feed (``--shard K/N``)
    run_group: str | None = None  # the logical run the shards of one launch belong to
    rate_limit: float | None = None  # requests/s shared by every worker of the ledger


def partial_feed(options: RunOptions) -> bool:
    """Whether this run reads less than the whole feed on purpose (``--partial``), so its
    size proves nothing and absence proves nothing. A replaced source (``--source``, a dated
    export) is a whole feed: every guard applies to it."""
    return options.partial


PARTIAL_FEED_NOTE = (
    "mirror mode skipped: --partial says this run reads a subset of the feed, so nothing was "
    "deactivated"
)
