"""The committed sample files, read through the extractors, have the shape README.md promises.

Also covers the benchmark catalog generator in ``bench/catalog.py``.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.extract.files import (
    csv_columns,
    detect_encoding,
    parquet_columns,
    read_csv,
    read_parquet,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_data"
PRODUCTS_CSV = SAMPLES / "products.csv"
COLUMNS = [
    "sku", "name", "description", "category", "price_retail", "price_wholesale",
    "price_wholesale_50", "qty_on_hand", "min_order_qty", "weight", "weight_unit", "upc",
    "status", "color", "size",
]  # fmt: skip
BAD_ROW = re.compile(r"^\| (\d+) \| (\d+|–) \| `?([\w–]+)`? \| (`[^`]*`|–) \| (.+) \|$")


def bad_rows() -> list[dict]:
    """The bad-rows table of sample_data/README.md."""
    rows = []
    for line in (SAMPLES / "README.md").read_text(encoding="utf-8").splitlines():
        if match := BAD_ROW.match(line):
            csv_row, parquet_row, column, value, problem = match.groups()
            rows.append({
                "csv_row": int(csv_row),
                "parquet_row": None if parquet_row == "–" else int(parquet_row),
                "column": None if column == "–" else column,
                "value": None if value == "–" else value.strip("`"),
                "problem": problem,
            })  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def products():
    """products.csv as one table plus its row numbers and rejects."""
    chunks = list(read_csv(PRODUCTS_CSV, block_bytes=64 << 10))
    table = pa.concat_tables(chunk.table for chunk in chunks)
    rows = [int(n) for chunk in chunks for n in chunk.rows]
    rejects = [reject for chunk in chunks for reject in chunk.rejects]
    return table, rows, rejects


@pytest.fixture(scope="module")
def products_parquet():
    chunks = list(read_parquet(SAMPLES / "products.parquet", batch_rows=500))
    return pa.concat_tables(c.table for c in chunks), [int(n) for c in chunks for n in c.rows]


def test_readme_lists_the_six_bad_rows():
    problems = [row["problem"] for row in bad_rows()]
    assert len(problems) == 6
    assert [p.split(":")[0].split(" ")[0] for p in problems] == [
        "empty", "negative", "quantity", "duplicate", "price", "malformed",
    ]  # fmt: skip


def test_products_csv_is_utf8_with_bom_crlf_and_2000_rows(products):
    raw = PRODUCTS_CSV.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfsku,")
    assert raw.count(b"\r\n") == 2_001 and raw.count(b"\n") == 2_001
    assert detect_encoding(PRODUCTS_CSV).encoding == "utf-8-sig"
    assert csv_columns(PRODUCTS_CSV) == COLUMNS
    table, rows, rejects = products
    assert table.column_names == COLUMNS
    assert len(rows) + len(rejects) == 2_000
    assert sorted(rows + [r.row for r in rejects]) == list(range(2, 2_002))


def test_products_values_look_like_a_real_export(products):
    table, _, _ = products
    upc = table["upc"].to_pylist()
    assert all(re.fullmatch(r"\d{12}", u) for u in upc)
    leading_zero = sum(u.startswith("0") for u in upc) / len(upc)
    assert 0.15 < leading_zero < 0.25
    assert set(table["status"].to_pylist()) == {"A", "I"}
    assert {u.strip() for u in table["weight_unit"].to_pylist()} == {"lb", "kg"}
    blank_tier = table["price_wholesale_50"].null_count / len(table)
    assert 0.4 < blank_tier < 0.6
    names = " ".join(table["name"].to_pylist())
    assert all(char in names for char in "—éø")
    descriptions = table["description"].to_pylist()
    assert any("," in d for d in descriptions) and any('"' in d for d in descriptions)
    text = [v for c in ("name", "description", "category") for v in table[c].to_pylist()]
    padded = sum(v != v.strip() for v in text) / len(text)
    assert 0.01 < padded < 0.05


def test_bad_rows_are_where_readme_says_and_nowhere_else(products):
    table, rows, rejects = products
    listed = {row["csv_row"]: row for row in bad_rows()}
    malformed = [row for row in listed.values() if row["column"] is None]
    assert [r.row for r in rejects] == [row["csv_row"] for row in malformed]
    assert (
        rejects[0].rule == "malformed_row" and "expected 15 fields, found 14" in rejects[0].message
    )

    position = {row: i for i, row in enumerate(rows)}
    for row in listed.values():
        if row["column"] is not None:
            value = table[row["column"]][position[row["csv_row"]]].as_py()
            assert (value or "") == row["value"], row
    assert found_defects(table, rows) == {
        row["csv_row"] for row in listed.values() if row["column"] is not None
    }


def found_defects(table: pa.Table, rows: list[int]) -> set[int]:
    """Rows that a strict contract check flags: the test's own, independent of the mapper."""
    sku = pc.utf8_trim_whitespace(table["sku"])
    number = r"^\s*\d+(\.\d{2})?\s*$"
    flags = [
        pc.is_null(sku),
        pc.invert(pc.match_substring_regex(table["price_retail"], number)),
        pc.invert(pc.match_substring_regex(table["price_wholesale"], number)),
        pc.invert(pc.match_substring_regex(table["qty_on_hand"], r"^\d+$")),
    ]
    found = set()
    for flag in flags:
        found |= {rows[i] for i, bad in enumerate(flag.to_pylist()) if bad}
    seen: set[str] = set()
    for i, value in enumerate(sku.to_pylist()):
        if value is not None and value in seen:
            found.add(rows[i])
        seen.add(value)
    return found


