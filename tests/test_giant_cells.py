"""Product files with cells larger than the CSV reader's block, end to end over real HTTP.

Arrow reads CSV in 256 KiB blocks and cannot parse a record longer than one; the reader then
reads that stretch on its own (``extract.files``). Every file here is generated in tmp_path.
"""

from __future__ import annotations

import codecs
import csv
import io
import random
import re
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from helpers import API_KEY, all_products, job_for, run_sync

from pipelines.emulator import Emulator, EmulatorSettings
from pipelines.errors import SourceError
from pipelines.extract import files, record_bounds
from pipelines.extract.files import read_csv
from pipelines.extract.record_bounds import RecordBounds
from pipelines.load.sender import Sender

HEADER = (
    "sku,name,description,category,price_retail,price_wholesale,price_wholesale_50,"
    "qty_on_hand,min_order_qty,weight,weight_unit,upc,status,color,size"
)
MIB = 1 << 20


def html(size: int, seed: str = "") -> str:
    """Product copy of ``size`` characters: markup with quotes, commas and line breaks, and
    no space at either end (the mapper trims values)."""
    block = (
        f'<div class="spec {seed}"><p>Heavy-duty, "weatherproof" body; 3/8" drive.</p>\n'
        '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"/></div>\n'
    )
    return (block * (size // len(block) + 1))[: size - 1] + "."


def quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def product(sku: str, description: str = "Plain copy.", price: str = "12.50") -> str:
    return (
        f"{sku},Name of {sku},{quoted(description)},Hand Tools,{price},9.00,,5,1,1.25,lb,"
        f"0{sum(map(ord, sku)):011d},A,Red,M"
    )


def write_catalog(path: Path, rows: list[str], *, newline: str = "\n", end: str = "\n") -> Path:
    path.write_text(newline.join([HEADER, *rows]) + end, encoding="utf-8", newline="")
    return path


def rejects_of(summary) -> dict[int, dict[str, str]]:
    if summary.rejects_path is None:
        return {}
    with open(summary.rejects_path, encoding="utf-8", newline="") as f:
        return {int(r["row"]): r for r in csv.DictReader(f)}


def sync(emulator, tmp_path: Path, source: Path, **options):
    return run_sync(job_for(tmp_path, source), emulator, tmp_path, **options)


# --- over HTTP ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [2 * MIB, 20 * MIB], ids=["2MiB", "20MiB"])
def test_a_giant_description_lands_exactly_and_later_rows_keep_their_numbers(
    emulator, api, tmp_path, size
):
    giant = html(size)
    rows = [product(f"GC-{i:03d}") for i in range(2, 40)]  # rows 2..39
    rows += [product("GC-GIANT", giant)]  # row 40
    rows += [product(f"GC-{i:03d}") for i in range(41, 60)]
    rows += ["GC-BAD,too,few,fields"]  # row 60: malformed
    rows += [product("GC-NEG", price="-1.00")]  # row 61: fails a row check
    rows += [product(f"GC-{i:03d}") for i in range(62, 70)]
    source = write_catalog(tmp_path / "giant.csv", rows)

    summary = sync(emulator, tmp_path, source)

    assert summary.balanced
    assert (summary.rows_read, summary.rejected, summary.created) == (68, 2, 66)
    rejects = rejects_of(summary)
    assert {row: r["rule"] for row, r in rejects.items()} == {
        60: "malformed_row",
        61: "negative_price",
    }
    assert rejects[61]["external_id"] == "GC-NEG"
    held = all_products(api)
    assert len(held) == 66
    assert held["GC-GIANT"]["description"] == giant
    assert held["GC-041"]["description"] == "Plain copy."


@pytest.mark.parametrize(
    ("layout", "newline", "end"),
    [
        ("first", "\n", "\n"),
        ("last", "\r\n", ""),  # the file ends inside the giant record's last line
        ("consecutive", "\n", "\n"),
        ("alternating", "\r\n", "\r\n"),
    ],
)
def test_giant_records_anywhere_in_the_file(emulator, api, tmp_path, layout, newline, end):
    # multi-line copy with doubled quotes, of several sizes around the 256 KiB block
    giants = {f"GC-G{n}": html(size, seed=str(n)) for n, size in enumerate([300_000, 700_000])}
    giants["GC-G2"] = html(3 * MIB, seed="2").replace("\n", "\r\n")
    small = [product(f"GC-{i:03d}") for i in range(30)]
    big = [product(sku, text) for sku, text in giants.items()]
    rows = {
        "first": big[::-1] + small,  # 3 MiB at row 2: longer than the header's 1 MiB block
        "last": small + big,
        "consecutive": small[:15] + big + small[15:],
        "alternating": [r for pair in zip(big, small, strict=False) for r in pair] + small[3:],
    }[layout]
    source = write_catalog(tmp_path / f"{layout}.csv", rows, newline=newline, end=end)

    summary = sync(emulator, tmp_path, source)

    assert summary.balanced
    assert (summary.rows_read, summary.rejected, summary.created) == (33, 0, 33)
    held = all_products(api)
    assert {sku: held[sku]["description"] for sku in giants} == giants


def test_a_row_over_the_hard_limit_is_rejected_alone(emulator, api, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_ROW_BYTES", 1 * MIB)
    rows = [product(f"GC-{i:03d}") for i in range(2, 10)]
    rows += [product("GC-HUGE", html(int(1.5 * MIB)))]  # row 10
    rows += [product("GC-FITS", html(MIB // 2))]  # row 11: long, but within the limit
    rows += [product(f"GC-{i:03d}") for i in range(12, 20)]
    rows += ["GC-BAD,short"]  # row 20
    source = write_catalog(tmp_path / "huge.csv", rows)
    huge_bytes = len(rows[8].encode()) + 1  # with its line break

    summary = sync(emulator, tmp_path, source)

    assert summary.balanced
    assert (summary.rows_read, summary.rejected, summary.created) == (19, 2, 17)
    rejects = rejects_of(summary)
    assert {row: r["rule"] for row, r in rejects.items()} == {
        10: "row_too_large",
        20: "malformed_row",
    }
    assert rejects[10]["message"] == (
        f"the row is {huge_bytes:,} bytes, more than the {MIB:,} a row may have"
    )
    assert rejects[10]["value"].startswith("GC-HUGE,Name of GC-HUGE,")
    assert len(rejects[10]["value"]) == 500
    held = all_products(api)
    assert "GC-HUGE" not in held and held["GC-FITS"]["description"] == html(MIB // 2)
    assert len(held) == 17


def test_a_record_larger_than_any_request_fails_alone_unsent(emulator, api, tmp_path):
    """Over the API's 30,000,000-byte limit (and the job's 4 MB batch.max_bytes): the record
    fails with its size before any upload; the records of its batch land."""
    rows = [product(f"GC-{i:03d}") for i in range(2, 6)]
    rows += [product("GC-31MB", html(31_000_000))]
    rows += [product(f"GC-{i:03d}") for i in range(7, 10)]
    source = write_catalog(tmp_path / "31mb.csv", rows)

    summary = sync(emulator, tmp_path, source)

    assert summary.balanced
    assert (summary.rows_read, summary.created, summary.failed) == (8, 7, 1)
    reject = rejects_of(summary)[6]
    assert (reject["rule"], reject["external_id"]) == ("api_failed", "GC-31MB")
    assert re.fullmatch(
        r"the record alone is 3\d,\d{3},\d{3} bytes of JSON, more than the 30,000,000 bytes "
        r"the API accepts in one request: not sent; shorten its longest field or leave that "
        r"field out of the job",
        reject["message"],
    )
    assert "GC-31MB" not in all_products(api)
    assert not emulator.stats()["requests"]["POST /api/products/bulk"].get("413")


def test_a_target_with_a_lower_body_limit_refuses_only_the_big_record(tmp_path):
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, max_body_bytes=1_000_000)
    rows = [product(f"GC-{i:03d}") for i in range(2, 30)]
    rows[10] = product("GC-2MB", html(2 * MIB))  # row 12
    source = write_catalog(tmp_path / "2mb.csv", rows)
    with Emulator.start(settings) as emulator:
        summary = sync(emulator, tmp_path, source)
        held = _products(emulator)
    assert summary.balanced
    assert (summary.rows_read, summary.created, summary.failed) == (28, 27, 1)
    reject = rejects_of(summary)[12]
    assert reject["external_id"] == "GC-2MB"
    assert "more than the API accepts in one request: HTTP 413" in reject["message"]
    assert "GC-2MB" not in held and len(held) == 27


def test_the_sender_fails_an_item_too_large_for_any_request_and_sends_the_rest(emulator):
    items = [
        {"externalId": f"E{i}", "sku": f"S{i}", "name": f"n{i}", "price": 1.5} for i in range(4)
    ]
    items[2]["description"] = "x" * 5_000
    bodies = [orjson.dumps(item) for item in items]
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as client:
        result = Sender(client, "/api/products/bulk", max_body_bytes=2_000).send(bodies)
    assert [o.status for o in result.outcomes] == ["created", "created", "failed", "created"]
    assert result.outcomes[2].message == (
        f"the record alone is {len(bodies[2]):,} bytes of JSON, more than the 2,000 bytes the "
        "API accepts in one request: not sent; shorten its longest field or leave that field "
        "out of the job"
    )
    assert result.requests == 1
    assert set(_products(emulator)) == {"E0", "E1", "E3"}


def _products(emulator) -> dict[str, dict]:
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as api:
        return all_products(api)


# --- the reader alone ---------------------------------------------------------------------------


def test_a_long_row_is_read_and_logged(tmp_path):
    giant = html(2 * MIB)
    source = write_catalog(tmp_path / "log.csv", [product("A"), product("B", giant)])
    lines: list[str] = []
    chunks = list(read_csv(source, encoding="utf-8", log=lines.append))
    records = [r for c in chunks for r in c.table.to_pylist()]
    assert [r["description"] for r in records] == ["Plain copy.", giant]
    assert [int(n) for c in chunks for n in c.rows] == [2, 3]
    size = len(product("B", giant).encode()) + 1
    assert lines == [
        f"{source}: row 3 is {size:,} bytes, longer than the 262,144-byte read block: "
        f"read it in one {size:,}-byte block"
    ]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_long_rows_in_one_byte_encodings(tmp_path, encoding):
    giant = 'Größe: 3/8" – ' * 40_000  # ~560 kB, every line an accented one
    giant = giant.replace("–", "-") if encoding == "latin-1" else giant
    rows = [product("A"), product("B", giant), "C,bad", product("D")]
    source = tmp_path / "one-byte.csv"
    source.write_bytes("\n".join([HEADER, *rows]).encode(encoding) + b"\n")
    chunks = list(read_csv(source, encoding=encoding))
    records = {r["sku"]: r for c in chunks for r in c.table.to_pylist()}
    assert records["B"]["description"] == giant
    assert [int(n) for c in chunks for n in c.rows] == [2, 3, 5]
    assert [(r.row, r.rule) for c in chunks for r in c.rejects] == [(4, "malformed_row")]


def test_a_long_row_in_utf16_names_its_row_and_the_way_out(tmp_path):
    rows = [product("A"), product("B", html(600_000))]
    source = tmp_path / "utf16.csv"
    source.write_bytes(codecs.BOM_UTF16_LE + "\n".join([HEADER, *rows]).encode("utf-16-le"))
    with pytest.raises(SourceError) as err:
        list(read_csv(source, encoding="utf-16"))
    assert err.value.row == 3
    assert "longer than the 262,144-byte read block" in str(err.value)
    assert "not utf-16; save the file as UTF-8" in str(err.value)


def test_an_unclosed_quote_is_a_row_too_large_that_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_ROW_BYTES", 300_000)
    unquoted = [product(f"C{i}").replace('"', "") for i in range(10_000)]  # 0.8 MB
    rows = [product("A"), 'B,"unclosed', *unquoted]
    source = write_catalog(tmp_path / "unclosed.csv", rows)
    chunks = list(read_csv(source, encoding="utf-8"))
    assert [int(n) for c in chunks for n in c.rows] == [2]
    [reject] = [r for c in chunks for r in c.rejects]
    assert (reject.row, reject.rule) == (3, "row_too_large")
    assert reject.message.endswith("; it runs to the end of the file: is a quote left open?")


# --- record boundaries in raw bytes -------------------------------------------------------------


def arrow_records(data: bytes) -> int:
    """How many records pyarrow parses in ``data`` (good ones and malformed ones)."""
    skipped = []
    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=["a", "b"], block_size=len(data) + 16),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, invalid_row_handler=lambda row: skipped.append(1) or "skip"
        ),
        convert_options=pacsv.ConvertOptions(column_types={"a": pa.string(), "b": pa.string()}),
    )
    return table.num_rows + len(skipped)


@pytest.mark.parametrize("window", [1, 2, 3, 1 << 20], ids=lambda w: f"window{w}")
def test_record_bounds_agree_with_arrow_on_every_record(monkeypatch, window):
    """Random bytes over the characters that matter: quotes where Arrow takes them literally
    (``a"b``), doubled quotes, CR, LF, CR LF, empty lines, an unclosed quote at the end; and
    windows small enough that every one of them falls on a window's edge."""
    monkeypatch.setattr(record_bounds, "_WINDOW", window)
    rng = random.Random(14)
    alphabet = [b"a", b",", b'"', b'"', b"\n", b"\r", b"\r\n", "é".encode(), b" "]
    for _ in range(300):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        bounds = RecordBounds(io.BytesIO(data), ",")
        ends, position = [], 0
        while position < len(data) and data[position:].strip(b"\r\n"):
            _, position = bounds.record(position)
            ends.append(position)
        assert len(ends) == arrow_records(data), data
        assert [bounds.skip(0, n) for n in range(1, len(ends) + 1)] == ends, data
        for start, end in zip([0, *ends], ends, strict=False):
            assert arrow_records(data[start:end]) == 1, (data, start, end)
