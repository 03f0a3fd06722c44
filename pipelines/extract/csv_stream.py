"""Streaming a CSV file through Arrow in small blocks, every row numbered as a spreadsheet
numbers it, with the records too long for a block read on their own.

Arrow's streaming reader cannot parse a record longer than its block ("straddling object
straddles two block boundaries"). ``stream`` then finds where that record starts and ends in
the raw bytes (``record_bounds``), reads it with the records after it in one block that fits
them, and starts a new stream after them: the block grows for that stretch only, and memory
stays bounded. Row numbers and the order of chunks are kept throughout.

Arrow drops the LF of a CR LF that two of its reads split, even inside a quoted value
(apache/arrow#51368, open in pyarrow 26): ``"a\r\nb"`` arrives as ``"a\rb"``. A UTF-8 file
is read natively unless one of its block seams falls there (checked beforehand, ~1 ms per
250 MB); otherwise, and for every other encoding, Arrow reads through ``_WholeCrLf``, which
never ends a read on a CR and decodes to UTF-8 (as fast as Arrow's own transcoder).

Arrow's errors pass through untouched: ``extract.files`` translates them, with
``MalformedRows.offset`` to turn the row numbers of the current stream into the file's.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.errors import SourceError
from pipelines.extract.charsets import UTF8_BOM
from pipelines.extract.chunks import Chunk, empty_table, join
from pipelines.extract.record_bounds import RecordBounds, byte_aligned
from pipelines.transform.rejects import Reject

__all__ = [
    "STRADDLING",
    "CsvRead",
    "MalformedRows",
    "convert_options",
    "parse_options",
    "read_options",
    "regroup",
    "stream",
]

STRADDLING = "straddling object straddles two block boundaries"
_REJECT_TEXT_LIMIT = 500  # a runaway malformed row (e.g. an unclosed quote) must not bloat rejects
# A long record is read with the records after it, up to this many bytes in all: reopening
# Arrow's stream costs 3-9 ms, so a file dense with long records must not reopen for each.
_STRETCH_BYTES = 8 << 20


def read_options(arrow_encoding: str, block_bytes: int) -> pacsv.ReadOptions:
    # use_threads=False: only the serial reader tells the invalid-row handler the record number
    # (it passes None otherwise); on 1M rows it was no slower than the threaded one.
    return pacsv.ReadOptions(block_size=block_bytes, encoding=arrow_encoding, use_threads=False)


def parse_options(delimiter: str, handler) -> pacsv.ParseOptions:
    """Raises ``ValueError`` for a delimiter Arrow cannot use."""
    if len(delimiter) != 1 or not delimiter.isascii():
        raise ValueError(
            f"delimiter {delimiter!r} is not one ASCII character; use e.g. ',', ';', '|' or tab"
        )
    if delimiter in '"\r\n':
        raise ValueError(f"delimiter {delimiter!r} cannot be a quote or a line break")
    return pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=handler
    )


def convert_options(names: list[str]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )


class MalformedRows:
    """pyarrow's invalid-row handler: skips the row and remembers it as a reject.

    It must never raise: pyarrow would only print the exception and fail the whole read.
    """

    def __init__(self, source: str):
        self.source = source
        self.pending: list[Reject] = []  # in file order: the serial reader parses in order
        # pyarrow numbers rows from where its stream starts: add this for the file's numbers
        self.offset = 0

    def __call__(self, row) -> str:
        text = row.text if len(row.text) <= _REJECT_TEXT_LIMIT else row.text[:_REJECT_TEXT_LIMIT]
        message = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        number = None if row.number is None else row.number + self.offset
        reject = Reject(self.source, number, None, None, text, "malformed_row", message)
        self.pending.append(reject)
        return "skip"

    def forget_from(self, row: int) -> None:
        """Drop the rejects from ``row`` on: that stretch of the file is read again."""
        self.pending = [reject for reject in self.pending if reject.row < row]

    def take_through(self, last_row: int) -> tuple[Reject, ...]:
        """Remove and return the rejects at or before ``last_row``."""
        count = sum(1 for reject in self.pending if reject.row <= last_row)
        taken, self.pending = self.pending[:count], self.pending[count:]
        return tuple(taken)

    def first_free(self, row: int) -> int:
        """The first row number from ``row`` on that is not a skipped row."""
        skipped = {reject.row for reject in self.pending}
        while row in skipped:
            row += 1
        return row


@dataclass
class CsvRead:
    """One read of a CSV file, its header known: what every stretch of it is read with."""

    path: Path
    source: str
    names: list[str]
    encoding: str  # Python's codec name
    arrow_encoding: str
    delimiter: str
    read_bytes: int  # Arrow's block
    max_row_bytes: int  # a longer record is rejected alone
    log: Callable[[str], None] | None = None
    malformed: MalformedRows = field(init=False)

    def __post_init__(self):
        self.malformed = MalformedRows(self.source)

    def options(self, *, block_bytes: int, arrow_encoding: str, headless: bool) -> dict:
        read = read_options(arrow_encoding, block_bytes)
        if headless:  # a stream that starts after the header: the names are known
            read.column_names = self.names
        return {
            "read_options": read,
            "parse_options": parse_options(self.delimiter, self.malformed),
            "convert_options": convert_options(self.names),
        }

    def note(self, message: str) -> None:
        if self.log is not None:
            self.log(f"{self.source}: {message}")


@dataclass
class _Cursor:
    """Where Arrow's current stream starts, and how far the rows have been handed on."""

    offset: int | None  # its first byte; None: the top of the file, header included
    first_row: int  # the row number of its first record (the header is row 1)
    next_row: int  # the first row not yet handed on, as a row or a reject


