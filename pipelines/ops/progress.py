"""How a run reports itself while it works: rich progress bars on a terminal, plain
timestamped lines under cron, or JSON lines for log collectors."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Literal, TextIO

import orjson

from pipelines.run.summary import RunSummary

__all__ = ["LogFormat", "Reporter"]

LogFormat = Literal["auto", "plain", "json"]
_PLAIN_EVERY_S = 10.0  # cron logs: a line every ten seconds is plenty


class Reporter:
    """``log(message)`` for events, ``progress(summary)`` after each chunk, ``close()`` last."""

    def __init__(self, fmt: LogFormat = "auto", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.fmt = ("rich" if tty else "plain") if fmt == "auto" else fmt
        self._last = 0.0
        self._bar = None
        self._task = None

    def log(self, message: str) -> None:
        if self.fmt == "json":
            self._json({"event": "log", "message": message})
        elif self._bar is not None:
            self._bar.console.print(message)
        else:
            print(f"{_stamp()} {message}", file=self.stream, flush=True)

    def progress(self, summary: RunSummary) -> None:
        if self.fmt == "rich":
            self._rich(summary)
            return
        now = time.monotonic()
        if now - self._last < _PLAIN_EVERY_S:
            return
        self._last = now
        if self.fmt == "json":
            self._json(
                {"event": "progress", **summary.counts(), "elapsed_s": round(summary.elapsed_s, 3)}
            )
        else:
            print(f"{_stamp()} {_line(summary)}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def _rich(self, s: RunSummary) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self._bar is None:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f} rows"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(s.job, total=s.source_size or None, rate="")
        self._bar.update(
            self._task,
            completed=s.rows_read,
            rate=f"{s.rows_read / s.elapsed_s:,.0f} rows/s · {_sent(s)}" if s.elapsed_s else "",
        )

    def _json(self, record: dict) -> None:
        line = orjson.dumps({"at": _stamp(), **record}).decode()
        print(line, file=self.stream, flush=True)


def _line(s: RunSummary) -> str:
    rate = f"{s.rows_read / s.elapsed_s:,.0f} rows/s" if s.elapsed_s else ""
    return f"{s.job}: read {s.rows_read:,} ({rate}); {_sent(s)}"


def _sent(s: RunSummary) -> str:
    """The buckets so far, and the rows not in one yet: held for the quality gates, in a
    batch being sent, or waiting for the API's answer."""
    settled = s.rejected + s.unchanged + s.created + s.updated + s.failed + s.skipped
    return (
        f"sent {s.created + s.updated:,}, unchanged {s.unchanged:,}, "
        f"rejected {s.rejected:,}, failed {s.failed:,}, in progress {s.rows_read - settled:,}"
    )


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
