"""The unit every stage passes on: a bounded slice of a source, its rows numbered as a
spreadsheet numbers them, with the rows of that stretch that could not be parsed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pyarrow as pa

from pipelines.transform.rejects import Reject

__all__ = ["Chunk", "coalesce", "empty_table", "join"]


@dataclass(frozen=True)
class Chunk:
    """One bounded slice of a source.

    ``rows`` holds, per table row, the row number a spreadsheet user sees: for CSV the header is
    row 1 and the first data row is 2; Parquet has no header, so its first row is 1.
    ``rejects`` are rows of this stretch of the file that could not be parsed; they count as read.
    """

    table: pa.Table
    rows: np.ndarray
    source: str
    rejects: tuple[Reject, ...] = ()


def coalesce(chunks: Iterable[Chunk], rows: Callable[[], int]) -> Iterator[Chunk]:
    """Consecutive chunks joined until they hold at least ``rows()`` rows (asked after each
    chunk; a chunk already that big passes alone)."""
    group: list[Chunk] = []
    held = 0
    for chunk in chunks:
        group.append(chunk)
        held += len(chunk.table)
        if held >= rows():
            yield join(group)
            group, held = [], 0
    if group:
        yield join(group)


def join(group: list[Chunk]) -> Chunk:
    """Consecutive chunks of one source as one."""
    if len(group) == 1:
        return group[0]
    return Chunk(
        pa.concat_tables([c.table for c in group]),
        np.concatenate([c.rows for c in group]),
        group[0].source,
        tuple(chain.from_iterable(c.rejects for c in group)),
    )


def empty_table(columns: Iterable[str], **typed: pa.Array) -> pa.Table:
    """A table of no rows: ``columns`` as text, as a source gives them, plus ``typed``. What
    a mapper makes of it is the schema of the records it makes (what the org holds is
    projected onto it)."""
    return pa.table({**{name: pa.array([], pa.string()) for name in columns}, **typed})
