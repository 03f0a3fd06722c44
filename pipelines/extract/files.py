"""Read source files as a stream of bounded chunks, each row tagged with its spreadsheet row number.

CSV columns arrive as exact text (``pa.string()``, empty cell → null): identifiers such as UPCs
keep their leading zeros, and casting and trimming are the mapper's job. Parquet columns arrive
as stored. Rows that cannot be parsed do not stop a run: they come back as ``Reject``s on the
chunk. A file that cannot be read at all raises ``SourceError`` naming the file.

A CSV record of any length up to ``MAX_ROW_BYTES`` is read (``csv_stream``); the encoding is
chosen by ``charsets``. Every Arrow, OS and codec error of a read is translated here, in
``_source_errors``; nothing else translates them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.errors import SourceError
from pipelines.extract import charsets
from pipelines.extract.charsets import UTF8_BOM, EncodingChoice
from pipelines.extract.chunks import Chunk
from pipelines.extract.csv_stream import (
    STRADDLING,
    CsvRead,
    MalformedRows,
    parse_options,
    read_options,
    regroup,
    stream,
)
from pipelines.extract.file_scan import FileScan
from pipelines.extract.header_names import HeaderNames
from pipelines.extract.record_bounds import RecordBounds, byte_aligned

__all__ = [
    "MAX_ROW_BYTES",
    "EncodingChoice",
    "csv_columns",
    "detect_encoding",
    "open_csv",
    "parquet_columns",
    "read_csv",
    "read_parquet",
]

# Enough for any header line, yet cheap: csv_columns runs before any data is read. A header in
# UTF-16/32 is parsed from a block this size; in any other encoding its record is found in
# windows of _HEADER_WINDOW bytes (as many as it takes) and parsed alone.
_HEADER_BLOCK = 1 << 20
_HEADER_WINDOW = 64 << 10
# Arrow's streaming reader keeps ~36 blocks in flight (its background read-ahead): 256 KB
# blocks hold ~9 MB, 4 MB blocks ~144 MB, at the same speed.
_READ_BYTES = 256 << 10
# The longest CSV record read, in bytes; a longer one is rejected alone (``row_too_large``).
# Reading one costs ~3.5x its size at its peak (its bytes, Arrow's copy, the column): a
# 60 MiB cell raised peak RSS by 208 MB (20 MiB: 90 MB). The API takes ~30 MB a request at
# most (CONTRACT §6), but a long column need not be one the job sends.
MAX_ROW_BYTES = 64 << 20


def detect_encoding(path: Path, *, scan: FileScan | None = None) -> EncodingChoice:
    """Choose a CSV file's encoding: its byte order mark, else UTF-8 if every byte is valid
    UTF-8, else cp1252 (what Windows-made exports without a mark nearly always are).

    Reads the whole file once, in small blocks (memory stays constant), unless ``scan``, a
    scan of this file that checked UTF-8, already did (``SourceOpener`` keeps the one it made
    for the row-count gate).
    """
    with _source_errors(str(path)):
        return charsets.detect(Path(path), limit=None, scan=scan)


def csv_columns(path: Path, *, encoding: str = "auto", delimiter: str = ",") -> list[str]:
    """The header names of a CSV file, read from its first block only.

    Names are trimmed, and a column with no name is ``""`` (see :mod:`.header_names`).
    Raises ``SourceError`` for a missing, empty or undecodable file, a missing header, and a
    duplicated column name.
    """
    source = str(path)
    with _source_errors(source, encoding=encoding):
        # the header is all this needs, so only its block decides the encoding
        choice = charsets.choose(Path(path), encoding, limit=_HEADER_BLOCK)
    with _source_errors(source, encoding=choice.encoding):
        return HeaderNames(_read_header(Path(path), source, choice.encoding, delimiter)).names


def parquet_columns(path: Path) -> list[str]:
    """The column names of a Parquet file, read from its footer."""
    import pyarrow.parquet as pq  # here: it loads pyarrow.fs (~12 MB) that CSV runs never use

    source = str(path)
    with _source_errors(source):
        names = pq.read_schema(path).names
    _check_names(names, source, row=None)
    return names


def read_csv(
    path: Path,
    *,
    encoding: str = "auto",
    delimiter: str = ",",
    block_bytes: int = 8 << 20,
    log: Callable[[str], None] | None = None,
) -> Iterator[Chunk]:
    """Stream a CSV file as chunks of about ``block_bytes`` of text, every column a string.

    Row numbers count CSV records, not lines: a quoted value with embedded newlines is still one
    row, and blank lines are skipped without being counted (as pyarrow does). A record with too
    many or too few fields becomes a ``malformed_row`` reject on the chunk where it falls, and the
    rows after it keep their true numbers. A trailing chunk with an empty table may carry the
    rejects that follow the last good row.

    A record of any length is read, in bounded memory; one longer than ``MAX_ROW_BYTES`` becomes
    a ``row_too_large`` reject naming its size, and the rows after it are read. ``log`` hears of
    each long record, and of a byte order mark that outweighs the encoding given.

    ``encoding="auto"`` runs ``detect_encoding``, which scans the file; to log the choice, call
    ``detect_encoding`` yourself and pass its ``encoding`` here. An explicit encoding is used as
    given, unless the file starts with a byte order mark of another encoding: the mark wins
    (see ``charsets.choose``). Bytes the encoding cannot decode raise ``SourceError``.
    Nothing is read before the first chunk is asked for.
    """
    _names, chunks = open_csv(
        path, encoding=encoding, delimiter=delimiter, block_bytes=block_bytes, log=log
    )
    yield from chunks


def open_csv(
    path: Path,
    *,
    encoding: str = "auto",
    delimiter: str = ",",
    block_bytes: int = 8 << 20,
    log: Callable[[str], None] | None = None,
) -> tuple[list[str], Iterator[Chunk]]:
    """``csv_columns`` and ``read_csv`` of one file, its header read once: the column names
    as ``csv_columns`` gives them (header problems raise ``SourceError`` here), and the chunks
    as ``read_csv`` yields them."""
    source = str(path)
    path = Path(path)
    with _source_errors(source, encoding=encoding):
        choice = charsets.choose(path, encoding, limit=None)
        arrow_encoding = charsets.arrow_encoding(choice.encoding)
    if log is not None and choice.overrides_given:
        log(f"{source}: {choice.reason}")
    with _source_errors(source, encoding=choice.encoding):
        names = _read_header(path, source, choice.encoding, delimiter)  # checks the delimiter
    csv = CsvRead(
        path, source, names, choice.encoding, arrow_encoding, delimiter,
        min(block_bytes, _READ_BYTES), MAX_ROW_BYTES, log,
    )  # fmt: skip
    header = HeaderNames(names)
    return header.names, _chunks(csv, header, max(1, block_bytes // _READ_BYTES))


def _chunks(csv: CsvRead, header: HeaderNames, group: int) -> Iterator[Chunk]:
    # conversion errors can now name their column, and their row however far streaming resumed
    with _source_errors(csv.source, csv.names, csv.encoding, rows=csv.malformed):
        for chunk in regroup(stream(csv), group):
            yield header.tidy(chunk)


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


# --- CSV --------------------------------------------------------------------------------------


def _read_header(path: Path, source: str, encoding: str, delimiter: str) -> list[str]:
    if path.stat().st_size == 0:
        raise SourceError("the file is empty (0 bytes); expected a header row", source=source)
    # a malformed row after the header must not fail the header read
    parsing = parse_options(delimiter, lambda row: "skip")
    if byte_aligned(encoding):
        # The header record alone: Arrow's reader of the file reads blocks ahead on a thread of
        # its own (3-6 MiB of a big export before it could be closed), just for the names.
        data = _header_bytes(path, delimiter)
        if charsets.arrow_encoding(encoding) != "utf8":
            data = data.decode(encoding).encode()
        reading = read_options("utf8", len(data) + 1)
        reader = pacsv.open_csv(pa.BufferReader(data), read_options=reading,
                                parse_options=parsing)  # fmt: skip
    else:  # UTF-16/32: record_bounds cannot find records in their bytes; Arrow decodes them
        reading = read_options(charsets.arrow_encoding(encoding), _HEADER_BLOCK)
        reader = pacsv.open_csv(path, read_options=reading, parse_options=parsing)
    names = reader.schema.names
    reader.close()
    _check_names([name.strip() for name in names], source, row=1, unnamed_ok=True)
    return names


def _header_bytes(path: Path, delimiter: str) -> bytes:
    """The first record of a file in a byte-aligned encoding (after a UTF-8 mark)."""
    with path.open("rb") as raw:
        bounds = RecordBounds(raw, delimiter, window=_HEADER_WINDOW)
        top = len(UTF8_BOM) if bounds.read(0, len(UTF8_BOM)) == UTF8_BOM else 0
        first, end = bounds.record(top)
        return bounds.read(first, end - first)


def _check_names(
    names: list[str], source: str, row: int | None, *, unnamed_ok: bool = False
) -> None:
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if not name.strip() and unnamed_ok:
            continue
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


# --- errors -----------------------------------------------------------------------------------

_ARROW_COLUMN = re.compile(r"In CSV column #(\d+): (?:Row #(\d+): )?")


@contextmanager
def _source_errors(
    source: str,
    names: list[str] | None = None,
    encoding: str | None = None,
    rows: MalformedRows | None = None,
) -> Iterator[None]:
    """Turn Arrow, OS and codec errors into a ``SourceError`` naming the file: the one place.

    ``encoding`` is the one in use (or given); ``rows.offset`` turns the row numbers of
    Arrow's current stream into the file's."""
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
        raise SourceError(_unknown_encoding(encoding, exc), source=source) from exc
    except pa.ArrowInvalid as exc:
        raise _arrow_invalid(exc, source, names, rows.offset if rows else 0) from exc
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"cannot be read: {exc}", source=source) from exc
    except ValueError as exc:  # a bad option, e.g. a two-character delimiter
        raise SourceError(str(exc), source=source) from exc


def _unknown_encoding(encoding: str | None, exc: LookupError) -> str:
    # the same advice as the job file's check (CsvSource in jobs/specs.py)
    what = "is not a text encoding" if "text encoding" in str(exc) else "is not known"
    return (
        f"encoding {encoding!r} {what}; use auto (byte order mark, else UTF-8, else cp1252) "
        "or a Python codec name such as utf-8, cp1252, latin-1, utf-16"
    )


def _arrow_invalid(
    exc: pa.ArrowInvalid, source: str, names: list[str] | None, row_offset: int
) -> SourceError:
    text = str(exc)
    if "Empty CSV file" in text or "cannot infer number of columns" in text:
        return SourceError("has no header row", source=source)
    if STRADDLING in text:  # a long first row in an encoding record_bounds cannot read
        return SourceError(
            "a row near the top is longer than the read block, and so long a row can be read "
            "only from UTF-8 or a one-byte encoding such as cp1252; save the file as UTF-8",
            source=source,
        )
    match = _ARROW_COLUMN.match(text)
    if match is None:
        return SourceError(f"cannot be read: {text}", source=source)
    # pyarrow counts the column from 0 and the row like a spreadsheet (header = 1)
    detail = text[match.end() :]
    if "invalid UTF8" in detail:
        detail = "bytes that are not valid UTF-8; pass the file's encoding"
    row = int(match.group(2)) + row_offset if match.group(2) else None
    index = int(match.group(1))
    column = names[index] if names and index < len(names) else f"#{index + 1}"
    return SourceError(detail, source=source, row=row, column=column)
