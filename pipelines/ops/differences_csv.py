"""The differences file of `reconcile`: one CSV row per difference, written as it is found.

Columns: ``key`` (the record's externalId, or customerNumber), ``kind`` (``differs``,
``missing``, ``gone``, ``unowned``, ...), ``field`` (a dotted path, ``items[1].price``; empty
for a whole record), ``source_value`` and ``target_value`` (exact decimal text, JSON for a
list or object, empty for nothing). Rows are streamed, so the file, not memory, grows with the
number of differences; it exists only when there is one.
"""

from __future__ import annotations

import csv
from contextlib import suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

__all__ = ["DIFFERENCE_COLUMNS", "DifferencesWriter", "cell"]

DIFFERENCE_COLUMNS = ["key", "kind", "field", "source_value", "target_value"]


def cell(value: Any) -> str:
    """A value as the CSV (and the terminal) shows it: decimals as their exact digits."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    return str(value)


class DifferencesWriter:
    def __init__(self, path: Path):
        """A file left at ``path`` by an earlier reconcile goes: a clean one leaves none."""
        self.path = path
        with suppress(FileNotFoundError, PermissionError):
            path.unlink()
        self.count = 0
        self._file = None
        self._writer = None

    def write(self, key: str, kind: str, field: str, source: Any, target: Any) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._file)
            self._writer.writerow(DIFFERENCE_COLUMNS)
        self._writer.writerow([key, kind, field, cell(source), cell(target)])
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> DifferencesWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
