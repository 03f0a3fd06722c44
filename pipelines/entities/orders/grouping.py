"""Order lines into orders, in bounded memory, as chunks whose ``__items`` column is an Arrow
``list<struct>`` (offsets from group boundaries), so serialization stays column-wise.

Three ways in, one join:

- **merge** (``merge_sorted``): headers and lines both sorted by the order key, as the SQL
  queries return them. Each header chunk takes the buffered lines up to its last key; the
  lines after it wait for the next chunk. Memory: one header chunk and its lines.
- **denormalized** (``group_sorted``): one row per line, sorted by key. A chunk's last,
  possibly incomplete order is carried to the next chunk.
- **spill** (``spill_grouped``): files in any order. Rows are partitioned by a hash of the key
  into Arrow IPC temp files (about ``partition_bytes`` of source text each), then each
  partition is sorted in memory and joined. Memory: one partition.

A sorted stream that is not in fact sorted raises ``SourceError``: a merge over it would
split orders silently. Keys compare as int64 for integer columns and as text otherwise (in
code-point order; in SQL sort text keys with a binary collation, e.g. ``COLLATE "C"``).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from pipelines.errors import SourceError
from pipelines.extract.chunks import Chunk
from pipelines.transform.convert import normalize_text
from pipelines.transform.rejects import Reject
from pipelines.transform.serialize import key_hashes

__all__ = [
    "BROKEN",
    "ITEMS",
    "OrderChunk",
    "group_sorted",
    "merge_sorted",
    "spill_grouped",
]

ITEMS = "__items"  # list<struct> of the line columns, one entry per order line
BROKEN = "__broken_lines"  # true where one of the order's lines could not be parsed
_KEY, _ROW = "__key", "__row"
_ORDERS_PER_CHUNK = 20_000


@dataclass(frozen=True)
class OrderChunk(Chunk):
    """A chunk of orders: header columns plus ``__items``; ``rows`` are the header rows.
    ``line_rejects`` are line rows that could not be parsed (not orders, so not counted as
    rows read)."""

    line_rejects: tuple[Reject, ...] = ()

    @property
    def line_count(self) -> int:
        items = self.table.column(ITEMS)
        return int(pc.sum(pc.list_value_length(items)).as_py() or 0)


# --- sorted streams ---------------------------------------------------------------------------


def merge_sorted(
    headers: Iterable[Chunk],
    lines: Iterable[Chunk],
    key: str,
    line_key: str,
    item_columns: list[str],
) -> Iterator[OrderChunk]:
    """Join two streams sorted by key, one header chunk at a time."""
    buffer = _LineBuffer(iter(lines), line_key, item_columns)
    order = _Order("headers")
    for chunk in headers:
        keyed = _valid(chunk.table.column(key))
        keys = _keys(chunk.table.column(key).filter(pa.array(keyed)))
        order.check(keys, chunk)
        mine, mine_keys = buffer.through(keys[-1]) if len(keys) else buffer.nothing()
        yield _joined(chunk, keyed, keys, mine, mine_keys)


def group_sorted(
    chunks: Iterable[Chunk], key: str, item_columns: list[str]
) -> Iterator[OrderChunk]:
    """One row per line, sorted by key: rows of one key become one order. A row without a key
    is an order of its own (without items; it is rejected for the missing key)."""
    carry: Chunk | None = None
    order = _Order("rows")
    for chunk in chunks:
        keyed = _valid(chunk.table.column(key))
        if not keyed.all():
            yield _keyless(_filter(chunk, ~keyed), item_columns)
            chunk = _filter(chunk, keyed)
        if carry is not None:
            chunk = _concat(carry, chunk)
        keys = _keys(chunk.table.column(key))
        order.check(keys[len(carry.table) if carry is not None else 0 :], chunk)
        cut = int(np.searchsorted(keys, keys[-1], side="left")) if len(keys) else 0
        done, carry = _slice(chunk, 0, cut), _slice(chunk, cut, len(keys), keep_rejects=False)
        if len(done.table) or done.rejects:
            yield _groups(done, keys[:cut], item_columns)
    if carry is not None and len(carry.table):
        yield _groups(carry, _keys(carry.table.column(key)), item_columns)


class _LineBuffer:
    """Line chunks read ahead of the header chunk being joined, with their keys."""

    def __init__(self, lines: Iterator[Chunk], key: str, item_columns: list[str]):
        self.lines, self.key, self.columns = lines, key, item_columns
        self.tables: list[pa.Table] = []
        self.keys: list[np.ndarray] = []
        self.done = False
        self.order = _Order("lines")
        self.schema: pa.Schema | None = None

    def through(self, last) -> tuple[pa.Table, np.ndarray]:
        """Remove and return the buffered lines whose key is at most ``last``."""
        while not self.done and (not self.keys or self.keys[-1][-1] <= last):
            chunk = next(self.lines, None)
            if chunk is None:
                self.done = True
                break
            table = chunk.table.select([self.key, *self.columns])
            self.schema = table.schema
            keyed = _valid(table.column(self.key))  # a line without a key has no order
            table = table if keyed.all() else table.filter(pa.array(keyed))
            keys = _keys(table.column(self.key))
            self.order.check(keys, chunk)
            if len(keys):
                self.tables.append(table)
                self.keys.append(keys)
        if not self.keys:
            return self.nothing()
        table, keys = pa.concat_tables(self.tables), np.concatenate(self.keys)
        cut = int(np.searchsorted(keys, last, side="right"))
        self.tables, self.keys = ([table.slice(cut)], [keys[cut:]]) if cut < len(keys) else ([], [])
        return table.slice(0, cut), keys[:cut]

    def nothing(self) -> tuple[pa.Table, np.ndarray]:
        if self.schema is not None:
            return self.schema.empty_table(), np.empty(0, np.int64)
        return _empty_lines(self.key, self.columns), np.empty(0, np.int64)


class _Order:
    """Checks that a stream's keys never decrease, within and across chunks."""

    def __init__(self, what: str):
        self.what, self.last = what, None

    def check(self, keys: np.ndarray, chunk: Chunk) -> None:
        if not len(keys):
            return
        inside = keys[1:] < keys[:-1]
        if inside.any() or (self.last is not None and keys[0] < self.last):
            at = int(np.argmax(inside)) + 1 if inside.any() else 0
            raise SourceError(
                f"the {self.what} are not sorted by the order key ({keys[at]!r} after "
                f"{keys[at - 1] if at else self.last!r}); ORDER BY the key (text keys with a "
                "binary collation) so that lines can be grouped into orders",
                source=chunk.source,
                row=int(chunk.rows[at]) if len(chunk.rows) > at else None,
            )
        self.last = keys[-1]


