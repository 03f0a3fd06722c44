"""``rate_limit:`` in a job file: the target's request budget, shared by every worker."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RateLimit"]


class RateLimit(BaseModel):
    """``{requests_per_s: R, concurrency: C}``: every worker whose runs share a ledger
    together starts at most R requests a second at this target (``--rate-limit`` overrides
    R), and keeps at most C in flight (each of N shards takes C/N)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_s: float = Field(gt=0, le=100_000)
    concurrency: int | None = Field(default=None, ge=1, le=1024)
