"""Which text encoding a CSV file is read with: its byte order mark, the one given, or a guess.

Nothing here catches an error: a missing file (``OSError``) or an unknown encoding
(``LookupError``) reaches the caller, ``extract.files``, which names the file.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from pipelines.extract.file_scan import FileScan, scan_file

__all__ = ["UTF8_BOM", "EncodingChoice", "arrow_encoding", "choose", "detect"]

UTF8_BOM = codecs.BOM_UTF8
# Decoding 64 KiB at a time validated a 249 MB ASCII CSV in 0.07 s (0.3 s for one with accented
# names); 1 MiB blocks took 0.43 s, as every decoded str over ~128 KiB is a fresh mmap to fault in.
_VALIDATE_BLOCK = 64 << 10


@dataclass(frozen=True)
class EncodingChoice:
    """The codec a CSV file is read with, and a sentence for the log saying why.

    ``overrides_given``: the file's byte order mark outweighed the encoding given (the reason
    says so, and ``read_csv`` logs it).
    """

    encoding: str
    reason: str
    overrides_given: bool = False


@dataclass(frozen=True)
class _Mark:
    bom: bytes
    encoding: str  # the codec that reads the file and drops the mark
    label: str
    agrees: frozenset[str]  # given codecs (Python's names) that mean the same family


_BOMS = [  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    _Mark(
        codecs.BOM_UTF32_LE, "utf-32", "UTF-32 little-endian", frozenset({"utf-32", "utf-32-le"})
    ),
    _Mark(codecs.BOM_UTF32_BE, "utf-32", "UTF-32 big-endian", frozenset({"utf-32", "utf-32-be"})),
    _Mark(UTF8_BOM, "utf-8-sig", "UTF-8", frozenset({"utf-8", "utf-8-sig"})),
    _Mark(
        codecs.BOM_UTF16_LE, "utf-16", "UTF-16 little-endian", frozenset({"utf-16", "utf-16-le"})
    ),
    _Mark(codecs.BOM_UTF16_BE, "utf-16", "UTF-16 big-endian", frozenset({"utf-16", "utf-16-be"})),
]


def choose(path: Path, encoding: str, *, limit: int | None) -> EncodingChoice:
    """``detect`` for ``"auto"``; else the encoding given, unless the file's byte order mark
    says otherwise: then the mark.

    A mark is two to four bytes no real header starts with in any one-byte encoding (``ï»¿``,
    ``ÿþ``), so it is better evidence than a setting copied from another job; read otherwise,
    it would be glued onto the first column's name, and a UTF-16 file would not read at all.
    The reason says so, for the log. A mark of the family given (``utf-16-le`` and the UTF-16
    LE mark) is simply dropped.
    """
    if encoding == "auto":
        return detect(path, limit=limit)
    given = codecs.lookup(encoding).name  # LookupError for an unknown name
    "a".encode(given)  # LookupError for a codec that is not a text encoding (hex, rot13)
    mark = _mark(path)
    if mark is None:
        return EncodingChoice(encoding, f"{encoding} was given explicitly")
    if given in mark.agrees:
        return EncodingChoice(mark.encoding, f"{encoding} was given; the file's {mark.label} "
                              "byte order mark is dropped")  # fmt: skip
    reason = (
        f"the file starts with a {mark.label} byte order mark, so it is read as {mark.label}, "
        f"not as the {encoding} given"
    )
    return EncodingChoice(mark.encoding, reason, overrides_given=True)


def detect(path: Path, *, limit: int | None, scan: FileScan | None = None) -> EncodingChoice:
    """The BOM if any, else UTF-8 unless a byte within the first ``limit`` (None: all) breaks it,
    else cp1252 (what Windows-made exports without a mark nearly always are).

    ``scan``: the whole file's scan, when the caller has one that checked UTF-8 (the file is
    then not read again); without it, a whole-file guess scans the file."""
    mark = _mark(path)
    if mark is not None:
        return EncodingChoice(mark.encoding, f"{mark.label} byte order mark")
    if limit is None:
        if scan is None or not scan.utf8_checked:
            scan = scan_file(path)
        bad, size = scan.utf8_error, scan.size
    else:
        bad, size = _first_invalid_utf8(path, limit), None
    if bad is None:
        scope = "the header block is" if size is None else f"all {size:,} bytes are"
        return EncodingChoice("utf-8", f"no byte order mark; {scope} valid UTF-8")
    offset, byte = bad
    return EncodingChoice(
        "cp1252", f"not valid UTF-8 at byte {offset:,} (0x{byte:02X}); fell back to cp1252"
    )


def arrow_encoding(encoding: str) -> str:
    """The name to hand pyarrow: it reads UTF-8 natively (and drops a UTF-8 BOM itself), while
    any other name, "utf-8-sig" included, goes through a much slower Python transcoder."""
    name = codecs.lookup(encoding).name  # LookupError for an unknown name
    return "utf8" if name in {"utf-8", "utf-8-sig"} else name


def _mark(path: Path) -> _Mark | None:
    with path.open("rb") as file:
        head = file.read(4)
    return next((mark for mark in _BOMS if head.startswith(mark.bom)), None)


def _first_invalid_utf8(path: Path, limit: int) -> tuple[int, int] | None:
    """Offset and value of the first byte within ``limit`` that is not valid UTF-8, or None
    if there is none (a whole file is checked by ``file_scan``)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, pending = 0, b""
    with path.open("rb") as file:
        while offset < limit and (block := file.read(_VALIDATE_BLOCK)):
            pending = decoder.getstate()[0]  # a character split across blocks starts here
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                data = pending + block
                return offset - len(pending) + exc.start, data[exc.start]
            offset += len(block)
    if offset >= limit:
        return None  # a character cut by the limit is not an error
    pending = decoder.getstate()[0]
    return (offset - len(pending), pending[0]) if pending else None
