"""Read source files as a stream of bounded chunks, each row tagged with its spreadsheet row number.

CSV columns arrive as exact text (``pa.string()``, empty cell → null): identifiers such as UPCs
keep their leading zeros, and casting and trimming are the mapper's job. Parquet columns arrive
as stored. Rows that cannot be parsed do not stop a run: they come back as ``Reject``s on the
chunk. A file that cannot be read at all raises ``SourceError`` naming the file.

Every Arrow, OS and codec error is translated in ``_source_errors``; nothing else catches them.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.errors import SourceError
from pipelines.extract.chunks import Chunk, join
from pipelines.transform.rejects import Reject

__all__ = [
    "EncodingChoice",
    "csv_columns",
    "detect_encoding",
    "parquet_columns",
    "read_csv",
    "read_parquet",
]

# Decoding 64 KiB at a time validated a 249 MB ASCII CSV in 0.07 s (0.3 s for one with accented
# names); 1 MiB blocks took 0.43 s, as every decoded str over ~128 KiB is a fresh mmap to fault in.
_VALIDATE_BLOCK = 64 << 10
# Enough for any header line, yet cheap: csv_columns runs before any data is read.
_HEADER_BLOCK = 1 << 20
_REJECT_TEXT_LIMIT = 500  # a runaway malformed row (e.g. an unclosed quote) must not bloat rejects

_BOMS = [  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32 little-endian byte order mark"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32 big-endian byte order mark"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 byte order mark"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 little-endian byte order mark"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 big-endian byte order mark"),
]


@dataclass(frozen=True)
class EncodingChoice:
    """The codec a CSV file is read with, and a sentence for the log saying why."""

    encoding: str
    reason: str


def detect_encoding(path: Path) -> EncodingChoice:
    """Choose a CSV file's encoding: its byte order mark, else UTF-8 if every byte is valid
    UTF-8, else cp1252 (what Windows-made exports without a mark nearly always are).

    Reads the whole file once, in small blocks; memory stays constant.
    """
    with _source_errors(str(path)):
        return _detect(Path(path), limit=None)


def csv_columns(path: Path, *, encoding: str = "auto", delimiter: str = ",") -> list[str]:
    """The header names of a CSV file, read from its first block only.

    Raises ``SourceError`` for a missing, empty or undecodable file, a missing header, and an
    empty or duplicated column name.
    """
    source = str(path)
    with _source_errors(source):
        # the header is all this needs, so only its block decides the encoding
        choice = _choose(Path(path), encoding, limit=_HEADER_BLOCK)
    with _source_errors(source, encoding=choice.encoding):
        return _read_header(Path(path), source, _arrow_encoding(choice.encoding), delimiter)


def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file, read from its footer."""
    import pyarrow.parquet as pq  # here: it loads pyarrow.fs (~12 MB) that CSV runs never use

    source = str(path)
    with _source_errors(source):
        names = pq.read_schema(path).names
    _check_names(names, source, row=None)
    return names


