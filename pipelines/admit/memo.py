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

The memo is a file of (key hash, tag) int64 pairs in the state directory, one per job,
entity and target, rewritten at the end of each run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipelines.admit.acked_state import AckedState, Located, mix
from pipelines.jobs.specs import JobBase

__all__ = ["MemoFile", "RowFingerprints", "code_digest", "digest_code", "file_digest"]

# The package's root: every module below it, at any depth, is in the code digest (a module
# moved into a subfolder must still void the memo when it changes).
PACKAGE = Path(__file__).resolve().parents[1]
# Besides this package's own modules, what decides a record's bytes: how numbers print,
# how JSON is written.
_LIBRARIES = ("numpy", "orjson", "pyarrow", "xxhash")
_PAIR = 2  # int64s per memo entry: key hash, tag
_IO_ENTRIES = 1 << 16  # entries read or written at a time (1 MB): the end of a run is no
# time to raise peak memory


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
    """One job's memo at one target, kept as ``path``; new keys of a run are spilled to a
    side file as they come, so memory holds only the tags of keys the ledger knows.

    The memo is only a shortcut, so a file that cannot be read or written is reported
    through ``log`` and then left alone; it never fails a run.
    """

    def __init__(self, path: Path, log: Callable[[str], None] = print):
        self.path, self.log = path, log
        self._spill_path = path.with_name(path.name + ".new")
        self._spilled = False
        self._broken = False

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
        return cls(state_dir / "memo" / f"{entity}-{scope}.bin", log)

    def load_into(self, state: AckedState) -> None:
        """Give ``state`` the remembered tags of its keys (none when the file is missing)."""
        state.attach_tags()
        try:
            if not self.path.is_file():
                return
            with open(self.path, "rb") as f:
                while True:
                    entries = np.fromfile(f, np.int64, count=_IO_ENTRIES * _PAIR)
                    if len(entries) < _PAIR:
                        return
                    pairs = entries[: len(entries) // _PAIR * _PAIR].reshape(-1, _PAIR)
                    state.remember(state.locate(pairs[:, 0]), pairs[:, 1])
        except OSError as exc:
            self._give_up("read", exc)

    def remember(
        self, state: AckedState, at: Located, keys: np.ndarray, new_tags: np.ndarray
    ) -> None:
        """Keep the tags of this run's rows: in ``state`` for keys it holds, spilled to the
        side file for the others."""
        state.remember(at, new_tags)
        missing = ~at.found
        if self._broken or not missing.any():
            return
        try:
            if not self._spilled:  # what a crashed run spilled would only take room
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._spill_path.unlink(missing_ok=True)
                self._spilled = True
            with open(self._spill_path, "ab") as spill:
                spill.write(np.column_stack([keys[missing], new_tags[missing]]))
        except OSError as exc:
            self._give_up("written", exc)

    def save(self, state: AckedState) -> None:
        """Write the memo: every tag ``state`` holds, then the spilled ones. Atomic: a crash
        leaves the previous memo, which is still sound."""
        if self._broken:
            return
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as out:
                for keys, held in _slices(state.keys, state.tags):
                    out.write(np.column_stack([keys, held]))
                if self._spilled:
                    with open(self._spill_path, "rb") as spilled:
                        while block := spilled.read(_IO_ENTRIES * _PAIR * 8):
                            out.write(block)
            os.replace(partial, self.path)
            self._spill_path.unlink(missing_ok=True)
        except OSError as exc:
            self._give_up("written", exc)

    def _give_up(self, doing: str, exc: OSError) -> None:
        self._broken = True
        self.log(
            f"the memo of unchanged rows at {self.path} could not be {doing} "
            f"({exc.strerror or exc}): results are the same, unchanged rows are mapped again"
        )


def _slices(keys: np.ndarray, held: np.ndarray | None) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    if held is None:
        return
    for start in range(0, len(keys), _IO_ENTRIES):
        part = slice(start, start + _IO_ENTRIES)
        known = held[part] != 0
        yield keys[part][known], held[part][known]
