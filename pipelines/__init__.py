"""nymble-sync: moves ERP and PIM data into Nymble Commerce through its bulk APIs.

The data path, one stage package each: ``extract`` (CSV, Parquet, SQL in chunks) →
``entities`` (products, orders, customers: how rows become records) → ``transform``
(conversions, serialization, rejects) → ``admit`` (diff against the ledger) → ``quality``
(row checks, gates, expectation suites) → ``load`` (batches, pacing, HTTP) → ``run`` (the
one engine behind ``run``, ``plan`` and ``validate``) → ``ledger``. ``jobs`` parses job files,
``ops`` serves operators (doctor, progress, run reports), ``emulator`` is the local API.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.errors import NymbleSyncError
    from pipelines.jobs.job_file import load_job
    from pipelines.ops.reconcile_report import Reconciliation
    from pipelines.run.commands import (
        PlanSettings,
        ReconcileSettings,
        SyncSettings,
        plan,
        reconcile,
        sync,
        validate,
    )
    from pipelines.run.plan import Plan
    from pipelines.run.summary import RunSummary
    from pipelines.run.validation import ValidationReport

__all__ = [
    "NymbleSyncError",
    "Plan",
    "PlanSettings",
    "ReconcileSettings",
    "Reconciliation",
    "RunSummary",
    "SyncSettings",
    "ValidationReport",
    "load_job",
    "plan",
    "reconcile",
    "sync",
    "validate",
]

# httpx's package init imports its command-line client (httpx._main: rich, pygments) whenever
# those happen to be installed, ~80 ms and ~6 MB on every command; nymble-sync never calls it.
# Marked absent before httpx loads, httpx skips it (its own fallback for a missing extra).
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

# The public API, imported on first use: `import pipelines` (and the emulator, which lives
# in it) must not pay for SQLAlchemy, pyarrow and httpx before they are needed.
_HOMES = {
    "NymbleSyncError": "pipelines.errors",
    "Plan": "pipelines.run.plan",
    "PlanSettings": "pipelines.run.commands",
    "ReconcileSettings": "pipelines.run.commands",
    "Reconciliation": "pipelines.ops.reconcile_report",
    "RunSummary": "pipelines.run.summary",
    "SyncSettings": "pipelines.run.commands",
    "ValidationReport": "pipelines.run.validation",
    "load_job": "pipelines.jobs.job_file",
    "plan": "pipelines.run.commands",
    "reconcile": "pipelines.run.commands",
    "sync": "pipelines.run.commands",
    "validate": "pipelines.run.commands",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
