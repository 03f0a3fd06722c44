"""Excel sources (``source: {type: xlsx, ...}``) over real HTTP against the emulator.

The workbook ``tests/exports/erp_workbook.xlsx`` (made by ``tests/exports/make_workbooks.py``)
is shaped like a hand-kept PIM/ERP workbook: a notes sheet first, a title block above the
product header (``header_row: 3``), typed cells (text SKUs and UPCs with leading zeros, a SKU
typed as a number, prices, dates, datetimes, booleans), error cells as Excel saves them (a
typed ``#N/A``, a formula's ``#DIV/0!``), a formula whose result has float noise, an empty
row, and orders, their lines, a price list and customers on sheets of their own. Small
workbooks for the error messages are written in ``tmp_path`` with openpyxl.
"""

from __future__ import annotations

import csv
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from helpers import API_KEY, PRODUCTS_JOB, all_products, run_sync
from openpyxl import Workbook
from orders_helpers import CUSTOMERS, ORDERS_CSV, edited_job, order, prepare_target, run_entity

from pipelines.cli import main
from pipelines.errors import SourceError
from pipelines.extract import excel, workbook_xml
from pipelines.extract.cell_text import number_text
from pipelines.run.commands import PlanSettings, plan, validate

WORKBOOK = Path(__file__).parent / "exports" / "erp_workbook.xlsx"
PRODUCTS = f"{WORKBOOK}, sheet 'Products'"
SHEETS = "'Read me', 'Products', 'Orders', 'Lines', 'Prices', 'Customers'"


def products_job(tmp_path: Path, **source) -> Path:
    """The sample products job reading the workbook's product sheet (or ``source``)."""
    spec = yaml.safe_load(PRODUCTS_JOB.read_text())
    spec["source"] = {
        "type": "xlsx",
        "path": str(WORKBOOK),
        "sheet": "Products",
        "header_row": 3,
        **source,
    }
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    return job


def rejects(path: str | None) -> list[tuple]:
    with open(path, encoding="utf-8", newline="") as file:
        return [
            (r["source"], int(r["row"]), r["external_id"], r["column"], r["rule"], r["message"])
            for r in csv.DictReader(file)
        ]


def read(path: Path, **options) -> tuple[list[str], list]:
    names, chunks = excel.open_sheet(path, **options)
    return names, list(chunks)


def workbook(path: Path, *rows: list) -> Path:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


# --- the reader -------------------------------------------------------------------------------


def test_cells_arrive_as_the_sheet_types_them_numbered_as_excel_shows_them():
    names, chunks = read(WORKBOOK, sheet="Products", header_row=3)
    assert names[:3] == ["sku", "name", "description"] and len(names) == 18
    rows = np.concatenate([c.rows for c in chunks]).tolist()
    table = [row for c in chunks for row in c.table.to_pylist()]
    assert rows == [4, 5, 8, 9, 11]  # row 6 is empty: skipped, not renumbered
    assert table[0] == {
        "sku": "00123", "name": "Hex Bolt M8", "description": "Zinc-plated hex bolt",
        "category": "Fasteners", "price_retail": "162.59", "price_wholesale": "120.5",
        "price_wholesale_50": "110", "qty_on_hand": "2493", "min_order_qty": "10",
        "weight": "1.5", "weight_unit": "lb", "upc": "012345678905", "status": "A",
        "color": "Silver", "size": "M8", "launched": "2024-05-30",
        "updated_at": "2024-05-30T18:05:00", "web_visible": "true",
    }  # fmt: skip
    assert table[1]["description"] is None and table[1]["web_visible"] == "false"
    assert table[2]["price_retail"] == "n/a"  # text stays text: the mapper rejects it
    assert table[3]["sku"] == "126"  # a SKU typed as a number: Excel keeps no zeros for it
    assert table[4]["price_retail"] == "0.3"  # =0.1+0.2 as Excel shows it, not 0.30000000000000004
    assert table[4]["updated_at"] == "2019-12-31T23:59:59"
    assert [(r.source, r.row, r.column, r.rule, r.message) for c in chunks for r in c.rejects] == [
        (PRODUCTS, 7, "price_wholesale", "excel_error", "F7 holds #N/A"),
        (PRODUCTS, 10, "qty_on_hand", "excel_error", "H10 holds #DIV/0!"),
    ]


