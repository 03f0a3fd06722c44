"""The source-row memo: rows whose source is what produced the acknowledged record are
known to be unchanged before they are serialized.

Mapping, checking and serializing a product cost ~3.5 µs; fingerprinting its source row
~0.5 µs. In a nightly delta 99% of rows are unchanged: with the memo a run maps and
serializes only the 1% that differ, and of the rest takes just the keys (duplicates are
still found among all rows).

A *tag* binds a row's fingerprint to the content hash its record got:
``tag = mix(fingerprint, content_hash)``. A later run trusts a tag only when it equals
``mix(fingerprint of this row, content hash the target acknowledged)``: then this row's
record hashes to what the target holds. So a tag is a fact about a pure function (this
source row, under this mapping, gives that record), never about the target; a stale, lost or
foreign memo file costs speed, never a skipped change. The fingerprint covers the job's
mapping, this package's code (and the versions of the libraries that print the JSON) and
the price list's bytes, so changing any of them makes every row a miss.

The memo is a file of (key hash, tag, content hash) int64 entries in the state directory,
one per job, entity and target, written in the order the run reads its rows and completed
at its end.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipelines.admit.acked_state import Located, mix
from pipelines.jobs.specs import JobBase

__all__ = [
    "ENTRY",
    "SUFFIX",
    "MemoFile",
    "PackedBits",
    "RowFingerprints",
    "code_digest",
    "digest_code",
    "file_digest",
]

# The package's root: every module below it, at any depth, is in the code digest (a module
# moved into a subfolder must still void the memo when it changes).
PACKAGE = Path(__file__).resolve().parents[1]
# Besides this package's own modules, what decides a record's bytes: how numbers print,
# how JSON is written.
_LIBRARIES = ("numpy", "orjson", "pyarrow", "xxhash")
# A memo entry: a row's key hash, its tag, its record's content hash.
ENTRY = np.dtype([("key", "<i8"), ("tag", "<i8"), ("hash", "<i8")])
SUFFIX = ".rows"  # memos of earlier releases (.bin) held key and tag only
_IO_ENTRIES = 1 << 16  # entries read at a time (1.5 MB)


def digest_code(package: Path = PACKAGE) -> str | None:
    """xxh3 of the code that turns a source row into a record: every module of ``package``
    at any depth (mapping, conversions, checks, serialization), the Python version and the
    versions of the libraries above. None when that code cannot be read (an install without
    sources): then there is no memo, as a change of code could not be told."""
    try:
        modules = sorted(package.rglob("*.py"))
        if not modules:
            return None
        digest = xxhash.xxh3_64(sys.version.encode())
        for path in modules:
            name = path.relative_to(package).as_posix()
            digest.update(name.encode() + b"\0" + path.read_bytes())
        for library in _LIBRARIES:
            digest.update(f"{library}=={metadata.version(library)}".encode())
        return digest.hexdigest()
    except (OSError, metadata.PackageNotFoundError):
        return None


# Read once, as the package is imported: a long-lived process keeps the code it loaded, even
# if newer files are installed under it later.
_CODE_DIGEST = digest_code()


def code_digest() -> str | None:
    return _CODE_DIGEST


def file_digest(path: Path) -> str:
    """xxh3 of a file's bytes, read in blocks."""
    digest = xxhash.xxh3_64()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class RowFingerprints:
    """64-bit fingerprints of the source columns a job reads, one per row.

    A row's fingerprint covers each value's bytes, length and presence, so values that
    merely concatenate alike ("ab", "c" and "a", "bc") or an empty and a missing value
    differ, plus a seed made of everything besides the row that shapes its record.
    """

    _LENGTHS = np.uint64(0x9E3779B97F4A7C15)  # odd: Horner steps over column lengths

    def __init__(self, job: JobBase, *, price_list_digest: str | None = None):
        self.columns = sorted(set(job.source_columns_used().values()))
        shape = job.model_dump(  # where the price list lies is not what it says
            mode="json",
            include={"entity", "key", "fields", "prices", "price_list", "attributes", "number"},
            exclude={"price_list": {"source": {"path"}}},
        )
        seed = orjson.dumps(
            [code_digest(), self.columns, shape, price_list_digest], option=orjson.OPT_SORT_KEYS
        )
        self.seed = np.array([xxhash.xxh3_64_intdigest(seed)], np.uint64)

    def __call__(self, table: pa.Table) -> np.ndarray | None:
        """The rows' fingerprints, or None when a column is of a type with no text form."""
        try:  # piece by piece: a joined row costs as many bytes as the row itself
            parts = [self._batch(batch) for batch in table.select(self.columns).to_batches()]
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            return None
        return np.concatenate(parts) if parts else np.empty(0, np.int64)

    def _batch(self, batch: pa.RecordBatch) -> np.ndarray:
        columns = _as_text(batch.columns)
        lengths = np.zeros(len(batch), np.uint64)
        for column in columns:
            lengths = lengths * self._LENGTHS + _sizes(column)
        joined = pc.binary_join_element_wise(
            *columns, pa.scalar("", columns[0].type), null_handling="replace", null_replacement=""
        )
        rows = pc.cast(joined, pa.binary()).to_pylist()
        digests = np.fromiter(map(xxhash.xxh3_64_intdigest, rows), np.uint64, count=len(rows))
        return mix(digests ^ mix(lengths ^ self.seed).view(np.uint64))


