"""Every error nymble-sync raises on purpose, and the exit code each one means.

    NymbleSyncError                 base; ``exit_code`` says how the CLI ends, ``status`` how
    │                               the run is reported (the JSON summary, alerts, metrics)
    ├── ConfigError                 job file, option or environment is wrong (exit 2)
    │   ├── JobFileError            one or more problems in a job file, all listed at once
    │   └── TargetError             unknown target, production without consent, plain http
    ├── SourceError                 a source cannot be read: names file, row and column (exit 2)
    ├── LedgerError                 the run ledger cannot be opened or written (exit 2)
    │   └── NoLedger                a command that only reads found no ledger there yet
    ├── AuthError                   the API refused the key: 401/403, never retried (exit 3)
    ├── GateFailed                  a dataset-level quality gate stopped the run (exit 4)
    │   └── Refused                 mirror mode would deactivate too much: nothing sent (exit 4)
    ├── LockHeld                    another run of the same job and target is running (exit 5)
    ├── TransportError              the API stayed unreachable or failing after every retry (exit 6)
    │   └── RetryableResponse       one 429/5xx answer, or a network error; the loader retries it
    └── Interrupted                 SIGINT or SIGTERM stopped the run; run again (exit 130/143)

Anything else that escapes is a bug: the CLI reports it in one line, writes a crash report
and exits 70 (``EXIT_INTERNAL``), never 1, which schedulers treat as success.

Record-level problems (one row rejected, one item failed) are not exceptions: they are
outcomes counted in the run summary and written to the rejects file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXIT_AUTH",
    "EXIT_CONFIG",
    "EXIT_GATE",
    "EXIT_INTERNAL",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_RECORDS",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_TRANSPORT",
    "AuthError",
    "ConfigError",
    "GateFailed",
    "Interrupted",
    "JobFileError",
    "LedgerError",
    "LockHeld",
    "NoLedger",
    "NymbleSyncError",
    "Problem",
    "Refused",
    "RetryableResponse",
    "SourceError",
    "TargetError",
    "TransportError",
]

EXIT_OK = 0
EXIT_RECORDS = 1  # the run finished, but some records were rejected or failed
EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_GATE = 4
EXIT_LOCKED = 5
EXIT_TRANSPORT = 6
EXIT_INTERNAL = 70  # BSD's EX_SOFTWARE: an error nymble-sync did not expect
EXIT_SIGINT = 130  # 128 + the signal's number, as shells report a process it ended
EXIT_SIGTERM = 143


class NymbleSyncError(Exception):
    """Base class; ``str(err)`` is a message a user can act on."""

    exit_code = EXIT_CONFIG
    status = "config_error"


class ConfigError(NymbleSyncError):
    exit_code = EXIT_CONFIG


@dataclass(frozen=True)
class Problem:
    """One mistake in a job file: where it is, what is wrong, how to fix it."""

    key: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.key}: {self.message}"
        return f"{text} ({self.fix})" if self.fix else text


class JobFileError(ConfigError):
    def __init__(self, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{path}: {len(problems)} {noun}:\n{lines}")


class TargetError(ConfigError):
    pass


class SourceError(NymbleSyncError):
    exit_code = EXIT_CONFIG

    def __init__(
        self, message: str, *, source: str, row: int | None = None, column: str | None = None
    ):
        self.source, self.row, self.column = source, row, column
        where = source
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


class LedgerError(NymbleSyncError):
    exit_code = EXIT_CONFIG


class NoLedger(LedgerError):
    """A command that only reads found no ledger at the URL: no run was recorded there."""


class AuthError(NymbleSyncError):
    exit_code = EXIT_AUTH
    status = "auth_failed"

    def __init__(self, message: str, *, http_status: int | None = None):
        self.http_status = http_status  # 401 or 403
        super().__init__(message)


class GateFailed(NymbleSyncError):
    exit_code = EXIT_GATE
    status = "gated"


class Refused(GateFailed):
    status = "refused"


class LockHeld(NymbleSyncError):
    exit_code = EXIT_LOCKED
    status = "locked"


class TransportError(NymbleSyncError):
    exit_code = EXIT_TRANSPORT
    status = "unreachable"


class Interrupted(NymbleSyncError):
    """A signal asked the run to stop; what it had done is recorded, the rest is not lost."""

    status = "interrupted"

    def __init__(self, signal_name: str, exit_code: int):
        self.exit_code = exit_code
        super().__init__(
            f"stopped by {signal_name}: what was sent is recorded; run the same command again "
            "to finish the work"
        )


class RetryableResponse(TransportError):
    """A 429, a 5xx or a network error: worth another attempt after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, http_status: int | None = None, retry_after: float | None = None
    ):
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(message)
