"""The run ledger: what every run, batch and record did, kept in SQLite, PostgreSQL or MySQL.

Only this package talks to the ledger database. Open it with ``Ledger.connect(url)`` (the
CLI) or inject an engine with ``Ledger(engine)``; every database failure is raised as
:class:`~pipelines.errors.LedgerError`.
"""

from pipelines.ledger.ledger import Ledger
from pipelines.ledger.locks import Lock, lock_holder
from pipelines.ledger.models import (
    ACKED_STATUSES,
    BATCH_STATUSES,
    RECORD_STATUSES,
    RUN_STATUSES,
    BatchInfo,
    BatchStatus,
    RecordEvent,
    RecordState,
    RecordStatus,
    RunInfo,
    RunStatus,
)
from pipelines.ledger.schema import SCHEMA_VERSION

__all__ = [
    "ACKED_STATUSES",
    "BATCH_STATUSES",
    "RECORD_STATUSES",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "BatchInfo",
    "BatchStatus",
    "Ledger",
    "Lock",
    "RecordEvent",
    "RecordState",
    "RecordStatus",
    "RunInfo",
    "RunStatus",
    "lock_holder",
]