def test_chunks_are_bounded_and_rejects_travel_with_their_stretch():
    _, chunks = read(WORKBOOK, sheet="Products", header_row=3, chunk_rows=2)
    assert [(c.rows.tolist(), [r.row for r in c.rejects]) for c in chunks] == [
        ([4, 5], []),
        ([], [7]),  # row 6 empty, row 7 rejected
        ([8, 9], []),
        ([11], [10]),
    ]


def test_a_sheet_is_named_or_counted_from_one():
    by_name = read(WORKBOOK, sheet="Lines")
    by_place = read(WORKBOOK, sheet=4)
    assert by_name[0] == by_place[0] == ["order_id", "line_no", "sku", "qty", "unit_price"]
    assert [c.table for c in by_name[1]] == [c.table for c in by_place[1]]
    assert by_place[1][0].source == f"{WORKBOOK}, sheet 4"
    assert by_name[1][0].rows.tolist() == [2, 3, 5, 6]
    assert by_name[1][0].rejects[0].value == "9003,1,PWT-12677-SV,,73.46"  # its key is readable
    assert read(WORKBOOK)[0] == ["Acme PIM export: products, orders and their lines"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (123.0, "123"),
        (-0.0, "0"),
        (162.59, "162.59"),
        (0.1 + 0.2, "0.3"),  # 15 significant digits, as Excel keeps and shows
        (1 / 3, "0.333333333333333"),
        (1e-05, "0.00001"),
        (2.5e-07, "0.00000025"),
        (1e15, "1000000000000000"),
        (1.234567890123457e19, "12345678901234600000"),
        (-12.5, "-12.5"),
    ],
    ids=lambda v: str(v),
)
def test_numbers_read_as_excel_shows_them(value, text):
    assert number_text(np.array([value, 7.0])).to_pylist() == [text, "7"]


def test_error_cells_are_found_whatever_the_block_boundaries(monkeypatch):
    def found() -> list:
        with zipfile.ZipFile(WORKBOOK) as archive:
            return list(workbook_xml.error_cells(archive, "xl/worksheets/sheet2.xml"))

    whole = found()
    assert [(e.ref, e.value) for e in whole] == [("F7", "#N/A"), ("H10", "#DIV/0!")]
    for block in (7, 64, 500):
        monkeypatch.setattr(workbook_xml, "_SCAN_BLOCK", block)
        assert found() == whole


def test_prefixed_elements_and_single_quotes_read_the_same(tmp_path):
    """The OpenXML SDK writes ``<x:c>`` with a prefix; some writers quote with '."""
    sheet = (
        b'<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<x:dimension ref='A1:C9'/><x:sheetData>"
        b"<x:row r='2'><x:c r='B2' t='e'><x:f>VLOOKUP(A2,Z:Z,2,0)</x:f><x:v>#N/A</x:v></x:c>"
        b"</x:row></x:sheetData></x:worksheet>"
    )
    path = tmp_path / "sdk.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("s.xml", sheet)
    with zipfile.ZipFile(path) as archive:
        assert [(e.ref, e.value) for e in workbook_xml.error_cells(archive, "s.xml")] == [
            ("B2", "#N/A")
        ]
        assert workbook_xml.dimension_rows(archive, "s.xml") == 9


def test_header_problems_name_the_column_letter(tmp_path):
    gap = workbook(tmp_path / "gap.xlsx", ["sku", "name", None, "price"], ["A1", "x", 1, 2])
    with pytest.raises(SourceError) as err:
        read(gap)
    assert (
        str(err.value) == f"{gap}, sheet 1, row 1: column C has no name; give every column a name"
    )
    twice = workbook(tmp_path / "twice.xlsx", [None, "sku", "name", "sku"])  # table starts at B
    with pytest.raises(SourceError, match=r"'sku' appears twice \(columns B and D\)"):
        read(twice)
    with pytest.raises(SourceError, match="row 5 is empty .*header_row must be the row"):
        read(twice, header_row=5)
    blank = workbook(tmp_path / "blank.xlsx")
    with pytest.raises(SourceError, match="sheet 1: the sheet is empty; expected column names"):
        read(blank)


def test_a_value_under_a_column_without_a_name_rejects_its_row(tmp_path):
    path = workbook(tmp_path / "notes.xlsx", ["sku", "price"], ["A1", 2], ["A2", 3, "call Bob"])
    names, chunks = read(path)
    assert names == ["sku", "price"] and chunks[0].rows.tolist() == [2]
    (reject,) = chunks[0].rejects
    assert (reject.row, reject.column, reject.rule, reject.value) == (
        3, None, "unnamed_column", "A2,3"
    )  # fmt: skip
    assert reject.message == "C3 holds a value, but column C has no name"


