"""Make the Excel fixtures of tests/test_excel.py: ``erp_workbook.xlsx``, shaped like a
hand-kept PIM/ERP workbook (a notes sheet first, a title block above the product header,
typed cells, error cells, an empty row, orders and their lines on two sheets).

openpyxl writes shared strings and a ``<dimension>`` as Excel does, but neither a formula's
cached value nor an error that a formula returned: those cells are rewritten in the sheet's
XML afterwards, as Excel saves them (``<f>`` and ``<v>`` together). The file is committed so
that tests need no writer; run this again after changing it::

    .venv/bin/python tests/exports/make_workbooks.py
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).parent
WORKBOOK = HERE / "erp_workbook.xlsx"
STAMP = (2026, 12, 1, 6, 0, 0)  # zip entry times: the same bytes on every run

PRODUCT_HEADER = [
    "sku", "name", "description", "category", "price_retail", "price_wholesale",
    "price_wholesale_50", "qty_on_hand", "min_order_qty", "weight", "weight_unit", "upc",
    "status", "color", "size", "launched", "updated_at", "web_visible",
]  # fmt: skip
D, T = dt.date, dt.datetime
PRODUCTS = [  # rows 4.. (row 6 is left empty); the column letters are A..R
    ["00123", "Hex Bolt M8", "Zinc-plated hex bolt", "Fasteners", 162.59, 120.5, 110, 2493,
     10, 1.5, "lb", "012345678905", "A", "Silver", "M8", D(2024, 5, 30), T(2024, 5, 30, 18, 5),
     True],
    ["00124", "Claw Hammer", None, "Hand Tools", 24.99, 19.99, None, 12, 1, 0.75, "kg",
     "036000291452", "A", "Black", "One Size", D(2023, 1, 2), T(2023, 1, 2, 8, 30), False],
    None,
    ["00125", "Safety Glasses", "Anti-fog", "Safety", 9.5, "#N/A", None, 300, 1, 0.1, "lb",
     "012345678912", "A", "Clear", "One Size", D(2022, 7, 1), T(2022, 7, 1, 9, 0), True],
    ["SAF-0007", "Work Gloves", "Nitrile", "Safety", "n/a", 4.2, None, 80, 1, 0.2, "lb",
     "012345678929", "A", "Blue", "L", D(2022, 7, 1), T(2022, 7, 1, 9, 0), True],
    [126, "Tape Measure", "25 ft", "Hand Tools", 14, 11, None, 40, 1, 0.4, "lb",
     "012345678936", "I", "Yellow", "25 ft", D(2021, 3, 15), T(2021, 3, 15, 12, 0), False],
    ["00127", "Cable Tie", "Pack of 100", "Electrical", 6.25, 5, None, "=1/0", 1, 0.3, "lb",
     "012345678943", "A", "Black", "8 in", D(2020, 1, 1), T(2020, 1, 1, 0, 0, 1), True],
    ["00128", "Wood Screw", "Box of 50", "Fasteners", "=0.1+0.2", 0.25, None, 900, 5, 0.05,
     "lb", "012345678950", "A", "Brass", "#8", D(2019, 12, 31), T(2019, 12, 31, 23, 59, 59),
     True],
]  # fmt: skip
# As Excel saves them: a formula that failed, one whose result has float noise.
FORMULA_CELLS = {
    b'<c r="H10"><f>1/0</f><v /></c>': b'<c r="H10" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
    b'<c r="E11"><f>0.1+0.2</f><v /></c>': b'<c r="E11"><f>0.1+0.2</f>'
    b"<v>0.30000000000000004</v></c>",
}

ORDER_HEADER = [
    "order_id", "order_number", "customer_number", "order_date", "status", "po_number",
    "channel", "currency", "terms", "notes", "ship_method", "ship_total", "rep_number",
]  # fmt: skip
ORDERS = [
    [9001, "SO-900001", "CUST-0192", T(2026, 11, 30, 9, 15), "O", "PO-1", "Phone", "USD",
     "Net30", None, "FedEx 2Day", 34.5, "SR-019"],
    [9002, "SO-900002", "CUST-0050", T(2026, 11, 30, 13, 45, 30), "S", "PO-2", "Web", "USD",
     "NET60", "leave at dock", "LTL Freight", 185, "SR-023"],
    [9003, "SO-900003", "CUST-0001", T(2026, 12, 1, 7, 0), "O", "PO-3", "Phone", "USD",
     "Net30", None, "FedEx 2Day", 12, "SR-004"],
]  # fmt: skip
LINE_HEADER = ["order_id", "line_no", "sku", "qty", "unit_price"]
LINES = [  # in no order, as files are; order 9003 has a line whose quantity is #N/A
    [9002, 1, "PWT-12677-SV", 24, 73.46],
    [9001, 1, "PLB-15691-SV", 50, 60.04],
    [9003, 1, "PWT-12677-SV", "#N/A", 73.46],
    [9002, 2, "PLB-15691-SV", 2, 12.345],
    [9003, 2, "PLB-15691-SV", 1, 60.04],
]
PRICE_HEADER = ["sku", "tier", "quantity", "price"]
PRICES = [  # a long price list for the products sheet; the row of 00124 at 10 is #REF!
    ["00123", "Retail", 1, 162.59],
    ["00123", "Wholesale", 1, 120.5],
    ["00123", "Wholesale", 50, 110],
    ["00124", "Retail", 1, 24.99],
    ["00124", "Retail", 10, "#REF!"],
]
CUSTOMER_HEADER = [
    "customer_number", "company_name", "email", "phone", "price_tier", "terms", "currency",
    "rep_number", "updated_at",
]  # fmt: skip
CUSTOMERS = [  # phone numbers typed as numbers, as often happens
    ["CUST-7001", "Cedar Building Supply", "orders@cedar.example", 5555624970, "Distributor",
     "NET30", "USD", "SR-004", T(2026, 11, 30, 0, 31)],
    ["CUST-7002", "Pioneer Maintenance", "orders@pioneer.example", "555-488-1210", "Wholesale",
     "NET30", "USD", None, T(2026, 11, 30, 17, 48)],
]  # fmt: skip


def build(path: Path = WORKBOOK) -> Path:
    book = Workbook()
    notes = book.active
    notes.title = "Read me"
    notes.append(["Acme PIM export: products, orders and their lines"])
    products = book.create_sheet("Products")
    products.append(["Product master (Acme PIM)"])
    products.append(["Exported", T(2026, 12, 1, 6, 0)])
    products.append(PRODUCT_HEADER)
    for row in PRODUCTS:
        products.append(row or [])
    for title, header, rows in [
        ("Orders", ORDER_HEADER, ORDERS),
        ("Lines", LINE_HEADER, LINES),
        ("Prices", PRICE_HEADER, PRICES),
        ("Customers", CUSTOMER_HEADER, CUSTOMERS),
    ]:
        sheet = book.create_sheet(title)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
    book.save(path)
    _as_excel_saves(path)
    return path


def _as_excel_saves(path: Path) -> None:
    """Give the formula cells the cached results Excel would store; fix the zip's times and
    the saved-at stamps, so that every run writes the same bytes."""
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    for index, (name, data) in enumerate(members):
        if name == "xl/worksheets/sheet2.xml":
            for written, saved in FORMULA_CELLS.items():
                assert written in data, f"openpyxl no longer writes {written!r}"
                data = data.replace(written, saved)
            members[index] = (name, data)
        if name == "docProps/core.xml":  # openpyxl stamps the time of saving
            data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2026-12-01T06:00:00Z", data)
            members[index] = (name, data)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in members:
            target.writestr(zipfile.ZipInfo(name, STAMP), data, zipfile.ZIP_DEFLATED)


if __name__ == "__main__":
    print(build())
