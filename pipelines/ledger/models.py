"""What the ledger hands back: frozen snapshots of its rows, and its closed status sets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

__all__ = [
    "ACKED_STATUSES",
    "BATCH_STATUSES",
    "RECORD_STATUSES",
    "RUN_STATUSES",
    "BatchInfo",
    "BatchStatus",
    "RecordEvent",
    "RecordState",
    "RecordStatus",
    "RunInfo",
    "RunStatus",
    "check_status",
]

RunStatus = Literal[
    "running", "succeeded", "partial", "failed", "crashed", "gated", "refused", "interrupted"
]
BatchStatus = Literal["pending", "acked", "failed", "abandoned"]
# The ledger stores a record's status as its position here (ledger/records.py): append only.
# "adopted": `run --adopt` found the org already holding the record as the source has it, so
# it was acknowledged without being sent.
RecordStatus = Literal["created", "updated", "failed", "adopted"]

RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
BATCH_STATUSES: tuple[str, ...] = get_args(BatchStatus)
RECORD_STATUSES: tuple[str, ...] = get_args(RecordStatus)
# Records the API holds in their recorded content; everything else is sent again.
ACKED_STATUSES: tuple[str, ...] = ("created", "updated", "adopted")


def check_status(value: str, allowed: tuple[str, ...], what: str) -> None:
    """Raise ValueError for a status outside ``allowed``: a caller bug, not a data problem."""
    if value not in allowed:
        raise ValueError(f"{what} status must be one of {', '.join(allowed)}; got {value!r}")


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    job: str
    target_id: str
    target_label: str
    entity: str
    source: str
    full: bool
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime | None
    counts: dict[str, int]
    rejects_path: str | None
    elapsed_s: float | None
    pid: int | None
    host: str | None

    @classmethod
    def from_row(cls, row: Any) -> RunInfo:
        fields = dict(row._mapping)
        fields["counts"] = json.loads(fields["counts"]) if fields["counts"] else {}
        fields["full"] = bool(fields["full"])  # MySQL hands back TINYINT 0/1
        return cls(**fields)


@dataclass(frozen=True)
class BatchInfo:
    run_id: int
    batch_id: str
    entity: str
    item_count: int
    byte_count: int
    status: BatchStatus
    http_status: int | None
    attempts: int
    elapsed_ms: float | None
    error: str | None
    sent_at: datetime
    done_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> BatchInfo:
        return cls(**row._mapping)


@dataclass(frozen=True)
class RecordEvent:
    """One outcome of one record in one batch, with the run's job and target label.

    ``event_id`` is the ledger's id of the batch outcome row that holds the outcome. After
    compaction, outcomes of old runs survive only as one ``batch_id='snapshot'`` event per
    record (preceded, when that one failed, by the last acknowledged one), carrying its
    run id and the time of that run's last batch folded into the snapshot.
    """

    event_id: int
    run_id: int
    batch_id: str
    target_id: str
    entity: str
    external_id: str
    content_hash: int
    status: RecordStatus
    message: str | None
    at: datetime
    job: str
    target_label: str


@dataclass(frozen=True)
class RecordState:
    """The latest outcome of a record at a target.

    For a failed record ``content_hash`` is still the last acknowledged content (or the
    attempted one, if the record was never acknowledged).
    """

    target_id: str
    entity: str
    external_id: str
    key_hash: int
    content_hash: int
    status: RecordStatus
    last_error: str | None
    last_run_id: int
    updated_at: datetime
