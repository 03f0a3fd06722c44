"""Opening the feeds of orders and customers jobs: files or SQL, grouped into orders.

Column names are checked against the job before any data is read. SQL reads take their
engine from the caller (one per ``url_env``); the ``SqlRead``s are kept so that the run can
store the largest watermark read once every chunk has been read, and close early on error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from pipelines.entities.orders.grouping import OrderChunk, group_sorted, merge_sorted, spill_grouped
from pipelines.entities.orders.order_job import (
    CustomersJob,
    OrdersJob,
    SqlSource,
    check_source_columns,
)
from pipelines.errors import ConfigError
from pipelines.extract.files import Chunk
from pipelines.extract.sql import SqlRead, SqlSourceConfig, read_sql, sql_columns
from pipelines.jobs.specs import CsvSource
from pipelines.run.engine import RunOptions, open_source

__all__ = ["Feed", "open_customers", "open_orders", "overlap_start"]

WATERMARK_PARAM = ":watermark_from"


class Feed:
    """What a run reads: its name, its chunks, and the SQL reads behind them."""

    def __init__(self, name: str):
        self.name = name
        self.chunks: Iterator[Chunk] = iter(())
        self.reads: list[SqlRead] = []
        self._stack = ExitStack()

    @property
    def max_watermark(self) -> str | None:
        """The largest watermark read, once the header read is complete (else None)."""
        return self.reads[0].max_watermark if self.reads else None

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *exc) -> None:
        for read in self.reads:
            read.close()


def open_orders(
    job: OrdersJob,
    options: RunOptions,
    engines: Mapping[str, sa.Engine],
    watermark_from: str | None,
) -> Feed:
    feed, columns, headers = _open_main(job, options, engines, watermark_from)
    items = list(job.items.columns().values())
    lines_source = job.items.source
    if lines_source is None:  # one row per line in the job's own source
        check_source_columns(job.path, job.line_columns_used(), columns, source=feed.name)
        if isinstance(job.source, SqlSource):
            feed.chunks = group_sorted(headers, job.key, items)
        else:
            feed.chunks = _spilled(job, headers, None, items, options)
        return feed
    line_columns, lines = _open(job, lines_source, feed, engines, options, watermark_from, None)
    check_source_columns(
        job.path, job.line_columns_used(), line_columns, source=_name(lines_source, None)
    )
    if isinstance(job.source, SqlSource) and isinstance(lines_source, SqlSource):
        feed.chunks = merge_sorted(headers, lines, job.key, job.line_key, items)
    else:  # a file is in no promised order: spill and group
        feed.chunks = _spilled(job, headers, lines, items, options, line_columns)
    return feed


def open_customers(
    job: CustomersJob,
    options: RunOptions,
    engines: Mapping[str, sa.Engine],
    watermark_from: str | None,
) -> Feed:
    feed, _columns, feed.chunks = _open_main(job, options, engines, watermark_from)
    return feed


def _open_main(
    job, options: RunOptions, engines: Mapping[str, sa.Engine], watermark_from: str | None
):
    """The job's own source, its columns checked against what the job reads."""
    feed = Feed(_name(job.source, options))
    watermark = job.watermark.column if job.watermark else None
    columns, chunks = _open(job, job.source, feed, engines, options, watermark_from, watermark)
    check_source_columns(job.path, job.source_columns_used(), columns, source=feed.name)
    return feed, columns, chunks


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


def _open(
    job, source, feed: Feed, engines, options: RunOptions, watermark_from, watermark_column
) -> tuple[list[str], Iterator[Chunk]]:
    if not isinstance(source, SqlSource):
        path = options.source if source is job.source else None
        return open_source(source, path, options.log)
    engine = engines.get(source.url_env)
    if engine is None:
        raise ConfigError(f"{job.path}: no database engine for {source.url_env}")
    query = Path(source.query)
    uses_watermark = WATERMARK_PARAM in _read(query)
    config = SqlSourceConfig(
        url_env=source.url_env,
        query_file=query,
        params=dict(source.params),
        chunk_rows=source.chunk_rows,
        watermark_column=watermark_column,
    )
    columns = sql_columns(engine, config)
    # a lines query may leave the filter out (it then reads every line, merged all the same)
    read = read_sql(engine, config, watermark_from=watermark_from if uses_watermark else None)
    feed.reads.append(read)
    return columns, iter(read)


def _spilled(
    job: OrdersJob,
    headers,
    lines,
    items: list[str],
    options: RunOptions,
    line_columns: list[str] | None = None,
) -> Iterator[OrderChunk]:
    size = sum(
        _size(s, options if s is job.source else None)
        for s in (job.source, job.items.source)
        if s is not None
    )
    parts = max(1, -(-size // job.spill_partition_bytes))
    source = job.items.source
    delimiter = source.delimiter if isinstance(source, CsvSource) else ","
    return spill_grouped(
        headers,
        lines,
        key=job.key,
        line_key=job.line_key,
        item_columns=items,
        parts=parts,
        line_header=line_columns,
        delimiter=delimiter,
    )


def _size(source, options: RunOptions | None) -> int:
    if isinstance(source, SqlSource):
        return 0
    path = (options.source if options is not None else None) or source.path
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0  # the read itself reports a missing file, naming it


def _name(source, options: RunOptions | None) -> str:
    if isinstance(source, SqlSource):
        return str(source.query)
    return str((options.source if options is not None else None) or source.path)


def _read(query: Path) -> str:
    try:
        return query.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{query}: cannot read the query file: {exc.strerror}") from None
