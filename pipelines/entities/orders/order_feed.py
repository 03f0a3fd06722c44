"""Opening an orders job's feed: headers and lines, files or SQL, grouped into orders.

Column names are checked against the job before any data is read. Sorted SQL reads are merged
(or, for one denormalized query, grouped) in a stream; files are in no promised order, so
their rows are spilled to temporary partitions and grouped (see :mod:`.grouping`).
"""

from __future__ import annotations

from collections.abc import Iterator

from pipelines.entities.orders.grouping import OrderChunk, group_sorted, merge_sorted, spill_grouped
from pipelines.entities.orders.order_job import OrdersJob
from pipelines.extract.feed import Feed, SourceOpener
from pipelines.jobs.job_file import check_columns
from pipelines.jobs.specs import CsvSource, SqlSource

__all__ = ["open_orders"]


def open_orders(job: OrdersJob, opener: SourceOpener) -> Feed:
    feed, columns = opener.open_main(job)
    headers = feed.chunks
    items = list(job.items.columns().values())
    lines_source = job.items.source
    if lines_source is None:  # one row per line in the job's own source
        check_columns(job, job.line_columns_used(), columns, source=feed.name)
        if isinstance(job.source, SqlSource):
            feed.chunks = group_sorted(headers, job.key, items)
        else:
            feed.chunks = _spilled(job, opener, headers, None, items)
        return feed
    line_columns, lines = opener.open(lines_source, feed, main=False, number=job.number)
    where = opener.name(lines_source, main=False)
    check_columns(job, job.line_columns_used(), line_columns, source=where)
    if isinstance(job.source, SqlSource) and isinstance(lines_source, SqlSource):
        feed.chunks = merge_sorted(headers, lines, job.key, job.line_key, items)
    else:  # a file is in no promised order: spill and group
        feed.chunks = _spilled(job, opener, headers, lines, items, line_columns)
    return feed


def _spilled(
    job: OrdersJob,
    opener: SourceOpener,
    headers,
    lines,
    items: list[str],
    line_columns: list[str] | None = None,
) -> Iterator[OrderChunk]:
    size = opener.bytes(job.source)
    if job.items.source is not None:
        size += opener.bytes(job.items.source, main=False)
    parts = max(1, -(-size // job.spill_partition_bytes))
    source = job.items.source
    # a rejected line row keeps its text, which names its order: a CSV line as written, an
    # Excel row as comma-separated text
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