def test_parquet_holds_the_same_rows_as_strings(products, products_parquet):
    csv_table, csv_rows, _ = products
    table, rows = products_parquet
    assert parquet_columns(SAMPLES / "products.parquet") == COLUMNS
    assert all(t == pa.string() for t in table.schema.types)
    assert rows == list(range(1, 2_000))
    assert table.equals(csv_table)
    for row in bad_rows():
        if row["parquet_row"] is not None:
            value = table[row["column"]][row["parquet_row"] - 1].as_py()
            assert (value or "") == row["value"]


def test_price_list_shape(products):
    raw = (SAMPLES / "price_list.csv").read_bytes()
    assert raw.startswith(b"sku,tier,quantity,price\n") and b"\r" not in raw
    table = pa.concat_tables(c.table for c in read_csv(SAMPLES / "price_list.csv"))
    assert len(table) == 3_600 and table.column_names == ["sku", "tier", "quantity", "price"]
    catalog = set(pc.utf8_trim_whitespace(products[0]["sku"]).to_pylist())
    skus = table["sku"].to_pylist()
    assert len(set(skus)) == 300 and set(skus) <= catalog
    assert set(table["tier"].to_pylist()) == {"Retail", "Wholesale", "Distributor"}
    last: dict[tuple[str, str], tuple[int, float]] = {}
    for record in table.to_pylist():
        sku, tier, quantity, price = record.values()
        assert re.fullmatch(r"\d+\.\d{2}", price)
        quantity, price = int(quantity), float(price)
        assert quantity >= 1 and price > 0
        if (sku, tier) in last:
            assert quantity > last[sku, tier][0] and price < last[sku, tier][1]
        last[sku, tier] = (quantity, price)


# --- bench/catalog.py ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_module():
    spec = importlib.util.spec_from_file_location("bench_catalog", ROOT / "bench" / "catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bench_catalog_is_deterministic_and_clean(tmp_path, catalog_module, fmt):
    first = catalog_module.generate_catalog(tmp_path / f"a.{fmt}", 3_000, fmt=fmt)
    second = catalog_module.generate_catalog(tmp_path / f"b.{fmt}", 3_000, fmt=fmt)
    assert first.read_bytes() == second.read_bytes()
    reader = read_csv if fmt == "csv" else read_parquet
    table = pa.concat_tables(chunk.table for chunk in reader(first))
    assert table.column_names == COLUMNS and len(table) == 3_000
    assert table["sku"].to_pylist()[:2] == ["SKU-0000001", "SKU-0000002"]
    assert len(set(table["sku"].to_pylist())) == 3_000
    assert found_defects(table, list(range(3_000))) == set()
    if fmt == "csv":
        assert not first.read_bytes().startswith(b"\xef\xbb\xbf")


def test_bench_apply_delta_changes_exactly_the_promised_rows(tmp_path, catalog_module):
    src = catalog_module.generate_catalog(tmp_path / "src.csv", 2_345)
    changed = catalog_module.apply_delta(src, tmp_path / "dst.csv", fraction=0.01)
    assert changed == round(2_345 * 0.01)
    before = pa.concat_tables(c.table for c in read_csv(src))
    after = pa.concat_tables(c.table for c in read_csv(tmp_path / "dst.csv"))
    differs = pc.or_(
        pc.not_equal(before["price_retail"], after["price_retail"]),
        pc.not_equal(before["qty_on_hand"], after["qty_on_hand"]),
    )
    assert pc.sum(differs).as_py() == changed
    assert before.drop_columns(["price_retail", "qty_on_hand"]).equals(
        after.drop_columns(["price_retail", "qty_on_hand"])
    )
    again = catalog_module.apply_delta(src, tmp_path / "dst2.csv", fraction=0.01)
    assert again == changed
    assert (tmp_path / "dst2.csv").read_bytes() == (tmp_path / "dst.csv").read_bytes()