def read_csv(
    path: Path, *, encoding: str = "auto", delimiter: str = ",", block_bytes: int = 8 << 20
) -> Iterator[Chunk]:
    """Stream a CSV file as chunks of about ``block_bytes`` of text, every column a string.

    Row numbers count CSV records, not lines: a quoted value with embedded newlines is still one
    row, and blank lines are skipped without being counted (as pyarrow does). A record with too
    many or too few fields becomes a ``malformed_row`` reject on the chunk where it falls, and the
    rows after it keep their true numbers. A trailing chunk with an empty table may carry the
    rejects that follow the last good row.

    ``encoding="auto"`` runs ``detect_encoding``, which scans the file; to log the choice, call
    ``detect_encoding`` yourself and pass its ``encoding`` here. An explicit encoding is used as
    given, and bytes it cannot decode raise ``SourceError``.
    """
    source = str(path)
    path = Path(path)
    with _source_errors(source):
        chosen = _choose(path, encoding, limit=None).encoding
        arrow_encoding = _arrow_encoding(chosen)
    with _source_errors(source, encoding=chosen):
        names = _read_header(path, source, arrow_encoding, delimiter)
    malformed = _MalformedRows(source)
    with _source_errors(source, names, chosen):  # conversion errors can now name their column
        reader = pacsv.open_csv(
            path,
            read_options=_read_options(arrow_encoding, min(block_bytes, _READ_BYTES)),
            parse_options=_parse_options(delimiter, malformed),
            convert_options=_convert_options(names),
        )
        chunks = _number_batches(reader, malformed, source)
        yield from _regroup(chunks, max(1, block_bytes // _READ_BYTES))


def read_parquet(path: Path, *, batch_rows: int = 65_536) -> Iterator[Chunk]:
    """Stream a Parquet file in batches of ``batch_rows``, columns as stored; row 1 is the first."""
    import pyarrow.parquet as pq

    source = str(path)
    with _source_errors(source):
        first = 1
        with pq.ParquetFile(path) as parquet:
            _check_names(parquet.schema_arrow.names, source, row=None)
            for batch in parquet.iter_batches(batch_size=batch_rows):
                rows = np.arange(first, first + batch.num_rows, dtype=np.int64)
                yield Chunk(pa.Table.from_batches([batch]), rows, source)
                first += batch.num_rows


# --- encoding ---------------------------------------------------------------------------------


def _choose(path: Path, encoding: str, *, limit: int | None) -> EncodingChoice:
    if encoding != "auto":
        return EncodingChoice(encoding, f"{encoding} was given explicitly")
    return _detect(path, limit=limit)


def _detect(path: Path, *, limit: int | None) -> EncodingChoice:
    """The BOM if any, else UTF-8 unless a byte within the first ``limit`` (None: all) breaks it."""
    with path.open("rb") as file:
        head = file.read(4)
    for bom, encoding, reason in _BOMS:
        if head.startswith(bom):
            return EncodingChoice(encoding, reason)
    bad = _first_invalid_utf8(path, limit)
    if bad is None:
        size = path.stat().st_size
        scope = "the header block is" if limit is not None else f"all {size:,} bytes are"
        return EncodingChoice("utf-8", f"no byte order mark; {scope} valid UTF-8")
    offset, byte = bad
    return EncodingChoice(
        "cp1252", f"not valid UTF-8 at byte {offset:,} (0x{byte:02X}); fell back to cp1252"
    )


def _first_invalid_utf8(path: Path, limit: int | None) -> tuple[int, int] | None:
    """Offset and value of the first byte that is not valid UTF-8, or None if there is none."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, pending = 0, b""
    with path.open("rb") as file:
        while (limit is None or offset < limit) and (block := file.read(_VALIDATE_BLOCK)):
            pending = decoder.getstate()[0]  # a character split across blocks starts here
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                data = pending + block
                return offset - len(pending) + exc.start, data[exc.start]
            offset += len(block)
    if limit is not None and offset >= limit:
        return None  # a character cut by the limit is not an error
    pending = decoder.getstate()[0]
    return (offset - len(pending), pending[0]) if pending else None


def _arrow_encoding(encoding: str) -> str:
    """The name to hand pyarrow: it reads UTF-8 natively (and drops a UTF-8 BOM itself), while
    any other name, "utf-8-sig" included, goes through a much slower Python transcoder."""
    name = codecs.lookup(encoding).name  # LookupError for an unknown name, translated above
    return "utf8" if name in {"utf-8", "utf-8-sig"} else name


# --- CSV --------------------------------------------------------------------------------------


def _read_header(path: Path, source: str, arrow_encoding: str, delimiter: str) -> list[str]:
    if path.stat().st_size == 0:
        raise SourceError("the file is empty (0 bytes); expected a header row", source=source)
    reader = pacsv.open_csv(
        path,
        read_options=_read_options(arrow_encoding, _HEADER_BLOCK),
        # the first block is parsed too: a malformed row in it must not fail the header read
        parse_options=_parse_options(delimiter, lambda row: "skip"),
    )
    names = reader.schema.names
    reader.close()
    _check_names(names, source, row=1)
    return names


def _check_names(names: list[str], source: str, row: int | None) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip():
            raise SourceError(
                f"column {position} has no name; give every column a name",
                source=source, row=row,
            )  # fmt: skip
        if name in seen:
            raise SourceError(
                f"column name {name!r} appears twice (columns {seen[name]} and {position}); "
                "column names must be unique",
                source=source, row=row, column=name,
            )  # fmt: skip
        seen[name] = position


# Arrow's streaming reader keeps ~36 blocks in flight (its background read-ahead): 256 KB
# blocks hold ~9 MB, 4 MB blocks ~144 MB, at the same speed.
_READ_BYTES = 256 << 10


def _read_options(arrow_encoding: str, block_bytes: int) -> pacsv.ReadOptions:
    # use_threads=False: only the serial reader tells the invalid-row handler the record number
    # (it passes None otherwise); on 1M rows it was no slower than the threaded one.
    return pacsv.ReadOptions(block_size=block_bytes, encoding=arrow_encoding, use_threads=False)


def _parse_options(delimiter: str, handler) -> pacsv.ParseOptions:
    if len(delimiter) != 1 or not delimiter.isascii():
        raise ValueError(f"delimiter {delimiter!r} must be a single ASCII character")
    return pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=handler
    )


def _convert_options(names: list[str]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )


class _MalformedRows:
    """pyarrow's invalid-row handler: skips the row and remembers it as a reject.

    It must never raise: pyarrow would only print the exception and fail the whole read.
    """

    def __init__(self, source: str):
        self.source = source
        self.pending: list[Reject] = []  # in file order: the serial reader parses in order

    def __call__(self, row) -> str:
        text = row.text if len(row.text) <= _REJECT_TEXT_LIMIT else row.text[:_REJECT_TEXT_LIMIT]
        message = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        reject = Reject(self.source, row.number, None, None, text, "malformed_row", message)
        self.pending.append(reject)
        return "skip"

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


def _number_batches(reader, malformed: _MalformedRows, source: str) -> Iterator[Chunk]:
    """Give each good row its record number: the next numbers not taken by a skipped row.

    pyarrow numbers the rows it skips but not the ones it keeps, and it has parsed a batch (so
    called the handler for its bad rows) before handing it over, so the gaps are known in time.
    A chunk takes the rejects up to its last good row and those right after it: no good row can
    come between, and a file of nothing but bad rows does not pile them all up until its end.
    """
    next_row = 2  # the header is row 1
    schema = reader.schema
    for batch in reader:
        if any(reject.row is None for reject in malformed.pending):
            raise SourceError("pyarrow did not report the row number of a malformed row",
                              source=source)  # fmt: skip
        rows = _row_numbers(next_row, batch.num_rows, [r.row for r in malformed.pending])
        if batch.num_rows:
            next_row = int(rows[-1]) + 1
        next_row = malformed.first_free(next_row)
        rejects = malformed.take_through(next_row - 1)
        yield Chunk(pa.Table.from_batches([batch]), rows, source, rejects)
    if malformed.pending:  # only if pyarrow yielded no batch for the last bad rows
        empty = schema.empty_table()
        yield Chunk(empty, np.empty(0, np.int64), source, tuple(malformed.pending))


def _regroup(chunks: Iterator[Chunk], size: int) -> Iterator[Chunk]:
    """Consecutive chunks joined ``size`` at a time: Arrow reads small blocks (its read-ahead
    holds ~36 of them), the pipeline works on big ones (fewer calls per row)."""
    while group := list(islice(chunks, size)):
        yield join(group)


def _row_numbers(first: int, count: int, skipped: list[int]) -> np.ndarray:
    candidates = np.arange(first, first + count + len(skipped), dtype=np.int64)
    return candidates[~np.isin(candidates, skipped)][:count]


# --- errors -----------------------------------------------------------------------------------

_ARROW_COLUMN = re.compile(r"In CSV column #(\d+): (?:Row #(\d+): )?")


@contextmanager
def _source_errors(
    source: str, names: list[str] | None = None, encoding: str | None = None
) -> Iterator[None]:
    """Turn Arrow, OS and codec errors into a ``SourceError`` naming the file: the one place."""
    try:
        yield
    except SourceError:
        raise
    except FileNotFoundError as exc:
        raise SourceError("file not found", source=source) from exc
    except IsADirectoryError as exc:
        raise SourceError("is a directory, not a file", source=source) from exc
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1].hex().upper()
        codec = encoding or exc.encoding  # Python calls every cp125x codec "charmap"
        message = f"byte 0x{bad} cannot be decoded as {codec}; pass the file's encoding"
        raise SourceError(message, source=source) from exc
    except LookupError as exc:  # an explicit encoding Python does not know
        raise SourceError(str(exc), source=source) from exc
    except pa.ArrowInvalid as exc:
        raise _arrow_invalid(exc, source, names) from exc
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"cannot be read: {exc}", source=source) from exc
    except ValueError as exc:  # a bad option, e.g. a two-character delimiter
        raise SourceError(str(exc), source=source) from exc


def _arrow_invalid(exc: pa.ArrowInvalid, source: str, names: list[str] | None) -> SourceError:
    text = str(exc)
    if "Empty CSV file" in text or "cannot infer number of columns" in text:
        return SourceError("has no header row", source=source)
    match = _ARROW_COLUMN.match(text)
    if match is None:
        return SourceError(f"cannot be read: {text}", source=source)
    # pyarrow counts the column from 0 and the row like a spreadsheet (header = 1)
    detail = text[match.end() :]
    if "invalid UTF8" in detail:
        detail = "bytes that are not valid UTF-8; pass the file's encoding"
    row = int(match.group(2)) if match.group(2) else None
    index = int(match.group(1))
    column = names[index] if names and index < len(names) else f"#{index + 1}"
    return SourceError(detail, source=source, row=row, column=column)