def _sizes(column: pa.Array) -> np.ndarray:
    """Each value's length + 1, or 0 where it is missing, read off the offsets buffer."""
    wide = pa.types.is_large_string(column.type)
    offsets = np.frombuffer(column.buffers()[1], np.int64 if wide else np.int32)
    bounds = offsets[column.offset : column.offset + len(column) + 1].astype(np.uint64)
    sizes = bounds[1:] - bounds[:-1] + np.uint64(1)
    if column.null_count:  # a missing value's offsets may still span bytes
        sizes[~pc.is_valid(column).to_numpy(zero_copy_only=False)] = 0
    return sizes


def _as_text(columns: list[pa.Array]) -> list[pa.Array]:
    """The columns as text of one type (the join takes no mix): CSV columns as they are,
    anything else (Parquet's numbers, large strings) cast to large strings."""
    if all(pa.types.is_string(c.type) for c in columns):
        return columns
    return [pc.cast(c, pa.large_string()) for c in columns]


class MemoFile:
    """One job's memo at one target, kept as ``path``: an entry (key hash, tag, content
    hash) per row the run kept, in the order it read them, then the entries it kept from the
    memo before (see :meth:`save`). A key's first entry is the one that counts.

    In source order, the memo also tells a run where its rows' keys sit: the next night's
    feed is mostly the same rows in the same order, so a run reads the memo alongside its
    feed (see :mod:`.ledger_state`). An entry's content hash is what its row's record hashed
    to; it stands for the acknowledged state only where the ledger says the same.

    The memo is only a shortcut, so a file that cannot be read or written is reported
    through ``log`` and then left alone; it never fails a run.
    """

    def __init__(self, path: Path, log: Callable[[str], None] = print):
        self.path, self.log = path, log
        self._partial = path.with_name(path.name + ".partial")
        self._out: _Output | None = None  # the new memo, written as the run goes
        self._broken = False
        self.count = 0  # entries of the memo read at the start
        self._fd: int | None = None  # that memo, open for reading
        self._known = PackedBits(0)  # entries whose key the state holds acknowledged
        self._used = PackedBits(0)  # entries whose key this run gave a new tag

    @classmethod
    def for_scope(
        cls,
        state_dir: Path,
        *,
        job: str,
        entity: str,
        target_id: str,
        log: Callable[[str], None] = print,
    ) -> MemoFile:
        scope = xxhash.xxh3_64_hexdigest(f"{job}\0{entity}\0{target_id}".encode())
        return cls(state_dir / "memo" / f"{entity}-{scope}{SUFFIX}", log)

    def load_into(self, state: Any) -> None:
        """Give ``state`` the remembered tags (none when the file is missing)."""
        try:
            if self.path.is_file():
                self._fd = os.open(self.path, os.O_RDONLY)
                weakref.finalize(self, os.close, self._fd)
                self.count = os.fstat(self._fd).st_size // ENTRY.itemsize
        except OSError as exc:
            self._give_up("read", exc)
        self._known, self._used = PackedBits(self.count), PackedBits(self.count)
        state.use_memo(self)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Entries ``start`` to ``stop`` (clipped) of the memo read at the start, as
        :data:`ENTRY` records; none once the file could not be read."""
        start, stop = max(0, start), min(stop, self.count)
        if self._broken or self._fd is None or stop <= start:
            return np.empty(0, ENTRY)
        try:
            data = os.pread(self._fd, (stop - start) * ENTRY.itemsize, start * ENTRY.itemsize)
        except OSError as exc:
            self._give_up("read", exc)
            return np.empty(0, ENTRY)
        return np.frombuffer(data[: len(data) // ENTRY.itemsize * ENTRY.itemsize], ENTRY)

    def entries(self) -> Iterator[tuple[int, np.ndarray]]:
        """(position of the first, entries) of the memo read at the start, in file order, a
        block at a time."""
        for start in range(0, self.count, _IO_ENTRIES):
            block = self.read(start, start + _IO_ENTRIES)
            if not len(block):
                return
            yield start, block

    def mark_known(self, positions: np.ndarray) -> None:
        """The entries at ``positions`` are of keys the target holds: kept by :meth:`save`
        unless this run gives their key a new tag."""
        self._known.set(positions)

    def remember(
        self, at: Located, keys: np.ndarray, new_tags: np.ndarray, hashes: np.ndarray
    ) -> None:
        """Keep this run's rows (``at``: where their keys were located; ``hashes``: their
        records' content hashes), in the order they come."""
        self._used.set(at.memo[at.memo >= 0])
        if self._broken or not len(keys):
            return
        try:
            if self._out is None:
                self._out = _Output(self._partial)
            self._out.write(_entries(keys, new_tags, hashes))
        except OSError as exc:
            self._give_up("written", exc)

    def save(self, _state: Any = None) -> None:
        """Write the memo: this run's entries, then those of the memo before whose keys this
        run did not tag anew but the target holds. Atomic: a crash leaves the previous
        memo, which is still sound."""
        if self._broken:
            self.discard()
            return
        try:
            if self._out is None:
                self._out = _Output(self._partial)
            for start, block in self.entries():
                stop = start + len(block)
                keep = self._known.get(start, stop) & ~self._used.get(start, stop)
                self._out.write(block[keep])
            self._out.close()
            self._out = None
            os.replace(self._partial, self.path)
            # the memo of an earlier release (key and tag only) is of no use any more
            self.path.with_suffix(".bin").unlink(missing_ok=True)
        except OSError as exc:
            self._give_up("written", exc)
            self.discard()

    def discard(self) -> None:
        """Drop what this run wrote (the memo before stays)."""
        if self._out is not None:
            self._out.close()
            self._out = None
        with contextlib.suppress(OSError):  # no folder to hold it: nothing was written
            self._partial.unlink(missing_ok=True)

    def _give_up(self, doing: str, exc: OSError) -> None:
        if self._broken:
            return
        self._broken = True
        self.log(
            f"the memo of unchanged rows at {self.path} could not be {doing} "
            f"({exc.strerror or exc}): results are the same, unchanged rows are mapped again"
        )


