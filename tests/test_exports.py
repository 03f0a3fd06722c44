"""Export files shaped like real ones (tests/exports/, made by make_exports.py), each loaded
over real HTTP into the emulator with the exact expected outcome: the records that land, with
their values as the API holds them, and every rejected row with its row number, column and
rule. Orders reference the SAP products and CRM customers, so those cases load first."""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from helpers import all_products, run_sync
from orders_helpers import order

EXPORTS = Path(__file__).parent / "exports"
csv.field_size_limit(sys.maxsize)  # the test reads back cells of megabytes
E = str(EXPORTS)

SAP_FIELDS = {
    "sku": "Materialnummer",
    "name": "Materialkurztext",
    "category": "Warengruppe",
    "price": "Preis",
    "weight": "Bruttogewicht",
    "weightUnit": "Gewichtseinheit",
    "quantityOnHand": "Bestand",
    "currencyCode": {"value": "EUR"},
    "active": {"column": "Status", "map": {"A": True, "I": False}},
}
GERMAN = {"decimal": ",", "thousands": "."}


def products(name: str, source: dict, key: str, fields: dict, **more) -> dict:
    return {"job": name, "entity": "products", "source": source, "key": key, "fields": fields,
            **more}  # fmt: skip


def csv_source(file: str, **options) -> dict:
    return {"type": "csv", "path": f"{E}/{file}", **options}