def stream(csv: CsvRead) -> Iterator[Chunk]:
    """The file's chunks in order, one per Arrow block, and one per stretch of long records.

    Arrow streams the file; where a record is longer than a block, Arrow stops: the stretch
    from that record on is read on its own (``_long_stretch``), and a new stream starts after
    it. Arrow's errors, that one included, are for the caller to translate."""
    cursor = _Cursor(offset=None, first_row=1, next_row=2)
    with csv.path.open("rb") as raw:
        bounds = RecordBounds(raw, csv.delimiter)
        size = csv.path.stat().st_size
        while cursor.offset is None or cursor.offset < size:
            try:
                yield from _number_batches(_arrow_stream(csv, cursor), csv, cursor)
                return
            except pa.ArrowInvalid as exc:  # the one Arrow error handled, not translated, here
                if STRADDLING not in str(exc):
                    raise
            yield from _long_stretch(csv, bounds, cursor)


def regroup(chunks: Iterator[Chunk], size: int) -> Iterator[Chunk]:
    """Consecutive chunks joined ``size`` at a time: Arrow reads small blocks (its read-ahead
    holds ~36 of them), the pipeline works on big ones (fewer calls per row)."""
    while group := list(islice(chunks, size)):
        yield join(group)


def _arrow_stream(csv: CsvRead, cursor: _Cursor) -> Iterator[pa.RecordBatch]:
    """Arrow's streaming reader from the cursor's offset, in blocks of ``csv.read_bytes``."""
    csv.malformed.offset = cursor.first_row - 1
    start, headless = cursor.offset or 0, cursor.offset is not None
    native = csv.arrow_encoding == "utf8" and not _splits_crlf(csv.path, start, csv.read_bytes)
    options = csv.options(block_bytes=csv.read_bytes, arrow_encoding="utf8", headless=headless)
    if native and not headless:
        yield from pacsv.open_csv(csv.path, **options)
    elif native:
        with pa.OSFile(str(csv.path)) as file:
            file.seek(start)
            yield from pacsv.open_csv(file, **options)
    else:
        with csv.path.open("rb", buffering=0) as raw:
            raw.seek(start)
            yield from pacsv.open_csv(_WholeCrLf(raw, csv.arrow_encoding), **options)


def _splits_crlf(path: Path, start: int, block: int) -> bool:
    """Whether a seam between Arrow's reads of ``block`` bytes from ``start`` falls between
    a CR and an LF (Arrow reads exactly ``block`` bytes at a time from a native file)."""
    with path.open("rb", buffering=0) as file:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        return any(
            os.pread(fd, 2, seam - 1) == b"\r\n" for seam in range(start + block, size, block)
        )


class _WholeCrLf(io.RawIOBase):
    """A file as Arrow should read it: in UTF-8, no read ending on a CR but the last."""

    def __init__(self, raw: io.RawIOBase, arrow_encoding: str):
        self.raw, self.held = raw, b""
        utf8 = arrow_encoding == "utf8"
        self.decoder = None if utf8 else codecs.getincrementaldecoder(arrow_encoding)()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while True:
            raw = self.raw.read(size)
            data = raw if self.decoder is None else self._utf8(raw)
            data, self.held = self.held + data, b""
            if raw and data.endswith(b"\r"):  # its LF, if any, goes with the next read
                data, self.held = data[:-1], b"\r"
            if data or not raw:  # an empty read would mean the end of the file
                return data

    def _utf8(self, raw: bytes) -> bytes:
        return self.decoder.decode(raw, final=not raw).encode("utf-8")


