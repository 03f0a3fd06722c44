"""Numbers as people write them (``number:`` in a job): each separator, currency marks before
and after, SAP's trailing minus, percentages, and values that do not fit the declared style
rejected naming it; then German exports end to end over real HTTP against the emulator."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from helpers import all_products, run_sync
from orders_helpers import CUSTOMERS, edited_job, order, read_csv, run_entity

from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_job import PriceList
from pipelines.extract.chunks import Chunk
from pipelines.jobs.specs import NumberFormat, NumberStyle
from pipelines.transform.money import to_money
from pipelines.transform.number_patterns import example
from pipelines.transform.numbers import (
    misfit_reasons,
    plain_numbers,
    read_number_columns,
    read_numbers,
)

NBSP, NNBSP = "\u00a0", "\u202f"
GERMAN = NumberStyle(decimal=",", thousands=".")
EURO = NumberStyle(decimal=",", thousands=".", currency="EUR")
FRENCH = NumberStyle(decimal=",", thousands=NNBSP, currency="EUR")
SWISS = NumberStyle(decimal=".", thousands="'", currency="CHF")
US = NumberStyle(decimal=".", thousands=",", currency="USD")
COMMA = NumberStyle(decimal=",")
PERCENT = NumberStyle(decimal=",", thousands=".", percent=True)


def _plain(style: NumberStyle, *values: str | None) -> list[str | None]:
    text, bad = plain_numbers(pa.array(values, pa.string()), style)
    assert not bad.any(), [v for v, b in zip(values, bad, strict=True) if b]
    return text.to_pylist()


def _why(style: NumberStyle, value: str) -> str:
    column = pa.array([value], pa.string())
    text, bad = plain_numbers(column, style)
    assert bad.tolist() == [True] and text.to_pylist() == [None]
    ((mask, message),) = misfit_reasons(column, bad, style)
    assert mask.tolist() == [True]
    return message


@pytest.mark.parametrize(
    ("style", "written", "plain"),
    [
        (GERMAN, "162,59", "162.59"),
        (GERMAN, "1.234,50", "1234.50"),
        (GERMAN, "12.345.678,90", "12345678.90"),
        (GERMAN, "1.234", "1234"),
        (GERMAN, "1234,5", "1234.5"),  # separators may be left out
        (GERMAN, "0,05", "0.05"),
        (GERMAN, ",5", ".5"),
        (GERMAN, "5,", "5."),
        (GERMAN, "-1.234,50", "-1234.50"),
        (GERMAN, "+7", "7"),
        (GERMAN, "100,00-", "-100.00"),  # SAP
        (GERMAN, "1.234,50 -", "-1234.50"),
        (GERMAN, "- 3", "-3"),
        (GERMAN, "  7,10\t", "7.10"),
        (GERMAN, f"{NBSP}7,10{NNBSP}", "7.10"),
        (EURO, "€ 1.234,50", "1234.50"),
        (EURO, "€1.234,50", "1234.50"),
        (EURO, "1.234,50 €", "1234.50"),
        (EURO, "1.234,50€", "1234.50"),
        (EURO, "EUR 4,20", "4.20"),
        (EURO, "4,20 EUR", "4.20"),
        (EURO, "-€ 3,00", "-3.00"),
        (EURO, "€ -3,00", "-3.00"),
        (EURO, "3,00- EUR", "-3.00"),
        (EURO, f"€{NBSP}3,00", "3.00"),
        (EURO, "5", "5"),  # no mark at all
        (FRENCH, f"1{NNBSP}234,50", "1234.50"),
        (FRENCH, f"1{NBSP}234{NBSP}567,50 €", "1234567.50"),
        (FRENCH, "1 234,50 EUR", "1234.50"),
        (NumberStyle(decimal=",", thousands=" "), f"1{NNBSP}234,5", "1234.5"),
        (SWISS, "1'234.50", "1234.50"),
        (SWISS, "1\u2019234.50", "1234.50"),  # the typographic apostrophe
        (SWISS, "CHF 1'234.50", "1234.50"),
        (SWISS, "Fr. 12.50", "12.50"),
        (SWISS, "SFr. 1'000'000.05", "1000000.05"),
        (US, "$1,234.50", "1234.50"),
        (US, "US$ 1,234.50", "1234.50"),
        (US, "1,234.50 USD", "1234.50"),
        (US, "-$5.00", "-5.00"),
        (NumberStyle(currency="GBP"), "£12.5", "12.5"),
        (NumberStyle(currency="JPY", thousands=","), "¥1,200", "1200"),
        (NumberStyle(currency="SEK", decimal=",", thousands=" "), "1 234,50 kr", "1234.50"),
        (NumberStyle(currency="DKK", decimal=",", thousands="."), "kr. 1.234,50", "1234.50"),
        (NumberStyle(currency="PLN", decimal=",", thousands=" "), "1 234,50 zł", "1234.50"),
        (NumberStyle(currency="CZK", decimal=",", thousands=" "), "1 234,50 Kč", "1234.50"),
        (COMMA, "1234,56", "1234.56"),
        (PERCENT, "12,5 %", "0.125"),
        (PERCENT, "12,5%", "0.125"),
        (PERCENT, "5%", "0.05"),
        (PERCENT, "100 %", "1.00"),
        (PERCENT, "0,5%", "0.005"),
        (PERCENT, "-12,5 %", "-0.125"),
        (PERCENT, "1.234,5 %", "12.345"),
        (PERCENT, "12,5", "12.5"),  # without the sign it is the number written
        (PERCENT, "0,001 %", "0.00001"),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_a_value_written_in_the_style_becomes_plain_text(style, written, plain):
    assert _plain(style, written) == [plain]


@pytest.mark.parametrize(
    ("style", "written", "reason"),
    [
        (GERMAN, "1,234.50", "is not a number written as 1.234,56"),  # US order of marks
        (GERMAN, "1.23", "is not a number written as 1.234,56"),  # 1.23 or 123? never guessed
        (GERMAN, "1.2345,6", "is not a number written as 1.234,56"),
        (GERMAN, "12.34.567", "is not a number written as 1.234,56"),
        (GERMAN, "1,234,5", "is not a number written as 1.234,56"),
        (GERMAN, "1,234.", "is not a number written as 1.234,56"),
        (GERMAN, "1.234,5.6", "is not a number written as 1.234,56"),  # no separator after
        (GERMAN, "-5-", "is not a number written as 1.234,56"),
        (GERMAN, "-", "is not a number written as 1.234,56"),
        (GERMAN, ",", "is not a number written as 1.234,56"),
        (GERMAN, "1e5", "is not a number written as 1.234,56"),
        (GERMAN, "n/a", "is not a number written as 1.234,56"),
        (GERMAN, "1\n2", "is not a number written as 1.234,56"),  # two lines, one cell
        (GERMAN, "1 234,50", "is not a number written as 1.234,56"),
        (COMMA, "1.234,50", "is not a number written as 1234,56"),
        (COMMA, "5.5", "is not a number written as 1234,56"),
        (US, "1.234,50", "is not a number written as 1,234.56, optionally with US$, $ or USD"),
        (SWISS, "1'234,50", "is not a number written as 1'234.56"),
        (FRENCH, "1 23,5", "is not a number written as 1 234,56"),
        (EURO, "€ 5 €", "is not a number written as 1.234,56, optionally with € or EUR"),
        (EURO, "$ 5,00", "is in another currency ($), not EUR"),
        (EURO, "5,00 USD", "is in another currency (USD), not EUR"),
        (EURO, "£5", "is in another currency (£), not EUR"),
        (EURO, "CHF 5", "is in another currency (CHF), not EUR"),
        (GERMAN, "€ 5,00", "carries a currency (€); add currency: EUR to the job's number:"),
        (GERMAN, "5,00 EUR", "carries a currency (EUR); add currency: EUR to the job's number:"),
        (GERMAN, "12,5 %", "is a percentage; add percent: true to the job's number: to read it"),
        (PERCENT, "%", "is not a number written as 1.234,56, or as a percentage: 12,5 %"),
        (PERCENT, "5 % %", "is not a number written as 1.234,56"),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_a_value_that_does_not_fit_is_rejected_naming_why(style, written, reason):
    assert _why(style, written).startswith(reason)


def test_each_value_is_given_its_own_reason():
    column = pa.array(["1,00", "$ 2,00", "3.00", None, "4 USD", "$5", "6 %"], pa.string())
    text, bad = plain_numbers(column, EURO)
    assert text.to_pylist() == ["1.00", None, None, None, None, None, None]
    reasons = {why: mask.nonzero()[0].tolist() for mask, why in misfit_reasons(column, bad, EURO)}
    assert reasons == {
        "is in another currency ($), not EUR": [1, 5],
        "is in another currency (USD), not EUR": [4],
        "is a percentage; add percent: true to the job's number: to read it": [6],
        f"is not a number written as {example(EURO)}": [2],
    }


def test_blanks_and_missing_values_are_missing_not_misfits():
    column = pa.array(["", "  ", f"{NBSP}", None, "\n", "1,5"], pa.string())
    text, bad = plain_numbers(column, GERMAN)
    assert text.to_pylist() == [None, None, None, None, None, "1.5"]
    assert not bad.any()
    for nothing in (pa.nulls(3, pa.string()), pa.array([], pa.string())):
        text, bad = plain_numbers(nothing, GERMAN)
        assert text.null_count == len(text) == len(nothing) and not bad.any()


def test_a_slice_with_nulls_is_read_where_it_lies():
    """Chunks are slices of what the reader made: offsets and validity start mid-buffer."""
    column = pa.array(["9.999,9", None, "1.234,5", "", "7,25-", None, "+8", "1.2"]).slice(1)
    text, bad = plain_numbers(column, GERMAN)
    assert text.to_pylist() == [None, "1234.5", None, "-7.25", None, "8", None]
    assert bad.tolist() == [False] * 6 + [True]
    fitting = column.slice(0, 6)
    assert plain_numbers(fitting, GERMAN)[0].to_pylist() == text.to_pylist()[:6]


def test_the_plain_default_returns_the_column_itself():
    column = pa.array(["1.5", "1,5", "x"], pa.string())
    text, bad = plain_numbers(column, NumberFormat())
    assert text is column and not bad.any()
    assert read_numbers(column, "c", NumberFormat()) == (column, [])


def test_typed_columns_pass_untouched_whatever_the_style():
    for typed in (
        pa.array([1.5, None], pa.float64()),
        pa.array([Decimal("1234.50")], pa.decimal128(10, 2)),
        pa.array([1200], pa.int64()),
    ):
        assert read_numbers(typed, "c", EURO) == (typed, [])


def test_large_and_dictionary_text_is_read_too():
    for column in (
        pa.array(["1.234,5", "x"], pa.large_string()),
        pa.array(["1.234,5", "x"], pa.string()).dictionary_encode(),
    ):
        text, failures = read_numbers(column, "Preis", GERMAN)
        assert text.to_pylist() == ["1234.5", None]
        ((failure),) = failures
        assert (failure.column, failure.rule, failure.mask.tolist()) == (
            "Preis",
            "not_a_number",
            [False, True],
        )


def test_money_stays_exact_to_the_last_digit():
    """Never through float: 33 significant digits arrive as written, and a percentage is
    shifted in the text (past money_scale it is refused, never rounded)."""
    written = ["12.345.678.901.234.567.890.123.456.789,0123", "0,1", "100,00-", "0,001 %"]
    text, bad = plain_numbers(pa.array(written), PERCENT)
    assert not bad.any() and text.to_pylist()[3] == "0.00001"
    values, not_numbers, too_fine = to_money(text, 4)
    assert values.to_pylist() == [
        Decimal("12345678901234567890123456789.0123"),
        Decimal("0.1"),
        Decimal("-100"),
        None,
    ]
    assert not not_numbers.any() and too_fine.tolist() == [False, False, False, True]


def test_a_column_may_be_written_its_own_way():
    number = NumberFormat(decimal=",", thousands=".", columns={"Gewicht": NumberStyle()})
    assert number.for_column("Preis") is number
    assert _plain(number.for_column("Gewicht"), "1.250") == ["1.250"]
    assert _plain(number.for_column("Preis"), "1.250") == ["1250"]


def test_columns_read_together_keep_their_own_styles_and_failures():
    number = NumberFormat(decimal=",", thousands=".", columns={"Gewicht": NumberStyle()})
    columns = {
        "Preis": pa.array(["1.234,5", "x", "2"]),
        "Bestand": pa.array(["1.000", "7", "1,2,3"]),
        "Gewicht": pa.array(["1.250", "2", "3"]),
        "Typed": pa.array([1.5, 2.5, 3.5]),
    }
    read, failures = read_number_columns(columns, number)
    assert {name: values.to_pylist() for name, values in read.items()} == {
        "Preis": ["1234.5", None, "2"],
        "Bestand": ["1000", "7", None],
        "Gewicht": ["1.250", "2", "3"],
        "Typed": [1.5, 2.5, 3.5],
    }
    assert [(f.column, f.mask.tolist(), f.values.to_pylist()) for f in failures] == [
        ("Preis", [False, True, False], ["1.234,5", "x", "2"]),
        ("Bestand", [False, False, True], ["1.000", "7", "1,2,3"]),
    ]


def test_the_decimal_mark_cannot_also_group_thousands():
    with pytest.raises(ValueError, match="is also the decimal mark"):
        NumberStyle(decimal=",", thousands=",")


def test_a_large_column_with_some_misfits_keeps_every_other_value():
    """20,000 amounts, SAP negatives among them and every thousandth written the US way:
    only those are flagged, the rest read as if each were read alone."""
    rng = np.random.default_rng(7)
    cents = rng.integers(-(10**9), 10**9, 20_000)
    written = [f"{abs(c) / 100:_.2f}".replace(".", ",").replace("_", ".") for c in cents]
    written = [w + "-" if c < 0 else w for w, c in zip(written, cents, strict=True)]
    written[::1000] = ["1,234.50"] * len(written[::1000])
    text, bad = plain_numbers(pa.array(written), GERMAN)
    assert bad.nonzero()[0].tolist() == list(range(0, 20_000, 1000))
    expected = [f"{c / 100:.2f}" for c in cents]
    got = text.to_pylist()
    assert [g for i, g in enumerate(got) if i % 1000] == [
        e for i, e in enumerate(expected) if i % 1000
    ]


def test_a_price_list_reads_its_numbers_in_the_jobs_style():
    table = pa.table(
        {
            "sku": ["A", "B", "C", "D"],
            "tier": ["Retail"] * 4,
            "quantity": ["1", "1.000", "1", "1,5"],
            "price": ["1.234,50", "0,99", "1,234.50", "2"],
        }
    )
    config = PriceList(source={"type": "csv", "path": "prices.csv"}, key="sku")
    chunk = Chunk(table, np.array([2, 3, 4, 5]), "prices.csv")
    index, rejects = PriceListIndex.load(config, [chunk], NumberFormat(decimal=",", thousands="."))
    assert index.table.select(["key", "price", "atQuantity"]).to_pylist() == [
        {"key": "A", "price": 1234.5, "atQuantity": 1},
        {"key": "B", "price": 0.99, "atQuantity": 1000},
    ]
    assert [(r.row, r.external_id, r.column, r.value, r.rule) for r in rejects] == [
        (4, "C", "price", "1,234.50", "not_a_number"),
        (5, "D", "quantity", "1,5", "bad_quantity"),  # a number, not a whole one
    ]
    assert "is not a number written as 1.234,56" in rejects[0].message


# --- End to end: a German PIM export and ERP orders over real HTTP -------------------------

# A semicolon-separated cp1252 export as a German PIM writes it: decimal commas, thousands
# dots, the euro sign before or after some prices, the code on others.
CATALOG = [
    ("Artikelnummer", "Bezeichnung", "Preis", "Großhandel", "Bestand", "Gewicht"),
    ("ART-10001", "Sechskantschraube M8 verzinkt", "162,59", "119,90", "1.250", "0,025"),
    ("ART-10002", "Akku-Bohrschrauber 18 V", "1.234,50", "987,65", "12", "1,8"),
    ("ART-10003", "Werkbank Buche, 2 m", "€ 1.499,00", "1.199,00 €", "3", "85,5"),
    ("ART-10004", "Schleifpapier Körnung 120", "EUR 4,20", "3,15 EUR", "10.000", "0,4"),
    ("ART-10005", "Industrie-Staubsauger", "12.345,67", "9.876,54", "1", "1.250,0"),
    ("ART-10006", "Dübel Ø 6 mm", "0,99", "", "100.000", "0,001"),
    ("ART-10007", "Größenset Inbusschlüssel", "  7,10 ", "5", "0", "2"),
    ("ART-10008", "Hebebühne", "1.000.000,01", "999.999,99", "2", "3.500"),
]


def _csv(path: Path, rows) -> Path:
    path.write_bytes("".join(";".join(r) + "\r\n" for r in rows).encode("cp1252"))
    return path


def _catalog_job(tmp_path: Path, rows=CATALOG, name: str = "catalog") -> Path:
    spec = {
        "job": f"pim-{name}",
        "entity": "products",
        "source": {
            "type": "csv",
            "path": str(_csv(tmp_path / f"{name}.csv", rows)),
            "encoding": "cp1252",
            "delimiter": ";",
        },
        "key": "Artikelnummer",
        "fields": {
            "sku": "Artikelnummer",
            "name": "Bezeichnung",
            "price": "Preis",
            "quantityOnHand": "Bestand",
            "weight": "Gewicht",
            "currencyCode": {"value": "EUR"},
        },
        "prices": [
            {"tier": "Retail", "price": "Preis"},
            {"tier": "Wholesale", "price": "Großhandel"},
        ],
        "number": {"decimal": ",", "thousands": ".", "currency": "EUR"},
    }
    job = tmp_path / f"{name}.yml"
    job.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return job


def _exact(written: str) -> float:
    """The float nearest the value as written, German style (what an exact parse gives)."""
    digits = written.strip().strip("€EUR ").replace(".", "").replace(",", ".")
    return float(Decimal(digits))


def test_a_german_pim_export_lands_every_row_with_exact_prices(emulator, api, tmp_path):
    summary = run_sync(_catalog_job(tmp_path), emulator, tmp_path)
    assert summary.balanced and (summary.created, summary.rejected) == (len(CATALOG) - 1, 0)
    held = all_products(api)
    for sku, name, retail, wholesale, stock, weight in CATALOG[1:]:
        got = held[sku]
        assert (got["name"], got["currencyCode"]) == (name, "EUR")
        assert got["price"] == _exact(retail)
        assert got["quantityOnHand"] == int(stock.replace(".", ""))
        assert got["weight"] == _exact(weight)
        tiers = [(p["tier"], p["price"]) for p in got["prices"]]
        expected = [("Retail", _exact(retail))]
        expected += [("Wholesale", _exact(wholesale))] if wholesale else []
        assert tiers == expected
    assert held["ART-10008"]["price"] == 1000000.01 and held["ART-10001"]["price"] == 162.59
    again = run_sync(_catalog_job(tmp_path), emulator, tmp_path)
    assert (again.unchanged, again.sent) == (len(CATALOG) - 1, 0)


def test_values_not_written_in_the_declared_style_are_rejected_by_row(emulator, api, tmp_path):
    rows = [
        CATALOG[0],
        ("ART-1", "gut", "5,00", "4,00", "1", "1"),
        ("ART-2", "US-Format", "1,234.50", "4,00", "1", "1"),
        ("ART-3", "mehrdeutig", "1.23", "4,00", "1", "1"),
        ("ART-4", "Dollar", "5,00", "$ 4,00", "1", "1"),
        ("ART-5", "Bestand", "5,00", "4,00", "1,5", "1"),
    ]
    rejects_path = tmp_path / "rejects.csv"
    summary = run_sync(
        _catalog_job(tmp_path, rows, "bad"), emulator, tmp_path, rejects_path=rejects_path
    )
    assert summary.balanced and (summary.created, summary.rejected) == (1, 4)
    assert sorted(all_products(api)) == ["ART-1"]
    got = {r["external_id"]: r for r in read_csv(rejects_path)}
    source = str(tmp_path / "bad.csv")
    written_as = "is not a number written as 1.234,56, optionally with € or EUR before or after"
    cells = {k: (r["source"], r["row"], r["column"], r["value"], r["rule"]) for k, r in got.items()}
    assert cells == {
        "ART-2": (source, "3", "Preis", "1,234.50", "not_a_number"),
        "ART-3": (source, "4", "Preis", "1.23", "not_a_number"),
        "ART-4": (source, "5", "Großhandel", "$ 4,00", "not_a_number"),
        "ART-5": (source, "6", "Bestand", "1,5", "not_a_number"),
    }
    assert written_as in got["ART-2"]["message"] and written_as in got["ART-3"]["message"]
    assert "is in another currency ($), not EUR" in got["ART-4"]["message"]
    assert "is not a valid integer" in got["ART-5"]["message"]  # 1,5 is a number, not whole


ORDERS = [
    ("Auftrag", "Auftragsnummer", "Kunde", "Datum", "Währung", "Versand", "MwSt"),
    ("A-1", "SO-DE-1", "CUST-0001", "02.01.2024 09:30", "EUR", "1.234,50", "19.876,54"),
    ("A-2", "SO-DE-2", "CUST-0001", "03.01.2024 14:05", "EUR", "4,90", "0,56"),
    ("A-3", "SO-DE-3", "CUST-0001", "04.01.2024 08:00", "EUR", "0,00", "0,00"),
]
LINES = [
    ("Auftrag", "Artikelnummer", "Menge", "Einzelpreis"),
    ("A-1", "ART-10001", "1.200", "162,59"),
    ("A-1", "ART-10002", "2", "1.234,5678"),
    ("A-2", "ART-10006", "3", "0,99"),
    ("A-3", "ART-10007", "1", "1,234.50"),  # written the US way: the order waits for a fix
]


def _orders_job(tmp_path: Path) -> Path:
    spec = {
        "job": "erp-orders-de",
        "entity": "orders",
        "source": {
            "type": "csv",
            "path": str(_csv(tmp_path / "auftraege.csv", ORDERS)),
            "encoding": "cp1252",
            "delimiter": ";",
        },
        "key": "Auftrag",
        "timezone": "Europe/Berlin",
        "fields": {
            "orderNumber": "Auftragsnummer",
            "orderDate": {"column": "Datum", "format": "%d.%m.%Y %H:%M"},
            "currencyCode": "Währung",
            "customer.customerNumber": "Kunde",
            "shippingDetails.shippingTotal": "Versand",
            "tax": "MwSt",
        },
        "items": {
            "source": {
                "type": "csv",
                "path": str(_csv(tmp_path / "positionen.csv", LINES)),
                "encoding": "cp1252",
                "delimiter": ";",
            },
            "sku": "Artikelnummer",
            "quantity": "Menge",
            "price": "Einzelpreis",
        },
        "references": {"check": False},
        "number": {"decimal": ",", "thousands": "."},
    }
    job = tmp_path / "orders.yml"
    job.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return job


def _customers(tmp_path: Path) -> Path:
    sample = Path("sample_data/customers.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "customers.csv").write_text("\n".join(sample[:2]) + "\n", encoding="utf-8")
    source = str(tmp_path / "customers.csv")
    return edited_job(tmp_path, CUSTOMERS, "customers.yml", source__path=source)


def test_orders_with_decimal_commas_land_with_exact_totals(emulator, api, tmp_path):
    assert run_sync(_catalog_job(tmp_path), emulator, tmp_path).created == len(CATALOG) - 1
    assert run_entity(_customers(tmp_path), emulator, tmp_path).created == 1
    summary = run_entity(_orders_job(tmp_path), emulator, tmp_path)
    assert summary.balanced and (summary.created, summary.rejected) == (2, 1)
    first, second = order(api, "SO-DE-1"), order(api, "SO-DE-2")
    assert [(i["sku"], i["quantity"], i["price"]) for i in first["items"]] == [
        ("ART-10001", 1200, Decimal("162.59")),
        ("ART-10002", 2, Decimal("1234.5678")),
    ]
    assert first["shippingDetails"]["shippingTotal"] == Decimal("1234.50")
    assert first["tax"] == Decimal("19876.54")
    lines = 1200 * Decimal("162.59") + 2 * Decimal("1234.5678")
    assert first["orderTotal"] == lines + Decimal("1234.50") + Decimal("19876.54")
    assert second["orderTotal"] == 3 * Decimal("0.99") + Decimal("4.90") + Decimal("0.56")
    assert order(api, "SO-DE-3") is None
    (rejected,) = [r for r in read_csv(Path(summary.rejects_path)) if r["rule"] == "not_a_number"]
    assert (rejected["external_id"], rejected["column"], rejected["value"]) == (
        "A-3",
        "Einzelpreis",
        "line 1: 1,234.50",
    )
    assert "is not a number written as 1.234,56" in rejected["message"]