# name → (job, landed: {externalId: {field: value}}, rejects: {(row, column, rule)})
PRODUCT_CASES = {
    "sap_materials_cp1252": (
        products(
            "sap",
            csv_source("sap_materials_cp1252.csv", delimiter=";"),
            "Materialnummer",
            SAP_FIELDS,
            prices=[
                {"tier": "Retail", "price": "Preis"},
                {"tier": "Retail", "price": "Staffelpreis ab 10", "atQuantity": 10},
            ],
            number=GERMAN,
        ),
        {
            "MAT-100001": {"price": 0.59, "quantityOnHand": 12500, "weight": 0.012},
            "MAT-100002": {"name": "Dübel Ø10 mm", "price": 1.29},
            "MAT-100003": {"price": 162.59, "weight": 2.35},
            "MAT-100004": {"price": 1234.5, "quantityOnHand": 4},
            "MAT-100006": {"name": 'Säge "Profi"', "price": 23.5, "active": False},
        },
        {
            (6, "Preis", "negative_price"),  # 12,00- : SAP's trailing minus, read as -12.00
            (8, "Preis", "not_a_number"),  # 1,234.50 is not written as 1.234,56
            (9, "Bestand", "not_a_number"),  # 1.0: "." groups thousands here
        },
    ),
    "sap_materials_bom": (
        products(
            "sap_bom",
            csv_source("sap_materials_bom.csv", delimiter=";", encoding="cp1252"),
            "Materialnummer",
            {"sku": "Materialnummer", "name": "Materialkurztext", "price": "Preis"},
            number=GERMAN,
        ),
        {"MAT-200001": {"name": "Dübel Ø8 mm", "price": 0.99}, "MAT-200002": {"price": 14.9}},
        set(),
    ),
    "akeneo_products": (
        products(
            "akeneo",
            csv_source("akeneo_products.csv", delimiter=";"),
            "sku",
            {
                "sku": "sku",
                "name": "name-en_US",
                "description": "description-en_US-ecommerce",
                "price": "price-EUR",
                "weight": "weight",
                "weightUnit": {"column": "weight-unit", "map": {"KILOGRAM": "kg", "GRAM": "g"}},
                "active": {"column": "enabled", "map": {"1": True, "0": False}},
            },
        ),
        {
            "AK-1001": {"name": "Rotary hammer", "price": 249.0, "weightUnit": "kg"},
            "AK-1002": {"price": 119.5, "weight": 1.3},
            "AK-1003": {"active": False, "weight": 120.0, "weightUnit": "g"},
        },
        {(5, "sku", "required")},
    ),
    "pimcore_long_html": (
        products(
            "pimcore",
            csv_source("pimcore_long_html.csv"),
            "ProductCode",
            {
                "sku": "ProductCode",
                "name": "Name",
                "description": "LongDescription",
                "price": "Price",
            },  # fmt: skip
        ),
        {"PC-1": {"price": 899.0}, "PC-2": {"price": 149.0}, "PC-3": {"description": "short copy"}},
        set(),
    ),
    "shopify_products_export": (
        products(
            "shopify",
            csv_source("shopify_products_export.csv"),
            "Variant SKU",
            {
                "sku": "Variant SKU",
                "name": "Title",
                "price": "Variant Price",
                "quantityOnHand": "Variant Inventory Qty",
                "weight": "Variant Grams",
                "weightUnit": {"value": "g"},
                "upc": "Variant Barcode",
                "active": {"column": "Status", "map": {"active": True, "draft": False}},
            },
        ),
        {
            "GLV-S": {"name": "Nitrile Work Gloves", "price": 12.0, "upc": "0012345678905"},
            "GLV-M": {"price": 12.0, "weight": 130.0, "upc": "0012345678912"},
            "GLV-L": {"price": 12.5, "quantityOnHand": 0},
            "SG-100": {"active": False, "price": 8.95},
        },
        {(5, "Variant SKU", "required")},  # an image-only row
    ),
    "woocommerce_products": (
        products(
            "woo",
            csv_source("woocommerce_products.csv"),
            "SKU",
            {
                "sku": "SKU",
                "name": "Name",
                "description": "Description",
                "price": "Regular price",
                "weight": "Weight (kg)",
                "weightUnit": {"value": "kg"},
                "quantityOnHand": "Stock",
                "active": {"column": "Published", "map": {"1": True, "0": False, "-1": False}},
            },
        ),  # fmt: skip
        {
            "WC-101": {"name": "Hammer, 500 g", "description": "Line one\\nLine two"},
            "WC-103-S": {"price": 24.9, "quantityOnHand": 3},
            "WC-104": {"active": False, "price": 9.5},
        },
        {(3, "SKU", "required")},  # a variable product's parent row
    ),
    "sqlserver_items_utf16": (
        products(
            "sqlserver",
            csv_source("sqlserver_items_utf16.txt", delimiter="tab"),
            "ItemNo",
            {
                "sku": "ItemNo",
                "name": "Description",
                "price": "UnitPrice",
                "quantityOnHand": "OnHand",
                "weight": "WeightLb",
                "weightUnit": {"value": "lb"},
            },
        ),  # fmt: skip
        {
            "SQL-001": {"name": 'Pipe wrench 14"', "price": 34.5, "weight": 2.2},
            "SQL-002": {"price": 1.25, "quantityOnHand": 480},
            "SQL-003": {"price": 27.99},
        },
        set(),
    ),
    "swiss_prices": (
        products(
            "swiss",
            csv_source("swiss_prices.csv"),
            "Artikel",
            {
                "sku": "Artikel",
                "name": "Bezeichnung",
                "price": "Preis",
                "currencyCode": {"value": "CHF"},
            },  # fmt: skip
            number={"thousands": "'", "currency": "CHF"},
        ),
        {"CH-1": {"price": 1234.5}, "CH-2": {"price": 12.9}, "CH-3": {"price": 9.9}},
        {(5, "Preis", "not_a_number")},  # EUR 5.00 in a CHF list
    ),
    "french_tarifs": (
        products(
            "tarifs",
            csv_source("french_tarifs.csv", delimiter=";"),
            "Référence",
            {
                "sku": "Référence",
                "name": "Désignation",
                "price": "Prix HT",
                "weight": "Poids (kg)",
                "weightUnit": {"value": "kg"},
            },  # fmt: skip
            number={"decimal": ",", "thousands": "\u202f", "currency": "EUR"},
        ),
        {
            "FR-1": {"price": 1234.5, "weight": 2.1},
            "FR-2": {"price": 12.9},
            "FR-3": {"price": 18.0},
        },
        set(),
    ),
    "excel_de_saved_as_csv": (
        products(
            "excel_csv",
            csv_source("excel_de_saved_as_csv.csv", delimiter=";"),
            "Artikelnr",
            {"sku": "Artikelnr", "name": "Bezeichnung", "price": "VK-Preis"},
            number=GERMAN,
        ),
        {"XL-1": {"price": 4.99}, "XL-2": {"price": 7.49}},
        set(),  # the rows of nothing but separators are blank lines, not products
    ),
    "ragged_rows": (
        products(
            "ragged",
            csv_source("ragged_rows.csv"),
            "sku",
            {"sku": "sku", "name": "name", "price": "price"},
        ),  # fmt: skip
        {"RG-1": {"price": 1.0}, "RG-4": {"price": 0.1}},
        {(3, None, "malformed_row"), (4, None, "malformed_row")},
    ),
    "quoted_newlines_crlf": (
        products(
            "quoted",
            csv_source("quoted_newlines_crlf.csv"),
            "sku",
            {"sku": "sku", "name": "name", "description": "description", "price": "price"},
        ),  # fmt: skip
        {
            "QN-1": {"description": 'Three steps.\r\nFolds flat.\r\n"Max 150 kg"'},
            "QN-2": {"price": 29.0},
        },
        {(4, "price", "not_a_number")},
    ),
    "price_list_de": (
        products(
            "price_list",
            csv_source("price_list_products_de.csv", delimiter=";"),
            "Artikel",
            {"sku": "Artikel", "name": "Name"},
            price_list={
                "source": csv_source("price_list_de.csv", delimiter=";"),
                "key": "Artikel",
                "tier": "Staffel",
                "quantity": "Menge",
                "price": "Preis",
            },  # fmt: skip
            number=GERMAN,
        ),
        {
            "PL-1": {
                "prices": [
                    ("Retail", 1299.0, 1),
                    ("Retail", 1249.0, 10),
                    ("Wholesale", 999.9, 1000),
                ]
            },  # fmt: skip
            "PL-2": {"prices": [("Retail", 4.5, 1)]},
        },
        set(),
    ),
    "latin1_catalog": (
        products(
            "latin1",
            csv_source("latin1_catalog.csv", delimiter="|", encoding="latin-1"),
            "code",
            {"sku": "code", "name": "name", "price": "price"},
        ),  # fmt: skip
        {"LT-1": {"name": "Piñata tool"}, "LT-2": {"name": "Café µ-scale", "price": 49.0}},
        set(),
    ),
    "mac_cr_lines": (
        products(
            "mac",
            csv_source("mac_cr_lines.csv"),
            "sku",
            {"sku": "sku", "name": "name", "price": "price"},
        ),  # fmt: skip
        {"CR-1": {"price": 2.5}, "CR-2": {"name": "Roller", "price": 6.75}},
        set(),
    ),
    "as400_padded": (
        products(
            "as400",
            csv_source("as400_padded.txt", delimiter="|"),
            "ITNBR",
            {"sku": "ITNBR", "name": "ITDSC", "price": "PRICE"},
        ),  # fmt: skip
        {"AS-1": {"name": "Hex bolt M10", "price": 0.35}, "AS-2": {"price": 0.12}},
        set(),
    ),
}


