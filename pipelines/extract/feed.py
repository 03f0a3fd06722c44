"""Opening a job's sources, whatever their kind: CSV, Parquet, an Excel sheet or a SQL query.

``SourceOpener`` gives a source's column names (read before any data) and its chunks; SQL
engines come from the caller, one per ``url_env``. A ``Feed`` is what a run reads: its name,
its chunks, its size for the row-count gate, and the SQL reads behind it, kept so that the
run can store the largest watermark read once every chunk is read, and close them early.

A file source's path may be a pattern (a dated nightly export, ``exports/products_*.csv``):
its newest match is read, chosen once per run so that every open of the run reads one file.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, SourceError
from pipelines.extract import files
from pipelines.extract.chunks import Chunk
from pipelines.extract.file_scan import FileScan, scan_file
from pipelines.jobs.job_file import check_columns
from pipelines.jobs.specs import CsvSource, NumberFormat, ParquetSource, SqlSource, XlsxSource

if TYPE_CHECKING:  # loaded only by the runs that read SQL or Excel (startup cost, issue 18)
    import sqlalchemy as sa

    from pipelines.extract.sql import SqlRead

__all__ = ["CSV_BLOCK_BYTES", "Feed", "SourceOpener", "is_pattern", "newest_match", "source_size"]

# ~4,000 catalog rows a chunk: big enough for vectorized work to pay, small enough that
# Arrow's CSV read-ahead stays small (measured: 1 MB blocks hold 17 MB, 2 MB blocks 73 MB).
CSV_BLOCK_BYTES = 1 << 20
WATERMARK_PARAM = ":watermark_from"
GLOB_CHARS = frozenset("*?[")
_PICKED_BY = {"name": "by name", "mtime": "by modification time"}


class Feed:
    """What a run reads: its name, its chunks, and the SQL reads behind them."""

    def __init__(self, name: str, size: int | None = None):
        self.name = name
        # line breaks, Parquet rows or an Excel sheet's rows; None for SQL (no cheap measure)
        self.size = size
        self.chunks: Iterator[Chunk] = iter(())
        self.reads: list[SqlRead] = []

    @property
    def max_watermark(self) -> str | None:
        """The largest watermark read, once the main read is complete (else None)."""
        return self.reads[0].max_watermark if self.reads else None

    def close(self) -> None:
        for read in self.reads:
            read.close()
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SourceOpener:
    """Opens the sources of one job for one run.

    ``override`` replaces the path of the job's main file source (``--source``), pattern or
    not; ``watermark_from`` is bound to ``:watermark_from`` in the main query (and in a lines
    query that uses it). A pattern's newest match is chosen at its first use and kept: the
    engine may open a feed twice (mirror mode scans its keys first), and both reads must be
    of the same file even if a newer one lands in between. One opener serves one run.

    A CSV file is scanned once before Arrow reads it: its line breaks are the feed's size and,
    for ``encoding: auto``, the same pass checks its UTF-8. The scan is kept while the file's
    size and modification time stay the same.
    """

    def __init__(
        self,
        *,
        engines: Mapping[str, sa.Engine] | None = None,
        override: Path | None = None,
        watermark_from: str | None = None,
        log: Callable[[str], None] = print,
    ):
        self.engines = engines or {}
        self.override, self.watermark_from, self.log = override, watermark_from, log
        self._chosen: dict[tuple[str, str], Path] = {}  # (pattern, pick) → the file read
        self._scans: dict[Path, FileScan] = {}  # CSV files scanned in this run

    def open_main(self, job: Any) -> tuple[Feed, list[str]]:
        """The job's own source as a feed whose chunks are its rows, once its columns are
        known to hold what the job reads; and those columns."""
        feed = self.feed(job.source)
        watermark = job.watermark.column if job.watermark else None
        columns, feed.chunks = self.open(job.source, feed, watermark=watermark, number=job.number)
        check_columns(job, job.source_columns_used(), columns, source=feed.name)
        return feed, columns

    def feed(self, source: Any, *, main: bool = True) -> Feed:
        """An empty feed named after ``source``, its size measured (files only)."""
        return Feed(self.name(source, main=main), self.size(source, main=main))

    def open(
        self,
        source: Any,
        feed: Feed | None = None,
        *,
        main: bool = True,
        watermark: str | None = None,
        number: NumberFormat | None = None,
    ) -> tuple[list[str], Iterator[Chunk]]:
        """The source's columns and its chunks. A SQL read is added to ``feed``'s reads;
        ``watermark`` names the column whose largest value the read keeps; ``number`` is how
        the job reads numbers written as text (an Excel sheet writes its number cells so)."""
        if not isinstance(source, SqlSource):
            return self._file(source, self.path(source, main=main), number)
        engine = self.engines.get(source.url_env)
        if engine is None:
            raise ConfigError(f"no database engine for {source.url_env}")
        query = Path(source.query)
        from pipelines.extract.sql import SqlSourceConfig, read_sql, sql_columns

        config = SqlSourceConfig(
            url_env=source.url_env,
            query_file=query,
            params=dict(source.params),
            chunk_rows=source.chunk_rows,
            watermark_column=watermark,
        )
        columns = sql_columns(engine, config)
        # a lines query may leave the filter out (it then reads every line, merged all the same)
        start = self.watermark_from if WATERMARK_PARAM in _read(query) else None
        read = read_sql(engine, config, watermark_from=start)
        if feed is not None:
            feed.reads.append(read)
        return columns, iter(read)

    def path(self, source: CsvSource | ParquetSource | XlsxSource, *, main: bool = True) -> Path:
        """The file ``source`` reads in this run: ``--source`` for the main source, else its
        path, or the newest match of its pattern (``SourceError`` when nothing matches)."""
        if main and self.override is not None:
            return self.override
        if not is_pattern(source.path):
            return source.path
        return self._choose(source.path, source.pick)

    def _choose(self, pattern: Path, pick: str) -> Path:
        key = (str(pattern), pick)
        if key not in self._chosen:
            chosen, matches = newest_match(pattern, pick)
            which = "the only match" if matches == 1 else f"newest of {matches} {_PICKED_BY[pick]}"
            self.log(f"{pattern}: reading {chosen} ({which})")
            self._chosen[key] = chosen
        return self._chosen[key]

    def name(self, source: Any, *, main: bool = True) -> str:
        if isinstance(source, SqlSource):
            return str(source.query)
        if isinstance(source, XlsxSource):  # two sheets of one workbook must read apart
            return _excel().sheet_label(self.path(source, main=main), source.sheet)
        return str(self.path(source, main=main))

    def size(self, source: Any, *, main: bool = True) -> int | None:
        if isinstance(source, SqlSource):
            return None
        if isinstance(source, XlsxSource):
            path = self.path(source, main=main)
            return _excel().sheet_size(path, sheet=source.sheet, header_row=source.header_row)
        path = self.path(source, main=main)
        if isinstance(source, ParquetSource):
            try:
                return source_size(path, "parquet")
            except OSError:
                return None  # the read itself reports a missing file, naming it
        try:  # the same pass checks UTF-8 for the encoding guess that follows
            return self._scan(path, utf8=source.encoding == "auto").line_breaks
        except OSError:
            return None

    def bytes(self, source: Any, *, main: bool = True) -> int:
        """A file source's size on disk (0 for SQL or a missing file); for an Excel sheet, the
        size of its text unzipped, which is what the reader holds."""
        if isinstance(source, SqlSource):
            return 0
        if isinstance(source, XlsxSource):
            return _excel().sheet_bytes(self.path(source, main=main), sheet=source.sheet)
        try:
            return Path(self.path(source, main=main)).stat().st_size
        except OSError:
            return 0

    def _file(
        self,
        source: CsvSource | ParquetSource | XlsxSource,
        path: Path,
        number: NumberFormat | None = None,
    ) -> tuple[list[str], Iterator[Chunk]]:
        if isinstance(source, ParquetSource):
            return files.parquet_columns(path), files.read_parquet(path)
        if isinstance(source, XlsxSource):
            # number cells in the mark the job reads text with: 1.5 as "1,5", never "15"
            mark = None if number is None else (lambda column: number.for_column(column).decimal)
            return _excel().open_sheet(
                path, sheet=source.sheet, header_row=source.header_row, decimal_mark=mark
            )
        encoding = source.encoding
        if encoding == "auto":
            choice = files.detect_encoding(path, scan=self._scanned(path))
            self.log(f"{path}: reading as {choice.encoding} ({choice.reason})")
            encoding = choice.encoding
        return files.open_csv(
            path,
            encoding=encoding,
            delimiter=source.delimiter,
            block_bytes=CSV_BLOCK_BYTES,
            log=self.log,
        )

    def _scan(self, path: Path, *, utf8: bool) -> FileScan:
        """The file's scan: the one kept, if it still describes the file (and checked UTF-8
        when ``utf8``), else a new one. Raises ``OSError`` for a file that cannot be read."""
        kept = self._scanned(path)
        if kept is not None and (kept.utf8_checked or not utf8):
            return kept
        self._scans[path] = scan = scan_file(path, utf8=utf8)
        return scan

    def _scanned(self, path: Path) -> FileScan | None:
        kept = self._scans.get(path)
        try:
            return kept if kept is not None and kept.describes(os.stat(path)) else None
        except OSError:
            return None


def is_pattern(path: Path | str) -> bool:
    """Whether a source path is a pattern (``*``, ``?`` or ``[`` in it) rather than a file."""
    return not GLOB_CHARS.isdisjoint(str(path))


def newest_match(pattern: Path, pick: str = "name") -> tuple[Path, int]:
    """The newest file matching ``pattern`` and how many files match. Newest is last in name
    order (``pick="name"``: dated names such as ``products_20261202.csv`` sort by date) or
    last modified (``pick="mtime"``); ties go to the later name, so the choice is repeatable.
    A relative pattern is matched from the current directory, as a relative path is read.
    Names starting with a dot are not matched: a transfer's temporary file often is one."""
    files = [f for f in glob.glob(str(pattern)) if Path(f).is_file()]
    if not files:
        raise _no_match(pattern)
    by_mtime = pick == "mtime"
    newest = max(files, key=lambda f: (_mtime_ns(f) if by_mtime else 0, f))
    return Path(newest), len(files)


def _no_match(pattern: Path) -> SourceError:
    """The error for a pattern that matches nothing, naming the directory searched in full:
    a job run from an unexpected working directory is the usual cause."""
    parts = pattern.parts
    fixed = next(i for i, part in enumerate(parts) if is_pattern(part))
    directory = Path(*parts[:fixed]).absolute() if fixed else Path.cwd()
    if directory.is_dir():
        return SourceError(f"no file matches this pattern in {directory}", source=str(pattern))
    return SourceError(
        f"no file matches this pattern: {directory} is not a directory", source=str(pattern)
    )


def _mtime_ns(path: str) -> int:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:  # gone since it was listed: never the newest
        return -1


def source_size(path: Path, kind: str) -> int:
    """A cheap, repeatable measure of a feed's size, compared run to run by the row-count gate:
    line breaks for CSV (~0.1 s per 250 MB; quoted newlines count too, alike each run),
    the row count in the footer for Parquet."""
    if kind == "parquet":
        import pyarrow.parquet as pq  # only Parquet runs pay for loading it

        return pq.ParquetFile(path).metadata.num_rows
    return scan_file(Path(path), utf8=False).line_breaks


def _read(query: Path) -> str:
    try:
        return query.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{query}: cannot read the query file: {exc.strerror}") from None


def _excel():
    """The Excel reader, imported by the runs that read a workbook (python-calamine and the
    workbook code cost every CSV run ~15 ms otherwise)."""
    from pipelines.extract import excel

    return excel