def test_a_rejected_row_keeps_its_key_however_long_its_other_cells(tmp_path):
    path = workbook(tmp_path / "long.xlsx", ["html", "price", "sku"], ["<p>" * 2000, "#N/A", "K1"])
    (reject,) = read(path)[1][0].rejects
    assert reject.value == "<p>" * 66 + "<p,,K1"  # each cell cut at 200 characters
    assert (reject.row, reject.column, reject.message) == (2, "price", "B2 holds #N/A")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _docx_like(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return path


NOT_A_ZIP = "is not an Excel workbook (.xlsx): it is not a zip archive"
OLD_OR_LOCKED = (
    "is an Excel 97-2003 (.xls) or a password-protected workbook; save it in Excel as an "
    ".xlsx workbook without a password"
)
NO_WORKBOOK = (
    "is not an Excel workbook (.xlsx): it holds no .xlsx workbook part; save it in Excel as "
    "an .xlsx workbook"
)
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)  # .xls, or any encrypted Office file


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _write(p, b"sku,price\nA1,2\n"), NOT_A_ZIP),
        (lambda p: _write(p, b""), "the file is empty (0 bytes)"),
        (lambda p: _write(p, OLE), OLD_OR_LOCKED),
        (_docx_like, NO_WORKBOOK),
        (lambda p: p, "file not found"),
    ],
    ids=["csv", "empty", "xls", "docx", "missing"],
)
def test_a_file_that_is_not_a_workbook_is_named(tmp_path, make, message):
    path = make(tmp_path / "export.xlsx")
    with pytest.raises(SourceError) as err:
        read(path)
    assert str(err.value) == f"{path}, sheet 1: {message}"


# --- jobs over HTTP ---------------------------------------------------------------------------


def test_products_from_a_named_sheet_below_a_title_block(emulator, api, tmp_path):
    summary = run_sync(products_job(tmp_path), emulator, tmp_path)
    assert summary.balanced
    assert (summary.rows_read, summary.created, summary.rejected) == (7, 4, 3)
    assert summary.source_size == 8  # rows 4-11 by the sheet's dimension: the row-count gate's
    products = all_products(api)
    assert sorted(products) == ["00123", "00124", "00128", "126"]
    bolt = products["00123"]
    assert (bolt["sku"], bolt["upc"], bolt["price"], bolt["weight"]) == (
        "00123", "012345678905", 162.59, 1.5
    )  # fmt: skip
    assert (bolt["quantityOnHand"], bolt["minimumOrderQuantity"], bolt["active"]) == (
        2493,
        10,
        True,
    )
    assert [(p["tier"], p["price"], p["atQuantity"]) for p in bolt["prices"]] == [
        ("Retail", 162.59, 1), ("Wholesale", 120.5, 1), ("Wholesale", 110, 50)
    ]  # fmt: skip
    assert products["00128"]["price"] == 0.3 and products["126"]["active"] is False
    assert rejects(summary.rejects_path) == [
        (PRODUCTS, 7, "00125", "price_wholesale", "excel_error", "F7 holds #N/A"),
        (PRODUCTS, 8, "SAF-0007", "price_retail", "not_a_number",
         "price_retail: is not a valid decimal"),
        (PRODUCTS, 10, "00127", "qty_on_hand", "excel_error", "H10 holds #DIV/0!"),
    ]  # fmt: skip
    again = run_sync(products_job(tmp_path), emulator, tmp_path)  # the same workbook: no-op
    assert (again.unchanged, again.created, again.updated, again.requests) == (4, 0, 0, 0)


def test_number_cells_read_back_exactly_under_a_job_s_number_style(emulator, api, tmp_path):
    """A German job reads text as 1.234,5: a number cell of 1.5 must not become 15."""
    spec = yaml.safe_load(products_job(tmp_path).read_text())
    spec["number"] = {"decimal": ",", "thousands": ".", "columns": {"weight": {"decimal": "."}}}
    job = tmp_path / "german.yml"
    job.write_text(yaml.safe_dump(spec))
    summary = run_sync(job, emulator, tmp_path)
    assert (summary.rows_read, summary.created, summary.rejected) == (7, 4, 3)
    products = all_products(api)
    assert [products["00123"][f] for f in ("price", "weight", "quantityOnHand")] == [
        162.59, 1.5, 2493
    ]  # fmt: skip
    assert (products["00124"]["weight"], products["00128"]["price"]) == (0.75, 0.3)
    _, chunks = read(WORKBOOK, sheet="Products", header_row=3, decimal_mark=lambda c: ",")
    assert chunks[0].table.column("weight").to_pylist() == ["1,5", "0,75", "0,2", "0,4", "0,05"]