def write_job(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / f"{spec['job']}.yml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    return path


def rejects_of(path: str | None) -> set[tuple]:
    if path is None:
        return set()
    with open(path, encoding="utf-8", newline="") as file:
        return {(int(r["row"]), r["column"] or None, r["rule"]) for r in csv.DictReader(file)}


def held_prices(product: dict) -> list[tuple]:
    return sorted((p["tier"], p["price"], p["atQuantity"]) for p in product["prices"])


@pytest.mark.parametrize("name", sorted(PRODUCT_CASES))
def test_a_product_export_lands_exactly(name, emulator, api, tmp_path):
    spec, landed, rejects = PRODUCT_CASES[name]
    summary = run_sync(write_job(tmp_path, spec), emulator, tmp_path)
    assert summary.balanced
    assert rejects_of(summary.rejects_path) == rejects
    assert (summary.created, summary.rejected) == (len(landed), len(rejects))
    held = all_products(api)
    assert set(held) == set(landed)
    for external_id, fields in landed.items():
        for field, value in fields.items():
            got = held[external_id]
            assert (held_prices(got) if field == "prices" else got[field]) == (
                sorted(value) if field == "prices" else value
            ), (external_id, field)
    again = run_sync(write_job(tmp_path, spec), emulator, tmp_path)
    assert (again.unchanged, again.created, again.updated) == (len(landed), 0, 0)


def test_long_html_descriptions_arrive_byte_for_byte(emulator, api, tmp_path):
    spec = PRODUCT_CASES["pimcore_long_html"][0]
    run_sync(write_job(tmp_path, spec), emulator, tmp_path)
    with (EXPORTS / "pimcore_long_html.csv").open(encoding="utf-8", newline="") as file:
        source = {r["ProductCode"]: r["LongDescription"] for r in csv.DictReader(file)}
    held = all_products(api)
    assert len(source["PC-2"]) > 600_000  # beyond the CSV reader's 256 KiB block
    for code, text in source.items():
        assert held[code]["description"] == text


# --- customers and orders: a migration's order, customers and products first ------------------

CUSTOMERS = {
    "job": "crm",
    "entity": "customers",
    "source": csv_source("crm_customers_cp1252.csv", delimiter=";"),
    "key": "Kundennummer",
    "fields": {
        "companyName": "Firma",
        "companyEmail": "E-Mail",
        "companyPhone": "Telefon",
        "pricing": "Preisgruppe",
        "terms": "Zahlungsbedingung",
        "currencyCode": "Währung",
        "active": {"value": True},
    },
}
ORDERS_DE = {
    "job": "erp_de",
    "entity": "orders",
    "source": csv_source("erp_orders_de.csv", delimiter=";"),
    "key": "Auftrag",
    "timezone": "Europe/Berlin",
    "number": GERMAN,
    "fields": {
        "orderNumber": "Belegnummer",
        "orderDate": {"column": "Datum", "format": "%d.%m.%Y %H:%M"},
        "orderStatus": {"column": "Status", "map": {"O": "Pending", "C": "Complete"}},
        "currencyCode": "Waehrung",
        "customer.customerNumber": "Kunde",
        "shippingDetails.shippingTotal": "Versandkosten",
    },
    "items": {
        "source": csv_source("erp_order_lines_de.csv", delimiter=";"),
        "key": "Auftrag",
        "sku": "Material",
        "quantity": "Menge",
        "price": "Einzelpreis",
    },
}
ORDERS_ISO = {
    "job": "erp_iso",
    "entity": "orders",
    "source": csv_source("orders_denormalized_iso.csv"),
    "key": "order_id",
    "timezone": "UTC",
    "fields": {
        "orderNumber": "order_number",
        "orderDate": "placed_at",
        "customer.customerNumber": "customer",
    },
    "items": {"sku": "sku", "quantity": "qty", "price": "price"},
}


def test_customers_from_a_german_crm(emulator, api, tmp_path):
    summary = run_sync(write_job(tmp_path, CUSTOMERS), emulator, tmp_path)
    assert (summary.created, summary.rejected) == (2, 1)
    assert rejects_of(summary.rejects_path) == {(4, "Kundennummer", "duplicate_externalId")}
    got = api.get("/api/customers/K-1002").json()
    assert (got["companyName"], got["currencyCode"]) == ("Bäckerei Groß KG", "EUR")
    assert api.get("/api/customers/K-1001").json()["companyName"] == "Müller Haustechnik GmbH"


@pytest.fixture
def migrated(emulator, tmp_path):
    """The SAP products and the CRM customers are at the target, as orders need."""
    for spec in (PRODUCT_CASES["sap_materials_cp1252"][0], CUSTOMERS):
        run_sync(write_job(tmp_path, spec), emulator, tmp_path)
    return emulator


def test_german_orders_with_local_times_and_decimal_commas(migrated, api, tmp_path):
    summary = run_sync(write_job(tmp_path, ORDERS_DE), migrated, tmp_path)
    assert (summary.created, summary.rejected) == (2, 1)
    assert rejects_of(summary.rejects_path) == {(4, "Datum", "not_a_date")}  # 32.07.
    winter, summer = order(api, "SO-DE-1"), order(api, "SO-DE-2")
    assert winter["orderDate"] == "2024-01-31T00:30:00Z"  # CET, UTC+1
    assert summer["orderDate"] == "2024-07-14T23:30:00Z"  # CEST, UTC+2: the day before
    assert [(i["sku"], i["quantity"], i["price"]) for i in winter["items"]] == [
        ("MAT-100001", 1000, Decimal("0.59")),
        ("MAT-100003", 2, Decimal("162.59")),
    ]
    assert summer["items"][0]["price"] == Decimal("1234.5")
    assert summer["shippingDetails"]["shippingTotal"] == Decimal("1015")


def test_orders_with_offsets_in_their_dates_convert_exactly(migrated, api, tmp_path):
    summary = run_sync(write_job(tmp_path, ORDERS_ISO), migrated, tmp_path)
    assert (summary.created, summary.rejected) == (2, 0)
    assert order(api, "SO-ISO-1")["orderDate"] == "2024-03-31T00:30:00Z"
    assert len(order(api, "SO-ISO-1")["items"]) == 2
    assert order(api, "SO-ISO-2")["orderDate"] == "2024-10-27T02:30:00Z"
