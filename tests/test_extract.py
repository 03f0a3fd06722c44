"""The extractors on real files: encodings, text fidelity, row numbers, malformed rows, errors."""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.errors import SourceError
from pipelines.extract import files as extract
from pipelines.extract.chunks import Chunk
from pipelines.extract.files import (
    EncodingChoice,
    csv_columns,
    detect_encoding,
    parquet_columns,
    read_csv,
    read_parquet,
)


def write(tmp_path: Path, data: bytes | str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read_all(path: Path, **options) -> tuple[list[dict], list[int], list[Chunk]]:
    chunks = list(read_csv(path, **options))
    records = [rec for chunk in chunks for rec in chunk.table.to_pylist()]
    rows = [int(n) for chunk in chunks for n in chunk.rows]
    return records, rows, chunks


def rejects_of(chunks: list[Chunk]):
    return [reject for chunk in chunks for reject in chunk.rejects]


def big_csv(rows: int, bad: dict[int, str] | None = None) -> str:
    """A CSV whose data row N (spreadsheet numbering) holds sku ``S{N}``; ``bad`` replaces rows."""
    bad = bad or {}
    lines = ["sku,name,upc"]
    for row in range(2, rows + 2):
        lines.append(bad.get(row, f"S{row},Name number {row} padded for size,0{row:011d}"))
    return "\n".join(lines) + "\n"


# --- encodings ----------------------------------------------------------------------------------

CAFE = "sku,name\nA1,Café — ø\n"


@pytest.mark.parametrize(
    ("data", "encoding", "reason"),
    [
        (CAFE.encode("utf-8"), "utf-8", "valid UTF-8"),
        (codecs.BOM_UTF8 + CAFE.encode("utf-8"), "utf-8-sig", "UTF-8 byte order mark"),
        (codecs.BOM_UTF16_LE + CAFE.encode("utf-16-le"), "utf-16", "UTF-16 little-endian"),
        (codecs.BOM_UTF16_BE + CAFE.encode("utf-16-be"), "utf-16", "UTF-16 big-endian"),
        ("sku,name\nA1,Café\n".encode("cp1252"), "cp1252", "not valid UTF-8 at byte 15 (0xE9)"),
    ],
    ids=["utf8", "utf8-bom", "utf16-le-bom", "utf16-be-bom", "cp1252"],
)
def test_detect_encoding(tmp_path, data, encoding, reason):
    choice = detect_encoding(write(tmp_path, data))
    assert isinstance(choice, EncodingChoice)
    assert choice.encoding == encoding
    assert reason in choice.reason


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (CAFE.encode("utf-8"), "Café — ø"),
        (codecs.BOM_UTF8 + CAFE.encode("utf-8"), "Café — ø"),
        (codecs.BOM_UTF16_LE + CAFE.encode("utf-16-le"), "Café — ø"),
        ("sku,name\nA1,Café\n".encode("cp1252"), "Café"),
    ],
    ids=["utf8", "utf8-bom", "utf16-le-bom", "cp1252-fallback"],
)
def test_auto_encoding_reads_text_and_clean_header(tmp_path, data, name):
    path = write(tmp_path, data)
    assert csv_columns(path) == ["sku", "name"]  # no "\ufeffsku"
    records, rows, _ = read_all(path)
    assert records == [{"sku": "A1", "name": name}]
    assert rows == [2]


def test_cp1252_fallback_reports_the_first_bad_byte_beyond_the_first_block(tmp_path):
    ascii_part = "sku,name\n" + "A1,plain\n" * 20_000  # 180 kB: crosses several scan blocks
    path = write(tmp_path, ascii_part.encode() + "B2,Crème\n".encode("cp1252"))
    choice = detect_encoding(path)
    assert choice.encoding == "cp1252"
    assert f"at byte {len(ascii_part) + 5:,} (0xE8)" in choice.reason
    assert read_all(path)[0][-1] == {"sku": "B2", "name": "Crème"}