# --- the join ---------------------------------------------------------------------------------


def _joined(
    chunk: Chunk, keyed: np.ndarray, keys: np.ndarray, lines: pa.Table, line_keys: np.ndarray
) -> OrderChunk:
    """Attach to every header row the lines with its key (none for a header without a key).
    ``keys`` are the keys of the ``keyed`` rows; ``lines`` start with their key column."""
    starts = np.zeros(len(chunk.table), np.int64)
    counts = np.zeros(len(chunk.table), np.int64)
    if len(keys) and len(line_keys):
        if keys.dtype != line_keys.dtype:  # an integer key on one side, text on the other
            keys, line_keys = _as_text(keys), _as_text(line_keys)
        starts[keyed] = np.searchsorted(line_keys, keys, side="left")
        counts[keyed] = np.searchsorted(line_keys, keys, side="right") - starts[keyed]
    items = _items(lines.drop_columns([lines.column_names[0]]), starts, counts)
    return OrderChunk(
        chunk.table.append_column(ITEMS, items), chunk.rows, chunk.source, chunk.rejects
    )


def _as_text(keys: np.ndarray) -> np.ndarray:
    return np.array([str(k) for k in keys], dtype=object)


def _items(lines: pa.Table, starts: np.ndarray, counts: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    take = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1] - starts, counts)
    values = lines.take(pa.array(take)).combine_chunks().to_struct_array()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def _groups(chunk: Chunk, keys: np.ndarray, item_columns: list[str]) -> OrderChunk:
    """Rows sorted by key → one header row per key, its rows' line columns as items. A row
    whose line columns are all null (a LEFT JOIN's order without lines) adds no item."""
    n = len(keys)
    if n == 0:
        empty = chunk.table.slice(0, 0)
        items = pa.ListArray.from_arrays(pa.array([0], pa.int32()), _struct_of(empty, item_columns))
        return OrderChunk(
            empty.append_column(ITEMS, items), chunk.rows[:0], chunk.source, chunk.rejects
        )
    new = np.ones(n, dtype=bool)
    new[1:] = keys[1:] != keys[:-1]
    starts = np.nonzero(new)[0]
    has_line = np.zeros(n, dtype=bool)
    for name in item_columns:
        has_line |= pc.is_valid(chunk.table.column(name)).to_numpy(zero_copy_only=False)
    group = np.cumsum(new) - 1
    counts = np.bincount(group[has_line], minlength=len(starts))
    lines = chunk.table.select(item_columns).filter(pa.array(has_line))
    line_starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    headers = chunk.table.take(pa.array(starts))
    items = _items(lines, line_starts, counts)
    return OrderChunk(
        headers.append_column(ITEMS, items), chunk.rows[starts], chunk.source, chunk.rejects
    )


