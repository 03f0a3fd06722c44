"""How a run ended, whatever ended it: the summary (when the run got that far), a status a
monitor can switch on, the exit code, the error's message and, for a bug, a crash report.

``run_to_outcome`` never raises: every end, from a success to an unexpected exception, becomes
an ``Outcome`` that the CLI prints (``--json`` on every exit), alerts on and writes metrics of.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import EXIT_INTERNAL, EXIT_OK, EXIT_RECORDS, EXIT_SIGINT, NymbleSyncError
from pipelines.redact import scrub
from pipelines.run.commands import SyncSettings, sync
from pipelines.run.summary import RunSummary

__all__ = ["Outcome", "run_to_outcome", "write_crash_report"]


@dataclass
class Outcome:
    job: str
    status: str
    exit_code: int
    summary: RunSummary | None = None
    error: str | None = None
    crash_report: Path | None = None

    def to_dict(self, target: str) -> dict[str, Any]:
        """The JSON summary's schema on every exit: the run's counts when it got that far."""
        base = self.summary.to_dict() if self.summary is not None else _empty(self.job, target)
        base.update(status=self.status, exit_code=self.exit_code, error=self.error)
        base["crash_report"] = str(self.crash_report) if self.crash_report else None
        return base


def run_to_outcome(settings: SyncSettings, *, finalize: bool = False) -> Outcome:
    """Run the job (with ``finalize``, the final step of its sharded run group instead);
    every way it can end is an Outcome, never an exception."""
    job = settings.job_path.stem
    try:
        summary = _finalize(settings) if finalize else sync(settings)
    except NymbleSyncError as exc:
        summary = getattr(exc, "summary", None)
        return Outcome(job, exc.status, exc.exit_code, summary, str(exc))
    except KeyboardInterrupt as exc:  # a second Ctrl-C: no grace period was asked for
        summary = getattr(exc, "summary", None)
        message = "interrupted: run the same command again to finish the work"
        return Outcome(job, "interrupted", EXIT_SIGINT, summary, message)
    except Exception as exc:  # noqa: BLE001 - a bug: reported in one line, never exit 1
        command = f"nymble-sync run {settings.job_path}"
        report = write_crash_report(exc, settings.state_dir, command, settings.environ)
        message = f"internal error ({type(exc).__name__}: {scrub(str(exc), settings.environ)})"
        summary = getattr(exc, "summary", None)
        return Outcome(job, "crashed", EXIT_INTERNAL, summary, message, report)
    code = EXIT_OK if summary.status == "succeeded" else EXIT_RECORDS
    return Outcome(summary.job, summary.status, code, summary)


def _finalize(settings: SyncSettings) -> RunSummary:
    from pipelines.run.finalize import finalize  # only the finalize step loads it

    return finalize(settings)


def _empty(job: str, target: str) -> dict[str, Any]:
    """The summary's fields for a run that never started (its job file or ledger failed)."""
    summary = RunSummary(job=job, entity="", target=target, status="")
    return summary.to_dict() | {"entity": None, "run_id": None}


def write_crash_report(
    exc: BaseException, state_dir: Path, command: str, environ: Mapping[str, str]
) -> Path:
    """The traceback and versions, for a bug report; secrets scrubbed. In the state
    directory when it can be written, else in the temp directory."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = "".join(traceback.format_exception(exc))
    lines = [
        f"nymble-sync crash report, {stamp}",
        f"command: {scrub(command, environ)}",
        f"python {sys.version.split()[0]} on {platform.platform()}",
        "",
        scrub(text, environ),
    ]
    for folder in (state_dir / "crash", Path(tempfile.gettempdir())):
        path = folder / f"crash-{stamp}-{os.getpid()}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines), encoding="utf-8")
            return path
        except OSError:
            continue
    return path
