"""The run summary: every row read ends in exactly one bucket, and the sum is checked."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["RunSummary"]


@dataclass
class RunSummary:
    job: str
    entity: str
    target: str
    run_id: int | None = None
    status: str = "running"
    rows_read: int = 0
    rejected: int = 0  # failed a check before sending; see the rejects file
    # Of the rejected: waiting for a reference the target does not hold yet (an order's
    # customer or SKU); sent by the first run after it exists. Not bad data, so not counted
    # by the reject-rate gate.
    held: int = 0
    # Of the rejected: orders the job's hold policy gave up waiting for (rule gave_up_waiting);
    # the user asked for them to go, so the reject-rate gate does not count them either.
    given_up: int = 0
    unchanged: int = 0  # same content as the target last acknowledged: not sent
    created: int = 0
    updated: int = 0
    failed: int = 0  # sent, and refused by the API item by item or after every retry
    skipped: int = 0  # not sent because the run stopped early; the next run sends them
    deactivated: int = 0  # mirror mode: synced products gone from the feed; not source rows
    source_size: int = 0  # line breaks (CSV) or rows (Parquet): the row-count gate's measure
    batches: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    elapsed_s: float = 0.0
    rejects_path: str | None = None
    # Values sent as they are but worth a look, by kind (see quality.row_warnings); in no
    # bucket of the balance. Every flagged row is in the warnings file.
    warnings: list[dict] = field(default_factory=list)
    warnings_path: str | None = None
    notes: list[str] = field(default_factory=list)
    shard: str | None = None  # "K/N" when this worker read only shard K of N (--shard)
    run_group: str | None = None  # the logical run a shard run belongs to (--run-group)

    @property
    def sent(self) -> int:
        return self.created + self.updated

    @property
    def balanced(self) -> bool:
        """True when every row read is accounted for exactly once."""
        return self.rows_read == (
            self.rejected
            + self.unchanged
            + self.created
            + self.updated
            + self.failed
            + self.skipped
        )

    @property
    def rows_per_s(self) -> float:
        return self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def counts(self) -> dict[str, int]:
        return {
            k: getattr(self, k)
            for k in (
                "rows_read",
                "rejected",
                "held",
                "given_up",
                "unchanged",
                "created",
                "updated",
                "failed",
                "skipped",
                "deactivated",
                "batches",
                "requests",
                "retries",
                "throttled",
                "source_size",
            )
        }

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(
            sent=self.sent,
            balanced=self.balanced,
            rows_per_s=round(self.rows_per_s, 1),
            elapsed_s=round(self.elapsed_s, 3),
        )
        return data