def _struct_of(table: pa.Table, columns: list[str]) -> pa.Array:
    return pa.StructArray.from_arrays(
        [pa.array([], table.schema.field(c).type) for c in columns], names=columns
    )


# --- spill: files in any order ----------------------------------------------------------------


def spill_grouped(
    headers: Iterable[Chunk],
    lines: Iterable[Chunk] | None,
    *,
    key: str,
    line_key: str,
    item_columns: list[str],
    parts: int,
    line_header: list[str] | None = None,
    delimiter: str = ",",
) -> Iterator[OrderChunk]:
    """Group files in any order: partition by key hash into temp files, then join per part.

    ``lines`` None means one denormalized row per line in ``headers``. ``line_header`` (the
    lines file's columns) lets an unparseable line row name its order, which is then rejected
    rather than sent without that line.
    """
    with tempfile.TemporaryDirectory(prefix="nymble-orders-") as tmp:
        spill = _Spill(Path(tmp), parts)
        header_rejects = spill.write("h", headers, key)
        line_rejects: list[Reject] = []
        broken: set[str] = set()
        if lines is not None:
            line_rejects = spill.write("l", lines, line_key)
            broken = _broken_keys(line_rejects, line_header, line_key, delimiter)
        first = True
        for part in range(parts):
            for out in _part(spill, part, lines is not None, key, item_columns, broken):
                if first:  # rejects of the read are reported once, with the first chunk
                    out = OrderChunk(
                        out.table, out.rows, out.source, tuple(header_rejects), tuple(line_rejects)
                    )
                    first = False
                yield out
        if first and (header_rejects or line_rejects):
            yield OrderChunk(
                pa.table({}), np.empty(0, np.int64), "", tuple(header_rejects), tuple(line_rejects)
            )


class _Spill:
    def __init__(self, where: Path, parts: int):
        self.where, self.parts = where, parts
        self.source: dict[str, str] = {}

    def path(self, side: str, part: int) -> Path:
        return self.where / f"{side}{part}.arrow"

    def write(self, side: str, chunks: Iterable[Chunk], key: str) -> list[Reject]:
        writers: dict[int, ipc.RecordBatchFileWriter] = {}
        rejects: list[Reject] = []
        try:
            for chunk in chunks:
                rejects += chunk.rejects
                self.source[side] = chunk.source
                if not len(chunk.table):
                    continue
                keys = normalize_text(chunk.table.column(key).combine_chunks())
                table = chunk.table.append_column(_KEY, keys).append_column(
                    _ROW, pa.array(chunk.rows, pa.int64())
                )
                part = key_hashes(keys).view(np.uint64) % np.uint64(self.parts)
                for p in np.unique(part):
                    piece = table.filter(pa.array(part == p))
                    if p not in writers:
                        writers[p] = ipc.new_file(self.path(side, int(p)), piece.schema)
                    writers[p].write_table(piece)
        finally:
            for writer in writers.values():
                writer.close()
        return rejects

    def read(self, side: str, part: int) -> pa.Table | None:
        path = self.path(side, part)
        if not path.exists():
            return None
        with ipc.open_file(path) as reader:
            table = reader.read_all()
        path.unlink()
        return table.sort_by([(_KEY, "ascending"), (_ROW, "ascending")])


