"""Rejected rows: what was wrong with which row, and the CSV report users open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

__all__ = ["REJECT_COLUMNS", "Reject", "RejectsWriter"]


@dataclass(frozen=True)
class Reject:
    """One row that will not be sent, or one item the API refused.

    ``row`` is the row number as a spreadsheet user counts it (the CSV header is row 1).
    """

    source: str
    row: int | None
    external_id: str | None
    column: str | None
    value: str | None
    rule: str
    message: str


REJECT_COLUMNS = [f.name for f in fields(Reject)]


class RejectsWriter:
    """Appends rejects to one CSV file per run; the file exists only if something was rejected."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._file = None
        self._writer = None

    def write(self, rejects: Iterable[Reject]) -> None:
        for reject in rejects:
            if self._writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("w", newline="", encoding="utf-8")
                self._writer = csv.writer(self._file)
                self._writer.writerow(REJECT_COLUMNS)
            self._writer.writerow(["" if v is None else v for v in astuple(reject)])
            self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
