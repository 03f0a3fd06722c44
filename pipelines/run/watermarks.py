"""Incremental reads: where a run starts reading, and the watermark it leaves for the next."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from pipelines.errors import ConfigError
from pipelines.extract.feed import Feed
from pipelines.run.summary import RunSummary

__all__ = ["overlap_start", "start_of", "store_watermark", "watermark_text"]


def start_of(job: Any, ledger: Any, target_id: str, *, full: bool) -> str | None:
    """The stored watermark minus the job's overlap; None reads everything."""
    if job.watermark is None or full:
        return None
    stored = ledger.get_watermark(job=job.job, target_id=target_id)
    return overlap_start(stored, job.watermark.overlap)


def overlap_start(stored: str | None, overlap: timedelta) -> str | None:
    """Where an incremental read starts: the stored watermark minus the overlap."""
    if stored is None or not overlap:
        return stored
    try:
        moment = datetime.fromisoformat(stored)
    except ValueError:
        raise ConfigError(
            f"watermark {stored!r} is not a date or time, so an overlap cannot be taken from "
            "it; set watermark.overlap to 0 or use a date/time column"
        ) from None
    if len(stored) == 10:  # a date: step back whole days, keep the date form
        return (date.fromisoformat(stored) - timedelta(days=overlap.days or 1)).isoformat()
    return (moment - overlap).isoformat(sep=" ")


def store_watermark(
    job: Any, ledger: Any, target_id: str, feed: Feed, summary: RunSummary, hold_back: Any
) -> None:
    """After a run that read everything and lost nothing: the largest watermark read, held
    back to the earliest record still waiting for a reference."""
    if job.watermark is None or summary.status == "failed" or summary.failed or summary.skipped:
        return
    value = feed.max_watermark
    held = watermark_text(hold_back)
    if value is None:
        return
    if held is not None and held < value:
        value = held
        summary.notes.append(f"watermark held at {held}: orders there wait for a reference")
    ledger.set_watermark(job=job.job, target_id=target_id, value=value)


def watermark_text(value) -> str | None:
    """A watermark value as text any backend parses back (as ``sql_source`` stores it)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return None if value is None else str(value)