def test_utf8_character_split_across_scan_blocks_is_valid(tmp_path):
    prefix = "sku,name\nA1," + "x" * (64 * 1024 - 13)  # puts "é" across the 64 KiB boundary
    path = write(tmp_path, prefix + "é\n")
    assert detect_encoding(path).encoding == "utf-8"


def test_truncated_utf8_at_end_of_file_falls_back(tmp_path):
    path = write(tmp_path, b"sku,name\nA1,caf\xc3")
    assert "at byte 15" in detect_encoding(path).reason


def test_explicit_encoding_is_used_as_given(tmp_path):
    path = write(tmp_path, "sku,name\nA1,Ωmega\n".encode("cp1253"))  # Greek: auto would say cp1252
    assert read_all(path)[0] == [{"sku": "A1", "name": "Ùmega"}]
    assert read_all(path, encoding="cp1253")[0] == [{"sku": "A1", "name": "Ωmega"}]
    assert csv_columns(path, encoding="cp1253") == ["sku", "name"]


def test_explicit_utf8_on_cp1252_bytes_names_file_row_and_column(tmp_path):
    path = write(tmp_path, "sku,name\nA1,ok\nA2,Café\n".encode("cp1252"))
    with pytest.raises(SourceError) as err:
        read_all(path, encoding="utf-8")
    assert (err.value.source, err.value.row, err.value.column) == (str(path), 3, "name")
    assert "not valid UTF-8" in str(err.value)
    assert str(path) in str(err.value)


def test_explicit_cp1252_on_undefined_byte_raises_source_error(tmp_path):
    path = write(tmp_path, b"sku,name\nA1,\x81\n")
    with pytest.raises(SourceError, match=r"in\.csv: byte 0x81 cannot be decoded as cp1252"):
        read_all(path, encoding="cp1252")


@pytest.mark.parametrize(
    ("mark", "body_encoding", "given", "logged"),
    [
        (codecs.BOM_UTF8, "utf-8", "cp1252", "UTF-8"),
        (codecs.BOM_UTF8, "utf-8", "latin-1", "UTF-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "cp1252", "UTF-16 little-endian"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-8", "UTF-16 big-endian"),
        (codecs.BOM_UTF8, "utf-8", "utf-8", None),
        (codecs.BOM_UTF8, "utf-8", "UTF8", None),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le", None),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16", None),
    ],
    ids=[
        "utf8-mark-cp1252-given",
        "utf8-mark-latin1-given",
        "utf16le-mark-cp1252-given",
        "utf16be-mark-utf8-given",
        "utf8-mark-utf8-given",
        "utf8-mark-UTF8-given",
        "utf16le-mark-utf16le-given",
        "utf16le-mark-utf16-given",
    ],
)
def test_a_byte_order_mark_is_never_glued_onto_the_first_column(
    tmp_path, mark, body_encoding, given, logged
):
    """The mark wins over the encoding given (and the log says so); it is never data."""
    path = write(tmp_path, mark + "Artikelnummer,Bezeichnung\nA1,Größe ø\n".encode(body_encoding))
    assert csv_columns(path, encoding=given) == ["Artikelnummer", "Bezeichnung"]
    lines: list[str] = []
    records, rows, _ = read_all(path, encoding=given, log=lines.append)
    assert records == [{"Artikelnummer": "A1", "Bezeichnung": "Größe ø"}]
    assert rows == [2]
    if logged is None:
        assert lines == []
    else:
        assert lines == [
            f"{path}: the file starts with a {logged} byte order mark, so it is read as "
            f"{logged}, not as the {given} given"
        ]


def test_encoding_that_is_not_a_text_encoding_is_named(tmp_path):
    path = write(tmp_path, "sku\nA1\n")
    with pytest.raises(SourceError, match="encoding 'hex' is not a text encoding; use auto"):
        read_all(path, encoding="hex")


