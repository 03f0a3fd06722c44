"""A run's pacer under the target's shared rate budget (``rate_limit`` / ``--rate-limit``).

The run's own :class:`~pipelines.load.pacing.Pacer` still adapts to this worker's 429s,
latency and rate-limit headers; on top, every request start waits for a token of the budget
that all workers of the ledger share (:mod:`pipelines.ledger.rate_budget`). The hooks are the
pacer's ``acquire`` and ``release``, which every request (retries, single PUTs and paged
reads included) passes through, so no sender changes: a 429 any worker gets is reported to
the budget, which pauses every worker for its ``Retry-After`` and cuts the shared rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.entities import RunContext
    from pipelines.ledger.rate_budget import RateBudget
    from pipelines.load.pacing import Pacer

__all__ = ["BudgetedPacer", "budgeted", "worker_concurrency"]


class BudgetedPacer:
    """``pacer`` whose ``acquire`` also takes a token of ``budget``; anything else the
    sender asks of a pacer is the wrapped pacer's."""

    def __init__(self, pacer: Pacer, budget: RateBudget):
        self._pacer, self.budget = pacer, budget

    def acquire(self) -> None:
        self._pacer.acquire()  # a slot in flight first: a token is never held while queued
        self.budget.take()

    def release(self, *, throttled: bool, latency_s: float, **news: Any) -> None:
        self._pacer.release(throttled=throttled, latency_s=latency_s, **news)
        if throttled:  # every worker slows, not only this one
            self.budget.pushback(news.get("retry_after"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pacer, name)


def rate_limit_of(ctx: RunContext) -> tuple[float | None, int | None]:
    """(requests/s, concurrency) for the target: ``--rate-limit`` wins over the job's."""
    spec = getattr(ctx.job, "rate_limit", None)
    rate = ctx.options.rate_limit or (spec.requests_per_s if spec is not None else None)
    return rate, (spec.concurrency if spec is not None else None)


def worker_concurrency(ctx: RunContext, wanted: int) -> int:
    """Requests in flight for this worker: the job's ``rate_limit.concurrency`` is for the
    target as a whole, so each of N shards takes an equal share of it."""
    _rate, total = rate_limit_of(ctx)
    if total is None:
        return wanted
    shard = ctx.options.shard
    return max(1, min(wanted, total // (shard.count if shard is not None else 1)))


def budgeted(pacer: Pacer, ctx: RunContext) -> Pacer | BudgetedPacer:
    """``pacer`` under the target's shared budget when the run has one."""
    rate, _concurrency = rate_limit_of(ctx)
    if rate is None:
        return pacer
    from pipelines.ledger.rate_budget import RateBudget  # a run with a shared budget only

    return BudgetedPacer(pacer, RateBudget(ctx.ledger, ctx.target.id, rate))