def test_a_price_list_sheet_prices_the_products(emulator, api, tmp_path):
    spec = yaml.safe_load(products_job(tmp_path).read_text())
    del spec["prices"]
    spec["price_list"] = {
        "source": {"type": "xlsx", "path": str(WORKBOOK), "sheet": "Prices"},
        "key": "sku",
    }
    job = tmp_path / "priced.yml"
    job.write_text(yaml.safe_dump(spec))
    summary = run_sync(job, emulator, tmp_path)
    bolt = all_products(api)["00123"]
    assert [(p["tier"], p["price"], p["atQuantity"]) for p in bolt["prices"]] == [
        ("Retail", 162.59, 1), ("Wholesale", 120.5, 1), ("Wholesale", 110, 50)
    ]  # fmt: skip
    prices = f"{WORKBOOK}, sheet 'Prices'"
    assert (prices, 6, "price", "excel_error", "D6 holds #REF!") in [
        (s, row, column, rule, message)
        for s, row, _, column, rule, message in rejects(summary.rejects_path)
    ]


def test_orders_from_two_sheets_headers_and_lines(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    job = edited_job(
        tmp_path,
        ORDERS_CSV,
        source={"type": "xlsx", "path": str(WORKBOOK), "sheet": "Orders"},
        items__source={"type": "xlsx", "path": str(WORKBOOK), "sheet": "Lines"},
        fields__orderDate="order_date",  # a datetime cell: ISO text, no format needed
    )
    summary = run_entity(job, emulator, tmp_path)
    assert summary.balanced and (summary.rows_read, summary.created, summary.rejected) == (3, 2, 1)
    first, second = order(api, "SO-900001"), order(api, "SO-900002")
    assert first["orderDate"] == "2026-11-30T15:15:00Z"  # 09:15 in Chicago
    assert second["orderDate"] == "2026-11-30T19:45:30Z"
    assert [(i["sku"], i["quantity"], i["price"]) for i in second["items"]] == [
        ("PWT-12677-SV", 24, Decimal("73.46")), ("PLB-15691-SV", 2, Decimal("12.345"))
    ]  # fmt: skip
    assert second["shippingDetails"]["shippingTotal"] == Decimal("185")
    assert [(i["sku"], i["quantity"]) for i in first["items"]] == [("PLB-15691-SV", 50)]
    assert order(api, "SO-900003") is None  # one of its lines is #N/A: not sent short
    found = {(r[0], r[1], r[4]) for r in rejects(summary.rejects_path)}
    assert found == {
        (f"{WORKBOOK}, sheet 'Lines'", 4, "excel_error"),
        (f"{WORKBOOK}, sheet 'Orders'", 4, "malformed_line"),
    }


def test_customers_from_a_sheet(emulator, api, tmp_path):
    job = edited_job(
        tmp_path,
        CUSTOMERS,
        job="customers_xlsx",
        source={"type": "xlsx", "path": str(WORKBOOK), "sheet": "Customers"},
    )
    summary = run_entity(job, emulator, tmp_path)
    assert summary.balanced and (summary.rows_read, summary.created) == (2, 2)
    cedar = api.get("/api/customers/CUST-7001").json()
    assert (cedar["companyPhone"], cedar["pricing"]) == ("5555624970", "Distributor")
    assert api.get("/api/customers/CUST-7002").json()["companyPhone"] == "555-488-1210"


def test_validate_and_plan_read_an_xlsx_job(emulator, tmp_path):
    settings = PlanSettings(
        job_path=products_job(tmp_path),
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY},
        log=lambda _: None,
    )
    checked = validate(settings).summary
    assert (checked.rows_read, checked.rejected, checked.source_size) == (7, 3, 8)
    planned = plan(settings)
    assert (planned.rows_read, planned.create, planned.reject) == (7, 4, 3)


def test_a_missing_sheet_lists_the_workbook_s_sheets(emulator, tmp_path):
    job = products_job(tmp_path, sheet="Produkte")
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["validate", str(job), "--target", emulator.base_url])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        f"{WORKBOOK}, sheet 'Produkte': the workbook has no sheet named 'Produkte'; "
        f"its sheets: {SHEETS}"
    ) in " ".join(result.output.split())
    with pytest.raises(SourceError, match=f"the workbook has 6 sheet\\(s\\), no sheet 9: {SHEETS}"):
        read(WORKBOOK, sheet=9)