def test_unknown_encoding_raises_source_error(tmp_path):
    path = write(tmp_path, "sku\nA1\n")
    for read in (
        lambda: csv_columns(path, encoding="klingon"),
        lambda: read_all(path, encoding="klingon"),
    ):
        with pytest.raises(SourceError, match="encoding 'klingon' is not known; use auto") as err:
            read()
        assert "utf-8, cp1252, latin-1, utf-16" in str(err.value)  # what is supported


# --- text fidelity ------------------------------------------------------------------------------


def test_every_column_is_exact_text_and_empty_is_null(tmp_path):
    path = write(
        tmp_path, 'sku,upc,price,qty,note\n007,012345678905,4.50, 12 ,\nX,"",1e3,,"a, ""b"""\n'
    )
    records, rows, chunks = read_all(path)
    assert all(t == pa.string() for t in chunks[0].table.schema.types)
    assert records == [
        {"sku": "007", "upc": "012345678905", "price": "4.50", "qty": " 12 ", "note": None},
        {"sku": "X", "upc": None, "price": "1e3", "qty": None, "note": 'a, "b"'},
    ]
    assert rows == [2, 3]


def test_semicolon_delimiter(tmp_path):
    path = write(tmp_path, "sku;price\nA1;4,50\n")
    assert csv_columns(path, delimiter=";") == ["sku", "price"]
    assert read_all(path, delimiter=";")[0] == [{"sku": "A1", "price": "4,50"}]


def test_quoted_newline_is_one_row_and_later_rows_stay_numbered(tmp_path):
    path = write(tmp_path, 'sku,description\r\nA1,"line one\r\nline two"\r\nA2,plain\r\n')
    records, rows, _ = read_all(path)
    assert records[0]["description"] == "line one\r\nline two"
    assert [r["sku"] for r in records] == ["A1", "A2"]
    assert rows == [2, 3]


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("cp1252", b"")],
    ids=["utf8", "utf8-bom", "cp1252"],
)
def test_crlf_in_a_quoted_value_survives_a_block_seam(tmp_path, monkeypatch, encoding, mark):
    """Arrow drops the LF of a CR LF split between two of its reads (apache/arrow#51368)."""
    monkeypatch.setattr(extract, "_READ_BYTES", 4096)
    head = 'sku,note\r\nA1,"'
    value = "x" * (4095 - len(mark) - len(head)) + "\r\nnext line Größe"
    data = mark + (head + value + '"\r\nA2,plain\r\n').encode(encoding)
    assert data[4095:4097] == b"\r\n"  # the seam between Arrow's first two reads
    records, rows, _ = read_all(write(tmp_path, data), encoding=encoding, block_bytes=4096)
    assert records == [{"sku": "A1", "note": value}, {"sku": "A2", "note": "plain"}]
    assert rows == [2, 3]


def test_blank_lines_are_skipped_and_not_counted(tmp_path):
    records, rows, _ = read_all(write(tmp_path, "sku\nA1\n\nA2\n"))
    assert [r["sku"] for r in records] == ["A1", "A2"]
    assert rows == [2, 3]


def test_header_only_file_yields_no_rows(tmp_path):
    records, rows, _ = read_all(write(tmp_path, "sku,name\n"))
    assert records == [] and rows == []


# --- chunking and row numbers -------------------------------------------------------------------


def test_small_blocks_give_several_chunks_with_contiguous_row_numbers(tmp_path):
    path = write(tmp_path, big_csv(3_000))
    records, rows, chunks = read_all(path, block_bytes=16 << 10)
    assert len(chunks) > 5
    assert all(
        isinstance(chunk.rows, np.ndarray) and chunk.rows.dtype == np.int64 for chunk in chunks
    )
    assert rows == list(range(2, 3_002))
    assert all(rec["sku"] == f"S{row}" for rec, row in zip(records, rows, strict=True))
    assert records[0]["upc"] == "000000000002"


