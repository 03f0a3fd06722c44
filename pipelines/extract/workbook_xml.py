"""What the .xlsx package says that python-calamine does not: which zip member holds a sheet,
how many rows the sheet's ``<dimension>`` spans, and which cells hold an Excel error
(``#N/A``, ``#DIV/0!``...): calamine reads an error cell as an empty one.

An .xlsx is a zip of XML parts. ``_rels/.rels`` names the workbook part, the workbook lists
its sheets in order, and its own ``.rels`` file names each sheet's part. Namespaces are matched
by local name only, so strict-OOXML files and prefixed elements (``<x:c>``) read the same.

Zip, XML and OS errors propagate as they are: :mod:`pipelines.extract.excel` translates them.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree import ElementTree

__all__ = ["ErrorCell", "SheetPart", "dimension_rows", "error_cells", "sheet_parts", "text_bytes"]

_ROOT_RELS = "_rels/.rels"
_SHARED_STRINGS = "sharedStrings"
_SCAN_BLOCK = 1 << 20
_HEAD_BYTES = 64 << 10  # a sheet's <dimension> comes before its data, in its first bytes
_NAME = r"(?:[\w.-]+:)?"  # an element name's optional namespace prefix
# An error cell (t="e"), its optional formula, and its value: <c r="D14" t="e"><v>#N/A</v>
_ERROR_CELL = re.compile(
    rf"<{_NAME}c\s[^>]*?\bt\s*=\s*[\"']e[\"'][^>]*>"
    rf"(?:\s*<{_NAME}f\b[^>]*?(?:/>|>[^<]*</{_NAME}f>))?"
    rf"\s*<{_NAME}v>([^<]*)<".encode()
)
_CELL_REF = re.compile(rb"\br\s*=\s*[\"']([A-Z]{1,3})(\d+)[\"']")
_DIMENSION = re.compile(rf"<{_NAME}dimension\s[^>]*?\bref\s*=\s*[\"']([A-Z0-9:$]+)[\"']".encode())


@dataclass(frozen=True)
class SheetPart:
    """A sheet as the workbook lists it: its name, its zip member, whether it is hidden."""

    name: str
    part: str
    hidden: bool


@dataclass(frozen=True)
class ErrorCell:
    """A cell holding an Excel error: ``column`` letters (``D``), ``row`` as Excel numbers
    it, and the error as shown (``#N/A``)."""

    column: str
    row: int
    value: str

    @property
    def ref(self) -> str:
        return f"{self.column}{self.row}"


def sheet_parts(archive: zipfile.ZipFile) -> list[SheetPart]:
    """The workbook's sheets in workbook order (what Excel's tabs show, hidden ones too).
    Raises ``KeyError`` when the zip holds no spreadsheet workbook (a .docx, an .ods)."""
    workbook = _target(archive, _ROOT_RELS, "", "officeDocument")
    if workbook is None or not workbook.endswith(".xml"):  # .xlsb, .ods, .docx...
        raise KeyError("it holds no .xlsx workbook part; save it in Excel as an .xlsx workbook")
    rels_path = posixpath.join(
        posixpath.dirname(workbook), "_rels", posixpath.basename(workbook) + ".rels"
    )
    targets = _relationships(archive, rels_path, posixpath.dirname(workbook))
    sheets = []
    for element in _elements(archive, workbook, "sheet"):
        rel = next((v for k, v in element.attrib.items() if _local(k) == "id" and "}" in k), None)
        part = targets.get(rel or "")
        if part is not None:
            hidden = element.get("state", "visible") != "visible"
            sheets.append(SheetPart(element.get("name", ""), part, hidden))
    return sheets


def dimension_rows(archive: zipfile.ZipFile, part: str) -> int | None:
    """The last row of the sheet's ``<dimension>`` (Excel always writes one; some other
    writers do not: None then)."""
    with archive.open(part) as stream:
        head = stream.read(_HEAD_BYTES)
    match = _DIMENSION.search(head)
    if match is None:
        return None
    rows = re.findall(r"\d+", match.group(1).decode())
    return int(rows[-1]) if rows else None


def error_cells(archive: zipfile.ZipFile, part: str) -> Iterator[ErrorCell | str]:
    """Every error cell of the sheet, in sheet order; the error's text alone for an error
    cell without a cell reference (``r`` is optional in the format; Excel always writes it).

    One pass over the decompressed part, in blocks: a block without ``t="e"`` in it (every
    block of a sheet without errors) costs a substring search only.
    """
    carry = b""
    with archive.open(part) as stream:
        while block := stream.read(_SCAN_BLOCK):
            data = carry + block
            cut = data.rfind(b"row>") + 4  # past the last complete row: no cell is cut
            if cut < 4:
                carry = data
                continue
            yield from _errors_in(data[:cut])
            carry = data[cut:]
    yield from _errors_in(carry)


def text_bytes(archive: zipfile.ZipFile, part: str) -> int:
    """The uncompressed size of the sheet's part and of the shared strings: a bound on the
    text the sheet holds (an .xlsx on disk is several times smaller than its text)."""
    shared = sum(info.file_size for info in archive.infolist() if _SHARED_STRINGS in info.filename)
    return archive.getinfo(part).file_size + shared


def _errors_in(data: bytes) -> Iterator[ErrorCell | str]:
    if b't="e"' not in data and b"t='e'" not in data:  # a rare needle: '"' is everywhere
        return
    for match in _ERROR_CELL.finditer(data):
        value = match.group(1).decode("utf-8", "replace")
        ref = _CELL_REF.search(match.group(0))
        if ref is None:
            yield value
        else:
            yield ErrorCell(ref.group(1).decode(), int(ref.group(2)), value)


def _relationships(archive: zipfile.ZipFile, rels: str, base: str) -> dict[str, str]:
    """Relationship id → zip member, targets resolved against the part's folder."""
    if rels not in archive.namelist():
        return {}
    return {
        element.get("Id", ""): _resolve(base, element.get("Target", ""))
        for element in _elements(archive, rels, "Relationship")
    }


def _target(archive: zipfile.ZipFile, rels: str, base: str, kind: str) -> str | None:
    if rels not in archive.namelist():
        return None
    for element in _elements(archive, rels, "Relationship"):
        if element.get("Type", "").rsplit("/", 1)[-1] == kind:
            return _resolve(base, element.get("Target", ""))
    return None


def _resolve(base: str, target: str) -> str:
    if target.startswith("/"):  # absolute within the package (openpyxl writes these)
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(base, target))


def _elements(archive: zipfile.ZipFile, part: str, name: str) -> list[ElementTree.Element]:
    root = ElementTree.fromstring(archive.read(part))  # small parts: workbook and rels
    return [element for element in root.iter() if _local(element.tag) == name]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
