"""Where CSV records start and end in a file's raw bytes, found as Arrow's CSV lexer finds them.

pyarrow's streaming reader cannot parse a record longer than its read block. The CSV reader
(``extract.files``) then reads that stretch of the file on its own and resumes after it, which
needs byte offsets of record boundaries: this module finds them, without decoding the text.
That is exact for UTF-8 and for encodings of one byte per character whose bytes below 0x80
are ASCII (cp1252, latin-1 ...): there a quote, delimiter or line-break byte is always that
character (``byte_aligned`` says which encodings qualify).

The grammar is Arrow's (``arrow/csv/chunker.cc``, with pyarrow's default quoting): a quote
opens a quoted section only at the start of a field; in it, two quotes are one quote and a
single quote closes it; anywhere else a quote is an ordinary character (``27" monitor``). A
record ends at CR, LF or CR LF outside a quoted section, or at the end of the file; empty
lines are not records (pyarrow skips them). Memory stays bounded whatever a record's size.
"""

from __future__ import annotations

import codecs
import re
from itertools import islice
from typing import BinaryIO

__all__ = ["RecordBounds", "byte_aligned"]

_WINDOW = 1 << 20  # bytes read at a time; a record longer than this is followed across windows
_QUOTE, _CR, _LF = ord('"'), ord("\r"), ord("\n")
_FIELD_START, _IN_FIELD, _IN_QUOTED = range(3)
# The rest of a quoted section: stops at a single quote (or at the end of the data).
_QUOTED_REST = re.compile(rb'[^"]*(?:""[^"]*)*')
_BLANK = re.compile(rb"[\r\n]*")


def byte_aligned(encoding: str) -> bool:
    """Whether record boundaries can be found in the raw bytes of text in ``encoding``:
    UTF-8, or one byte per character with ASCII below 0x80 and nothing ASCII above it."""
    try:
        name = codecs.lookup(encoding).name
        if name in ("utf-8", "utf-8-sig"):
            return True  # bytes of multi-byte characters are all 0x80 or more
        text = bytes(range(256)).decode(name, errors="replace")
    except (LookupError, TypeError, ValueError):  # unknown, or not a text encoding
        return False
    low, high = text[:128], text[128:]
    return (
        len(text) == 256 and low == bytes(range(128)).decode() and not any(map(str.isascii, high))
    )


class RecordBounds:
    """Record boundaries in one open binary file whose fields are separated by ``delimiter``."""

    def __init__(self, file: BinaryIO, delimiter: str, *, window: int = _WINDOW):
        self.file, self.window = file, window  # bytes read at a time by ``record``
        self.delimiter = ord(delimiter)
        d = re.escape(delimiter.encode("ascii"))
        field = rb'(?:"[^"]*(?:""[^"]*)*"?)?[^' + d + rb"\r\n]*"
        # blank lines first; then a record that is not empty, up to its line break or the end
        self._record = re.compile(
            rb"[\r\n]*(?=[^\r\n])" + field + rb"(?:" + d + field + rb")*(?:\r\n?|\n|\Z)"
        )
        self._field_end = re.compile(rb"[" + d + rb"\r\n]")

    def skip(self, start: int, count: int) -> int:
        """The offset just past the ``count`` records that follow ``start`` (a record's
        start). Raises ``ValueError`` if the file ends first."""
        position, window = start, _WINDOW
        while count > 0:
            data = self.read(position, window)
            ends = self._ends(data, count, final=len(data) < window)
            if not ends:  # a record longer than the window: look further
                if len(data) < window:
                    raise ValueError(f"the file ends {count:,} record(s) early")
                window *= 2
                continue
            position, count, window = position + ends[-1], count - len(ends), _WINDOW
        return position

    def whole_records(self, start: int, budget: int, limit: int) -> tuple[int, int]:
        """(end, count): the records that follow ``start`` and end within ``budget`` bytes of
        it, stopping before the first one longer than ``limit`` bytes."""
        if budget <= 0:
            return start, 0
        data = self.read(start, budget)
        ends = self._ends(data, None, final=len(data) < budget)
        count, previous = 0, 0
        for end in ends:
            if end - previous > limit:
                break
            count, previous = count + 1, end
        return start + previous, count

    def record(self, start: int) -> tuple[int, int]:
        """(first, end): the first byte of the record at ``start`` (after any empty lines) and
        the offset just past it, or the file's end if it never ends (an unclosed quote)."""
        first = self._after_blank_lines(start)
        base, data, i, state = first, b"", 0, _FIELD_START
        while True:
            more = self.read(base + len(data), self.window)
            data, base = data[i:] + more, base + i  # keeps at most one byte still undecided
            i, state, done = self._lex(data, state, final=not more)
            if done:
                return first, base + i
            if not more:
                return first, base + len(data)

    def _lex(self, data: bytes, state: int, final: bool) -> tuple[int, int, bool]:
        """Run the lexer over ``data`` from its start: (position, state, whether the record
        ended there). Not ended: every byte before the position is consumed."""
        i, n = 0, len(data)
        while i < n:
            if state == _FIELD_START:
                state = _IN_QUOTED if data[i] == _QUOTE else _IN_FIELD
                i += state == _IN_QUOTED
            elif state == _IN_FIELD:
                found = self._field_end.search(data, i)
                if found is None:
                    return n, state, False
                i, char = found.end(), data[found.start()]
                if char == self.delimiter:
                    state = _FIELD_START
                elif char == _LF or i < n or final:  # LF, or a CR whose next byte is known
                    return i + (char == _CR and i < n and data[i] == _LF), state, True
                else:
                    return i - 1, state, False  # a CR last: see it again with what follows
            else:
                i = _QUOTED_REST.match(data, i).end()
                if i == n or (i + 1 == n and not final):  # a quote last may be the first of two
                    return i, state, False
                i, state = i + 1, _IN_FIELD
        return i, state, False

    def _ends(self, data: bytes, most: int | None, *, final: bool) -> list[int]:
        """Offsets in ``data`` just past its first ``most`` (None: all) whole records."""
        ends = [match.end() for match in islice(self._record.finditer(data), most)]
        if ends and not final and ends[-1] == len(data):
            ends.pop()  # ends where the data does: the record may go on past it
        return ends

    def _after_blank_lines(self, start: int) -> int:
        position = start
        while data := self.read(position, self.window):
            skipped = _BLANK.match(data).end()
            position += skipped
            if skipped < len(data):
                break
        return position

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the file from ``offset`` (fewer at its end)."""
        self.file.seek(offset)
        return self.file.read(size)