@pytest.mark.parametrize("read_bytes", [None, 4 << 10])
def test_malformed_rows_become_rejects_and_later_rows_keep_their_numbers(
    tmp_path, monkeypatch, read_bytes
):
    """Also with Arrow reading 4 KB blocks that are joined four at a time into chunks."""
    if read_bytes:
        monkeypatch.setattr(extract, "_READ_BYTES", read_bytes)
    bad = {
        700: "S700,too few",
        1_500: "S1500,one,two,three",
        1_501: '"S1501,unclosed ""quote"" that,spans\nlines"',  # one record, one field
        2_999: "S2999",
        3_001: "S3001,last,row,too,many",
    }
    path = write(tmp_path, big_csv(3_000, bad))
    records, rows, chunks = read_all(path, block_bytes=16 << 10)

    rejects = rejects_of(chunks)
    assert [r.row for r in rejects] == sorted(bad)
    assert {r.rule for r in rejects} == {"malformed_row"}
    assert rejects[0].message == "expected 3 fields, found 2"
    assert rejects[1].message == "expected 3 fields, found 4"
    assert rejects[0].value == "S700,too few" and rejects[0].source == str(path)
    assert len(rows) == 3_000 - len(bad)
    assert rows == [n for n in range(2, 3_002) if n not in bad]
    assert all(rec["sku"] == f"S{row}" for rec, row in zip(records, rows, strict=True))
    # rejects ride with the rows around them: chunk by chunk, every row number comes in order
    in_order = [
        n for chunk in chunks for n in sorted([*chunk.rows, *(r.row for r in chunk.rejects)])
    ]
    assert in_order == list(range(2, 3_002))
    assert len([chunk for chunk in chunks if chunk.rejects]) >= 3


def test_file_of_only_malformed_rows(tmp_path):
    _, rows, chunks = read_all(write(tmp_path, "a,b\n1\n2\n"))
    assert rows == []
    assert [r.row for r in rejects_of(chunks)] == [2, 3]


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match", "column"),
    [
        (None, "file not found", None),
        (b"", "empty", None),
        (codecs.BOM_UTF8, "no header row", None),
        (b"\n\n\n", "no header row", None),
        (b"sku,name,sku\nA,b,c\n", "'sku' appears twice", "sku"),
        (b" sku ,name,sku\nA,b,c\n", "'sku' appears twice", "sku"),
    ],
    ids=["missing", "empty", "bom-only", "blank-lines", "duplicate-header", "padded-duplicate"],
)
def test_unreadable_csv_raises_source_error(tmp_path, data, match, column):
    path = tmp_path / "broken.csv"
    if data is not None:
        path.write_bytes(data)
    for read in (lambda: csv_columns(path), lambda: read_all(path)):
        with pytest.raises(SourceError, match=match) as err:
            read()
        assert str(err.value).startswith(str(path))
        assert err.value.column == column


def test_header_names_are_trimmed_and_nameless_columns_dropped(tmp_path):
    """Fixed-width exports pad names; Excel writes ';;' after formatted empty cells."""
    path = write(tmp_path, "ITNBR   ;PRICE ;;\nAS-1;0,35;;\nAS-2;0,12;x;\n;;;\nAS-3;1;;\n")
    assert csv_columns(path, delimiter=";") == ["ITNBR", "PRICE", "", ""]
    records, rows, chunks = read_all(path, delimiter=";")
    assert records == [{"ITNBR": "AS-1", "PRICE": "0,35"}, {"ITNBR": "AS-3", "PRICE": "1"}]
    assert rows == [2, 5]  # row 4 holds nothing at all: a blank line, neither read nor rejected
    (reject,) = rejects_of(chunks)
    assert (reject.row, reject.column, reject.value) == (3, "#3", "x")
    assert reject.rule == "unnamed_column"


def test_directory_and_bad_delimiter_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="directory"):
        csv_columns(tmp_path)
    path = write(tmp_path, "sku\nA\n")
    with pytest.raises(SourceError, match="delimiter ';;' is not one ASCII character; use e.g."):
        read_all(path, delimiter=";;")


# --- Parquet ------------------------------------------------------------------------------------