def _entries(keys: np.ndarray, tags: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    out = np.empty(len(keys), ENTRY)
    out["key"], out["tag"], out["hash"] = keys, tags, hashes
    return out


class _Output:
    """The new memo's file, written as the run goes; closed with this object at the latest
    (a run that stops midway leaves no file open)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.close = weakref.finalize(self, os.close, self._fd)

    def write(self, entries: np.ndarray) -> None:
        view = memoryview(np.ascontiguousarray(entries).view(np.uint8).reshape(-1))
        while view:
            view = view[os.write(self._fd, view) :]


class PackedBits:
    """A bit per entry, packed 8 to a byte (1.25 MB for 10,000,000 entries)."""

    def __init__(self, size: int):
        self.size = size
        self.bytes = np.zeros((size + 7) // 8, np.uint8)

    def __len__(self) -> int:
        return self.size

    def set(self, positions: np.ndarray) -> None:
        if not len(positions):
            return
        positions = np.sort(positions)
        at = positions >> 3
        bits = np.left_shift(np.uint8(1), (positions & 7).astype(np.uint8))
        starts = np.flatnonzero(np.concatenate(([True], at[1:] != at[:-1])))
        self.bytes[at[starts]] |= np.bitwise_or.reduceat(bits, starts)

    def get(self, start: int, stop: int) -> np.ndarray:
        """The bits of entries ``start`` to ``stop``, as booleans."""
        if stop <= start:
            return np.zeros(0, dtype=bool)
        first = start >> 3
        unpacked = np.unpackbits(self.bytes[first : (stop + 7) // 8 + 1], bitorder="little")
        return unpacked[start - first * 8 : stop - first * 8].astype(bool)