def _long_stretch(csv: CsvRead, bounds: RecordBounds, cursor: _Cursor) -> Iterator[Chunk]:
    """Read the record Arrow could not, and the records after it up to ``_STRETCH_BYTES`` in
    all, in one block; or reject it alone if it is longer than ``csv.max_row_bytes``. Moves
    the cursor past them."""
    row = cursor.next_row
    if not byte_aligned(csv.encoding):
        raise SourceError(
            f"this row is longer than the {csv.read_bytes:,}-byte read block, and so long a "
            f"row can be read only from UTF-8 or a one-byte encoding such as cp1252, not "
            f"{csv.encoding}; save the file as UTF-8",
            source=csv.source, row=row,
        )  # fmt: skip
    csv.malformed.forget_from(row)  # what Arrow saw of this stretch, it had not handed on
    if cursor.offset is not None:
        top = cursor.offset
    else:  # the header is the first record; Arrow drops a UTF-8 mark before it
        top = len(UTF8_BOM) if bounds.read(0, len(UTF8_BOM)) == UTF8_BOM else 0
    start = bounds.skip(top, row - cursor.first_row)
    first, end = bounds.record(start)
    size = end - first
    if size > csv.max_row_bytes:
        yield _too_large(csv, bounds, row, first, end)
        cursor.next_row = row + 1
    else:
        end, _ = bounds.whole_records(end, _STRETCH_BYTES - (end - start), csv.max_row_bytes)
        yield from _read_stretch(csv, bounds.read(start, end - start), cursor)
        rows = f"rows {row:,}-{cursor.next_row - 1:,}" if cursor.next_row > row + 1 else ""
        csv.note(f"row {row:,} is {size:,} bytes, longer than the {csv.read_bytes:,}-byte "
                 f"read block: read {rows or 'it'} in one {end - start:,}-byte block")  # fmt: skip
    cursor.offset, cursor.first_row = end, cursor.next_row


def _read_stretch(csv: CsvRead, data: bytes, cursor: _Cursor) -> Iterator[Chunk]:
    """Parse ``data``, whole records from the cursor's next row on, as one block."""
    if csv.arrow_encoding != "utf8":  # decoded here, so that the block is known to fit it
        data = data.decode(csv.encoding).encode("utf-8")
    csv.malformed.offset = cursor.next_row - 1
    options = csv.options(block_bytes=len(data) + 1, arrow_encoding="utf8", headless=True)
    reader = pacsv.open_csv(pa.BufferReader(data), **options)
    yield from _number_batches(reader, csv, cursor)


def _too_large(csv: CsvRead, bounds: RecordBounds, row: int, first: int, end: int) -> Chunk:
    size = end - first
    message = f"the row is {size:,} bytes, more than the {csv.max_row_bytes:,} a row may have"
    if end == csv.path.stat().st_size:
        message += "; it runs to the end of the file: is a quote left open?"
    head = bounds.read(first, 4 * _REJECT_TEXT_LIMIT).decode(csv.encoding, errors="replace")
    reject = Reject(csv.source, row, None, None, head[:_REJECT_TEXT_LIMIT], "row_too_large",
                    message)  # fmt: skip
    csv.note(f"row {row:,} is {size:,} bytes, more than the {csv.max_row_bytes:,} a row may "
             "have: rejected")  # fmt: skip
    return Chunk(empty_table(csv.names), np.empty(0, np.int64), csv.source, (reject,))


def _number_batches(batches, csv: CsvRead, cursor: _Cursor) -> Iterator[Chunk]:
    """Give each good row its record number: the next numbers not taken by a skipped row.

    pyarrow numbers the rows it skips but not the ones it keeps, and it has parsed a batch (so
    called the handler for its bad rows) before handing it over, so the gaps are known in time.
    A chunk takes the rejects up to its last good row and those right after it: no good row can
    come between, and a file of nothing but bad rows does not pile them all up until its end.
    ``cursor.next_row`` follows: every row before it has been handed on.
    """
    malformed, source = csv.malformed, csv.source
    for batch in batches:
        if any(reject.row is None for reject in malformed.pending):
            raise SourceError("pyarrow did not report the row number of a malformed row",
                              source=source)  # fmt: skip
        rows = _row_numbers(cursor.next_row, batch.num_rows, [r.row for r in malformed.pending])
        next_row = int(rows[-1]) + 1 if batch.num_rows else cursor.next_row
        cursor.next_row = malformed.first_free(next_row)
        rejects = malformed.take_through(cursor.next_row - 1)
        yield Chunk(pa.Table.from_batches([batch]), rows, source, rejects)
    if malformed.pending:  # only if pyarrow yielded no batch for the last bad rows
        cursor.next_row = max(reject.row for reject in malformed.pending) + 1
        empty = empty_table(csv.names)
        yield Chunk(empty, np.empty(0, np.int64), source, tuple(malformed.pending))
        malformed.pending = []


def _row_numbers(first: int, count: int, skipped: list[int]) -> np.ndarray:
    candidates = np.arange(first, first + count + len(skipped), dtype=np.int64)
    return candidates[~np.isin(candidates, skipped)][:count]