def test_parquet_batches_keep_stored_types_and_number_rows_from_one(tmp_path):
    table = pa.table({"sku": [f"S{i}" for i in range(1, 1_001)], "qty": list(range(1_000))})
    path = tmp_path / "in.parquet"
    pq.write_table(table, path, row_group_size=300)
    chunks = list(read_parquet(path, batch_rows=128))
    assert len(chunks) > 5 and all(chunk.table.num_rows <= 128 for chunk in chunks)
    assert parquet_columns(path) == ["sku", "qty"]
    assert chunks[0].table.schema == table.schema
    rows = np.concatenate([chunk.rows for chunk in chunks])
    assert rows.dtype == np.int64 and rows.tolist() == list(range(1, 1_001))
    skus = [s for chunk in chunks for s in chunk.table["sku"].to_pylist()]
    assert skus == [f"S{n}" for n in rows]
    assert chunks[0].source == str(path) and chunks[0].rejects == ()


@pytest.mark.parametrize(
    ("data", "match"),
    [(None, "file not found"), (b"", "0 bytes"), (b"PAR1 this is not parquet", "magic bytes")],
    ids=["missing", "empty", "corrupt"],
)
def test_unreadable_parquet_raises_source_error(tmp_path, data, match):
    path = tmp_path / "broken.parquet"
    if data is not None:
        path.write_bytes(data)
    for read in (lambda: parquet_columns(path), lambda: list(read_parquet(path))):
        with pytest.raises(SourceError, match=match) as err:
            read()
        assert str(err.value).startswith(str(path))


# --- one read before Arrow's (issue 18) ---------------------------------------------------------

EXPORTS = Path(__file__).parent / "exports"
BLOCK = 256 << 10  # file_scan's read block; its decode parts are 64 KiB


def _layouts() -> dict[str, bytes]:
    """Bytes whose first bad (or cut) UTF-8 sequence, or none, sits at the scan's seams."""
    head = b"sku,name\n"
    pad = lambda n: head + b"x" * (n - len(head))  # noqa: E731 - ASCII up to offset n
    e_acute, euro = "é".encode(), "€".encode()
    return {
        "ascii": head + b"A1,plain\n" * 70_000,
        "char-across-read-block": pad(BLOCK - 1) + e_acute + b"\n",
        "char-across-decode-part": pad(BLOCK + (64 << 10) - 2) + euro + b"\n",
        "accents-then-ascii": ("A1,Café\n" * 40_000).encode() + b"A2,plain\n" * 40_000,
        "bad-first-byte-of-block": pad(BLOCK) + b"\xe9\n",
        "bad-after-accents": ("A1,Café\n" * 40_000).encode() + b"A2,Cr\xe8me\n",
        "continuation-opens-block": pad(BLOCK) + b"\x80\n",
        "cut-at-end": pad(BLOCK - 1) + euro[:2],
        "overlong": head + b"A1,\xc0\xaf\n",
    }


@pytest.mark.parametrize("name", list(_layouts()))
def test_the_scan_counts_line_breaks_and_finds_the_first_bad_byte_as_python_does(tmp_path, name):
    from pipelines.extract.file_scan import scan_file

    data = _layouts()[name]
    scan = scan_file(write(tmp_path, data))
    try:
        data.decode("utf-8")
        expected = None
    except UnicodeDecodeError as exc:  # Python's whole-string decode is the reference
        expected = (exc.start, data[exc.start])
    assert (scan.size, scan.line_breaks, scan.utf8_error) == (
        len(data),
        data.count(b"\n"),
        expected,
    )


