"""Every error nymble-sync raises on purpose, and the exit code each one means.

    NymbleSyncError                 base; ``exit_code`` says how the CLI ends
    ├── ConfigError                 job file, option or environment is wrong (exit 2)
    │   ├── JobFileError            one or more problems in a job file, all listed at once
    │   └── TargetError             unknown target, production without consent, plain http
    ├── SourceError                 a source cannot be read: names file, row and column (exit 2)
    ├── LedgerError                 the run ledger cannot be opened or written (exit 2)
    ├── AuthError                   the API refused the key: 401/403, never retried (exit 3)
    ├── GateFailed                  a dataset-level quality gate stopped the run (exit 4)
    ├── LockHeld                    another run of the same job and target is running (exit 5)
    └── TransportError              the API stayed unreachable or failing after every retry (exit 6)
        └── RetryableResponse       one 429/5xx answer, or a network error; the loader retries it

Record-level problems (one row rejected, one item failed) are not exceptions: they are
outcomes counted in the run summary and written to the rejects file.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXIT_AUTH",
    "EXIT_CONFIG",
    "EXIT_GATE",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_RECORDS",
    "EXIT_TRANSPORT",
    "AuthError",
    "ConfigError",
    "GateFailed",
    "JobFileError",
    "LedgerError",
    "LockHeld",
    "NymbleSyncError",
    "Problem",
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


class NymbleSyncError(Exception):
    """Base class; ``str(err)`` is a message a user can act on."""

    exit_code = EXIT_CONFIG


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


class AuthError(NymbleSyncError):
    exit_code = EXIT_AUTH

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status  # 401 or 403
        super().__init__(message)


class GateFailed(NymbleSyncError):
    exit_code = EXIT_GATE


class LockHeld(NymbleSyncError):
    exit_code = EXIT_LOCKED


class TransportError(NymbleSyncError):
    exit_code = EXIT_TRANSPORT


class RetryableResponse(TransportError):
    """A 429, a 5xx or a network error: worth another attempt after ``retry_after`` seconds."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)
