"""Excel sheets (.xlsx, .xlsm) as a stream of bounded chunks, every column canonical text.

A sheet is named or counted from 1; ``header_row`` is the row, as Excel numbers it, that holds
the column names (rows above it, a title block, are skipped). Each chunk's rows carry their
Excel row numbers; fully empty rows are skipped and not renumbered. Cells become text as
:mod:`pipelines.extract.cell_text` says (``00123`` typed as text stays ``00123``, a date is
``2024-05-30``), so the mappers read them as they read a CSV.

A row with an Excel error cell (``#N/A``...) or a value under a column without a name is
rejected, naming the cell (``D14 holds #N/A``); the rest goes on. A missing sheet, a file that
is not an .xlsx workbook, an empty or duplicated column name raise ``SourceError``.

Memory: python-calamine (chosen for speed: about 20x openpyxl's, see bench/bench_excel.py)
loads the whole sheet into its own cells (~80 bytes a cell: ~220 MB for 200,000 rows x 13
columns; an .xlsx holds at most 1,048,576 rows), and Python holds one chunk's cells at a
time. Zip, XML, OS and calamine errors are translated in ``_book_errors``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import python_calamine

from pipelines.errors import SourceError
from pipelines.extract import workbook_xml
from pipelines.extract.cell_text import column_text
from pipelines.extract.chunks import Chunk
from pipelines.transform.rejects import Reject

__all__ = [
    "CHUNK_ROWS",
    "column_letter",
    "open_sheet",
    "sheet_bytes",
    "sheet_columns",
    "sheet_label",
    "sheet_size",
]

CHUNK_ROWS = 10_000  # ~120k cells: Python objects for one chunk only, Arrow work still pays
# A rejected row's text keeps each cell to this length: a long description cannot bloat the
# rejects file, and the row's key (short) is still read from it whole.
_CELL_TEXT_LIMIT = 200
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # .xls, and any password-protected Office file
_Errors = dict[int, list[workbook_xml.ErrorCell]]  # the sheet's error cells by row


def sheet_label(path: Path | str, sheet: str | int) -> str:
    """How messages and the rejects file name a sheet: ``prices.xlsx, sheet 'Prices'``."""
    return f"{path}, sheet {sheet!r}" if isinstance(sheet, str) else f"{path}, sheet {sheet}"


def open_sheet(
    path: Path,
    *,
    sheet: str | int = 1,
    header_row: int = 1,
    chunk_rows: int = CHUNK_ROWS,
    decimal_mark: Callable[[str], str] | None = None,
) -> tuple[list[str], Iterator[Chunk]]:
    """The sheet's column names and its rows as chunks of at most ``chunk_rows``.

    ``decimal_mark`` gives, per column name, the decimal mark its text cells are written
    with (the job's ``number:``); number cells are written with it too (default ``.``).
    The sheet is loaded here (its header is needed now); the chunks are made as they are
    read. Raises ``SourceError`` for a file that is not a workbook, a missing sheet, a
    header row that is empty or past the end, and an empty or duplicated column name.
    """
    label = sheet_label(path, sheet)
    with _book_errors(label):
        loaded, errors = _load(Path(path), sheet, label)
        if loaded.start is None:
            raise SourceError(f"the sheet is empty; expected column names in row {header_row}",
                              source=label)  # fmt: skip
        rows = loaded.iter_rows()  # from row 1 (leading empty rows too), from the first column
        first_column = loaded.start[1]
        header = next(islice(rows, header_row - 1, None), None)
        names = _header(header, header_row, first_column, errors, label)
        marks = [decimal_mark(name) if decimal_mark else "." for name in names]
        layout = _Layout(names, first_column, label, marks)
    return names, _chunks(rows, header_row + 1, layout, errors, chunk_rows)


def sheet_columns(path: Path, *, sheet: str | int = 1, header_row: int = 1) -> list[str]:
    """The sheet's column names alone. It loads the whole sheet: when the rows are read too,
    ``open_sheet`` gives both for one load."""
    names, chunks = open_sheet(path, sheet=sheet, header_row=header_row)
    chunks.close()
    return names


def sheet_size(path: Path, *, sheet: str | int = 1, header_row: int = 1) -> int | None:
    """Rows below the header as the sheet's ``<dimension>`` says, without loading the sheet:
    the row-count gate's measure (None if the file cannot say; the read reports why)."""
    try:
        with zipfile.ZipFile(path) as archive:
            last = workbook_xml.dimension_rows(archive, _part(archive, sheet, "").part)
    except (OSError, zipfile.BadZipFile, KeyError, ElementTree.ParseError, SourceError):
        return None
    return None if last is None else max(0, last - header_row)


def sheet_bytes(path: Path, *, sheet: str | int = 1) -> int:
    """The uncompressed size of the sheet's text: what sizes the temporary partitions that
    group an orders file (an .xlsx on disk is several times smaller). 0 if unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            return workbook_xml.text_bytes(archive, _part(archive, sheet, "").part)
    except (OSError, zipfile.BadZipFile, KeyError, ElementTree.ParseError, SourceError):
        return 0


def column_letter(index: int) -> str:
    """Excel's letters for a column counted from 0: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


# --- opening ----------------------------------------------------------------------------------


def _load(
    path: Path, sheet: str | int, label: str
) -> tuple[python_calamine.CalamineSheet, _Errors]:
    """The sheet loaded by calamine, and its error cells by row (read from the XML first)."""
    _check_format(path, label)
    with zipfile.ZipFile(path) as archive:
        part = _part(archive, sheet, label)
        errors: _Errors = {}
        for cell in workbook_xml.error_cells(archive, part.part):
            if isinstance(cell, str):
                raise SourceError(
                    f"an error cell ({cell}) has no cell reference, so its row is unknown; "
                    "open and save the workbook in Excel", source=label
                )  # fmt: skip
            errors.setdefault(cell.row, []).append(cell)
    with path.open("rb") as file:  # by content: an .xlsx named .xls or .dat reads too
        book = python_calamine.CalamineWorkbook.from_filelike(file)
        loaded = book.get_sheet_by_name(part.name)
        book.close()  # the sheet keeps its cells; the shared strings and zip go
    return loaded, errors


def _check_format(path: Path, label: str) -> None:
    with path.open("rb") as file:
        magic = file.read(4)
    if not magic:
        raise SourceError("the file is empty (0 bytes)", source=label)
    if magic == _OLE_MAGIC:
        raise SourceError(
            "is an Excel 97-2003 (.xls) or a password-protected workbook; save it in Excel "
            "as an .xlsx workbook without a password", source=label
        )  # fmt: skip
    if not zipfile.is_zipfile(path):
        raise SourceError("is not an Excel workbook (.xlsx): it is not a zip archive",
                          source=label)  # fmt: skip


def _part(archive: zipfile.ZipFile, sheet: str | int, label: str) -> workbook_xml.SheetPart:
    parts = workbook_xml.sheet_parts(archive)
    if isinstance(sheet, int) and 1 <= sheet <= len(parts):
        return parts[sheet - 1]
    found = next((p for p in parts if p.name == sheet), None)
    if found is not None:
        return found
    listed = ", ".join(repr(p.name) + (" (hidden)" if p.hidden else "") for p in parts)
    if isinstance(sheet, int):
        hint = (
            "; to name a sheet called that, quote it"
            if any(p.name == str(sheet) for p in parts)
            else ""
        )
        message = f"the workbook has {len(parts)} sheet(s), no sheet {sheet}: {listed}{hint}"
    else:
        message = f"the workbook has no sheet named {sheet!r}; its sheets: {listed}"
    raise SourceError(message, source=label)


def _header(
    cells: list | None,
    header_row: int,
    first_column: int,
    errors: _Errors,
    label: str,
) -> list[str]:
    """The column names, up to the last named cell (a value under an unnamed column to its
    right rejects that value's row)."""
    if header_row in errors:
        cell = errors[header_row][0]
        raise SourceError(f"{cell.ref} holds {cell.value}; expected a column name",
                          source=label, row=header_row)  # fmt: skip
    values = column_text(np.array(cells or [], dtype=object)).to_pylist()
    named = [i for i, name in enumerate(values) if name is not None and name.strip()]
    if not named:
        raise SourceError(
            f"row {header_row} is empty (or past the end of the sheet); header_row must be "
            "the row that holds the column names", source=label, row=header_row
        )  # fmt: skip
    names = values[: named[-1] + 1]
    seen: dict[str, str] = {}
    for index, name in enumerate(names):
        letter = column_letter(first_column + index)
        if name is None or not name.strip():
            raise SourceError(f"column {letter} has no name; give every column a name",
                              source=label, row=header_row)  # fmt: skip
        if name in seen:
            raise SourceError(
                f"column name {name!r} appears twice (columns {seen[name]} and {letter}); "
                "column names must be unique", source=label, row=header_row, column=name
            )  # fmt: skip
        seen[name] = letter
    return names


# --- chunks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """The named columns of a sheet, where they start (column A is 0), the sheet's label and
    the decimal mark of each column's numbers."""

    names: list[str]
    first_column: int
    label: str
    marks: list[str]

    @property
    def width(self) -> int:
        return len(self.names)

    def name_of(self, letter: str) -> str | None:
        for index, name in enumerate(self.names):
            if column_letter(self.first_column + index) == letter:
                return name
        return None


def _chunks(
    rows: Iterator[list],
    first_row: int,
    layout: _Layout,
    errors: _Errors,
    chunk_rows: int,
) -> Iterator[Chunk]:
    with _book_errors(layout.label):  # the iterator holds the loaded sheet until it is done
        while batch := list(islice(rows, chunk_rows)):
            yield _chunk(batch, first_row, layout, errors)
            first_row += len(batch)


def _chunk(
    batch: list[list],
    first_row: int,
    layout: _Layout,
    errors: _Errors,
) -> Chunk:
    columns = np.array(batch, dtype=object).T.copy()  # contiguous: Arrow reads it 10x faster
    table = pa.table(
        {name: column_text(columns[i], layout.marks[i]) for i, name in enumerate(layout.names)}
    )
    numbers = np.arange(first_row, first_row + len(batch), dtype=np.int64)
    bad = _bad_cells(columns[layout.width :], numbers, layout, errors)
    keep = _present(table) & ~np.isin(numbers, list(bad))
    rejects = tuple(_reject(table, numbers, row, bad[row], layout) for row in sorted(bad))
    return Chunk(table.filter(pa.array(keep)), numbers[keep], layout.label, rejects)


_Problem = tuple[str, str, str]  # the cell's column letters, the reject rule, the message


def _bad_cells(
    unnamed: np.ndarray,
    numbers: np.ndarray,
    layout: _Layout,
    errors: _Errors,
) -> dict[int, list[_Problem]]:
    """Row → what is wrong in it: its error cells, and values under unnamed columns."""
    bad: dict[int, list[_Problem]] = {}
    if errors:
        for row in numbers[np.isin(numbers, list(errors))].tolist():
            bad[row] = [
                (cell.column, "excel_error", f"{cell.ref} holds {cell.value}")
                for cell in errors[row]
            ]
    for offset, cells in enumerate(unnamed):
        filled = column_text(cells).is_valid().to_numpy(zero_copy_only=False)
        letter = column_letter(layout.first_column + layout.width + offset)
        for row in numbers[filled].tolist():
            message = f"{letter}{row} holds a value, but column {letter} has no name"
            bad.setdefault(row, []).append((letter, "unnamed_column", message))
    return bad


def _present(table: pa.Table) -> np.ndarray:
    """Rows with at least one value (a fully empty row is skipped)."""
    present = np.zeros(table.num_rows, dtype=bool)
    for column in table.columns:
        present |= pc.is_valid(column).to_numpy(zero_copy_only=False)
    return present


def _reject(
    table: pa.Table, numbers: np.ndarray, row: int, problems: list[_Problem], layout: _Layout
) -> Reject:
    """A rejected row, named by its first bad cell, its text kept as a CSV line (as a
    malformed CSV row is): the orders grouping reads the row's key from it."""
    index = int(np.searchsorted(numbers, row))
    values = [column[index].as_py() or "" for column in table.columns]
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(v[:_CELL_TEXT_LIMIT] for v in values)
    letter, rule, _ = problems[0]
    message = "; ".join(text for _, _, text in problems)
    return Reject(layout.label, row, None, layout.name_of(letter), line.getvalue(), rule, message)


# --- errors -----------------------------------------------------------------------------------


@contextmanager
def _book_errors(label: str) -> Iterator[None]:
    """Turn OS, zip, XML and calamine errors into a ``SourceError`` naming the sheet: the
    one place."""
    try:
        yield
    except SourceError:
        raise
    except FileNotFoundError as exc:
        raise SourceError("file not found", source=label) from exc
    except IsADirectoryError as exc:
        raise SourceError("is a directory, not a file", source=label) from exc
    except OSError as exc:
        raise SourceError(f"cannot be read: {exc.strerror or exc}", source=label) from exc
    except KeyError as exc:  # a part the package should have: zipfile's message names it
        detail = exc.args[0] if exc.args else exc
        raise SourceError(f"is not an Excel workbook (.xlsx): {detail}", source=label) from exc
    except (zipfile.BadZipFile, ElementTree.ParseError) as exc:
        raise SourceError(f"is not an Excel workbook (.xlsx): {exc}", source=label) from exc
    except python_calamine.PasswordError as exc:
        raise SourceError("is password-protected; save a copy without a password",
                          source=label) from exc  # fmt: skip
    except python_calamine.CalamineError as exc:
        raise SourceError(f"cannot be read as an Excel workbook: {exc}", source=label) from exc