def _corpus() -> list[tuple[Path, dict]]:
    """The CSV exports of tests/exports with the options their jobs read them with."""
    options = {
        "sap_materials_cp1252.csv": {"delimiter": ";"},
        "sap_materials_bom.csv": {"delimiter": ";", "encoding": "cp1252"},
        "as400_padded.txt": {"delimiter": ";"},
        "excel_de_saved_as_csv.csv": {"delimiter": ";"},
        "erp_orders_de.csv": {"delimiter": ";"},
        "erp_order_lines_de.csv": {"delimiter": ";"},
        "price_list_de.csv": {"delimiter": ";"},
        "price_list_products_de.csv": {"delimiter": ";"},
        "french_tarifs.csv": {"delimiter": ";"},
        "sqlserver_items_utf16.txt": {"delimiter": "\t"},
    }
    found = sorted([*EXPORTS.glob("*.csv"), *EXPORTS.glob("*.txt")])
    return [(path, options.get(path.name, {})) for path in found]


def _as_read(chunks) -> list[tuple]:
    return [(c.table.to_pylist(), c.rows.tolist(), c.rejects, c.source) for c in chunks]


@pytest.mark.parametrize(("path", "options"), _corpus(), ids=lambda v: getattr(v, "name", ""))
def test_a_feed_reads_each_export_as_the_separate_reads_do(path, options):
    """The run's way (one scan for the size and the encoding, the header read once) gives the
    same encoding, size, columns, rows, row numbers and rejects as a separate guess, header
    read and read of the file."""
    from pipelines.extract.feed import SourceOpener, source_size
    from pipelines.jobs.specs import CsvSource

    source = CsvSource(type="csv", path=path, **options)
    logged: list[str] = []
    opener = SourceOpener(log=logged.append)
    feed = opener.feed(source)
    columns, chunks = opener.open(source, feed)
    encoding = source.encoding
    if encoding == "auto":
        encoding = detect_encoding(path).encoding
        assert logged[0] == f"{path}: reading as {encoding} ({detect_encoding(path).reason})"
    assert feed.size == source_size(path, "csv") == path.read_bytes().count(b"\n")
    assert columns == csv_columns(path, encoding=encoding, delimiter=source.delimiter)
    separately = read_csv(path, encoding=encoding, delimiter=source.delimiter, block_bytes=1 << 20)
    assert _as_read(chunks) == _as_read(separately)


def test_an_export_that_cannot_be_read_fails_the_same_way_through_a_feed(tmp_path):
    from pipelines.extract.feed import SourceOpener
    from pipelines.jobs.specs import CsvSource

    opener = SourceOpener(log=lambda _: None)
    missing = CsvSource(type="csv", path=tmp_path / "gone.csv")
    assert opener.feed(missing).size is None  # the read names the missing file
    with pytest.raises(SourceError, match="file not found"):
        opener.open(missing)
    duplicated = CsvSource(type="csv", path=write(tmp_path, b"sku,name,sku\nA,b,c\n"))
    with pytest.raises(SourceError, match="'sku' appears twice") as err:
        opener.open(duplicated, opener.feed(duplicated))
    assert (err.value.row, err.value.column) == (1, "sku")


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and the like, page cache hits included."""
    with open("/proc/self/io") as io_stats:
        return next(int(line.split()[1]) for line in io_stats if line.startswith("rchar:"))


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="Linux's /proc/self/io")
@pytest.mark.parametrize("encoding", ["auto", "utf-8"])
def test_a_feed_reads_its_file_once_before_arrow_reads_it(tmp_path, encoding):
    """Sizing the feed, guessing its encoding and reading its header take one pass over the
    file, not one each: in all, the file's bytes are read about twice (scan, then Arrow)."""
    from pipelines.extract.feed import SourceOpener
    from pipelines.jobs.specs import CsvSource

    path = write(tmp_path, big_csv(120_000))  # ~7 MB: the header block (1 MiB) is small beside it
    source = CsvSource(type="csv", path=path, encoding=encoding)
    opener = SourceOpener(log=lambda _: None)
    before = _bytes_read()
    feed = opener.feed(source)
    _columns, chunks = opener.open(source, feed)
    rows = sum(len(chunk.table) for chunk in chunks)
    read = _bytes_read() - before
    assert rows == 120_000 and feed.size == 120_001
    size = path.stat().st_size
    assert 2 * size <= read < 2 * size + (1 << 20)  # separate reads: 3-4 times the size