def _part(
    spill: _Spill, part: int, joined: bool, key: str, item_columns: list[str], broken: set[str]
) -> Iterator[OrderChunk]:
    headers = spill.read("h", part)
    if headers is None:
        return
    lines = spill.read("l", part) if joined else None
    source = spill.source.get("h", "")
    for start in range(0, len(headers), _ORDERS_PER_CHUNK) if joined else [0]:
        piece = headers.slice(start, _ORDERS_PER_CHUNK) if joined else headers
        keys = _keys(piece.column(_KEY).combine_chunks())
        chunk = Chunk(piece, piece.column(_ROW).to_numpy(), source)
        if joined:
            out = _joined_part(chunk, keys, lines, item_columns)
        else:
            out = _groups(chunk, keys, item_columns)
        yield _mark_broken(out, broken)


def _joined_part(
    chunk: Chunk, keys: np.ndarray, lines: pa.Table | None, item_columns: list[str]
) -> OrderChunk:
    if lines is None:
        lines = _empty_lines(_KEY, item_columns)
    lines = lines.filter(pc.is_valid(lines.column(_KEY)))
    keyed = np.array([k is not None for k in keys], dtype=bool)
    line_keys = _keys(lines.column(_KEY))
    return _joined(chunk, keyed, keys[keyed], lines.select([_KEY, *item_columns]), line_keys)


def _mark_broken(chunk: OrderChunk, broken: set[str]) -> OrderChunk:
    table = chunk.table
    flags = np.zeros(len(table), dtype=bool)
    if broken and _KEY in table.column_names:
        flags = pc.fill_null(pc.is_in(table.column(_KEY), pa.array(sorted(broken))), False)
        flags = flags.to_numpy(zero_copy_only=False)
    table = table.append_column(BROKEN, pa.array(flags))
    return OrderChunk(table, chunk.rows, chunk.source, chunk.rejects, chunk.line_rejects)


def _broken_keys(
    rejects: list[Reject], header: list[str] | None, key: str, delimiter: str
) -> set[str]:
    if not rejects or not header or key not in header:
        return set()
    index = header.index(key)
    found = set()
    for reject in rejects:
        fields = next(csv.reader([reject.value or ""], delimiter=delimiter), [])
        if index < len(fields) and fields[index].strip():
            found.add(fields[index].strip())
    return found


# --- keys and slices --------------------------------------------------------------------------


def _keys(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Comparable keys: int64 for integer columns, else trimmed text (None for a null)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_integer(values.type) and values.null_count == 0:
        return values.cast(pa.int64()).to_numpy()
    if pa.types.is_integer(values.type):
        return np.array(values.to_pylist(), dtype=object)
    return np.array(normalize_text(values).to_pylist(), dtype=object)


def _valid(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_integer(values.type):
        values = normalize_text(values)
    return pc.is_valid(values).to_numpy(zero_copy_only=False)


def _keyless(chunk: Chunk, item_columns: list[str]) -> OrderChunk:
    starts = np.zeros(len(chunk.table), np.int64)
    items = _items(chunk.table.select(item_columns).slice(0, 0), starts, starts.copy())
    return OrderChunk(
        chunk.table.append_column(ITEMS, items), chunk.rows, chunk.source, chunk.rejects
    )


def _empty_lines(key: str, columns: list[str]) -> pa.Table:
    return pa.table(
        {key: pa.array([], pa.string())} | {c: pa.array([], pa.string()) for c in columns}
    )


def _filter(chunk: Chunk, mask: np.ndarray) -> Chunk:
    return Chunk(chunk.table.filter(pa.array(mask)), chunk.rows[mask], chunk.source, chunk.rejects)


def _concat(first: Chunk, second: Chunk) -> Chunk:
    table = pa.concat_tables([first.table, second.table], promote_options="permissive")
    rows = np.concatenate([first.rows, second.rows])
    return Chunk(table, rows, second.source, second.rejects)


def _slice(chunk: Chunk, start: int, stop: int, *, keep_rejects: bool = True) -> Chunk:
    rejects = chunk.rejects if keep_rejects else ()
    return Chunk(
        chunk.table.slice(start, stop - start), chunk.rows[start:stop], chunk.source, rejects
    )
