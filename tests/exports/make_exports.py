"""Write the export corpus in this folder: files shaped like what ERPs, PIMs and spreadsheets
really write (encodings, delimiters, line endings, number styles, quoting). Run it from the
repository root to rebuild them: ``python tests/exports/make_exports.py``. The files are kept
in git so that a reader sees the bytes a test reads; the giant-cell files are made at test time
(tests/test_exports.py) instead, as 20 MiB does not belong in git."""

from __future__ import annotations

import codecs
from pathlib import Path

HERE = Path(__file__).parent
NNBSP, NBSP = "\u202f", "\u00a0"


def write(name: str, lines: list[str], *, encoding="utf-8", newline="\n", bom=b"") -> None:
    text = newline.join(lines) + newline
    (HERE / name).write_bytes(bom + text.encode(encoding))


def html(paragraphs: int, tag: str) -> str:
    """Product copy as PIMs export it: markup, quotes, line breaks, an embedded image."""
    body = "\n".join(
        f'<p class="copy">{tag} paragraph {i}: rated "heavy duty", 10&nbsp;mm &amp; up.</p>'
        for i in range(paragraphs)
    )
    image = "iVBORw0KGgo" + "A" * 2000
    return f'<div>\n{body}\n<img src="data:image/png;base64,{image}" alt="{tag}">\n</div>'


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def main() -> None:
    # SAP MM material export: semicolon, Windows-1252, CRLF, decimal commas, thousands dots,
    # negative amounts with a trailing minus.
    write(
        "sap_materials_cp1252.csv",
        [
            "Materialnummer;Materialkurztext;Warengruppe;Preis;Staffelpreis ab 10;"
            "Bruttogewicht;Gewichtseinheit;Bestand;Status",
            "MAT-100001;Schraube M8 verzinkt;Befestigung;0,59;0,49;0,012;KG;12.500;A",
            "MAT-100002;Dübel Ø10 mm;Befestigung;1,29;;0,004;KG;3.200;A",
            "MAT-100003;Winkelschleifer 125 mm;Elektrowerkzeug;162,59;149,00;2,35;KG;85;A",
            "MAT-100004;Kabeltrommel 50 m;Elektro;1.234,50;1.199,00;9,8;KG;4;A",
            "MAT-100005;Gutschrift Muster;Sonstiges;12,00-;;0;KG;0;A",
            'MAT-100006;"Säge ""Profi""";Werkzeug;23,5;;1,1;KG;17;I',
            "MAT-100007;Zollstock 2 m;Messwerkzeug;1,234.50;;0,3;KG;40;A",
            "MAT-100008;Maßband 5 m;Messwerkzeug;7,95;;0,2;KG;1.0;A",
        ],
        encoding="cp1252",
        newline="\r\n",
    )
    # The same export after someone re-saved it as "UTF-8 with BOM"; the job still says cp1252.
    write(
        "sap_materials_bom.csv",
        [
            "Materialnummer;Materialkurztext;Preis;Status",
            "MAT-200001;Dübel Ø8 mm;0,99;A",
            "MAT-200002;Gehörschutz;14,90;A",
        ],
        newline="\r\n",
        bom=codecs.BOM_UTF8,
    )
    # Akeneo product export: semicolon, UTF-8, locale-suffixed columns, HTML descriptions with
    # line breaks and quotes, 1/0 flags, measurement units as Akeneo codes.
    akeneo_rows = [
        (
            "AK-1001",
            "1",
            "Bohrhammer SDS-plus",
            "Rotary hammer",
            html(3, "AK-1001"),
            "249.00",
            "2.8",
            "KILOGRAM",
        ),
        (
            "AK-1002",
            "1",
            "Akku-Schrauber",
            "Cordless driver",
            html(2, "AK-1002"),
            "119.50",
            "1.3",
            "KILOGRAM",
        ),
        ("AK-1003", "0", "Schleifpapier", "Sanding sheets", "", "4.95", "120", "GRAM"),
        ("", "1", "Ohne SKU", "No SKU", "", "1.00", "1", "GRAM"),
    ]
    write(
        "akeneo_products.csv",
        [
            "sku;enabled;name-de_DE;name-en_US;description-en_US-ecommerce;price-EUR;weight;"
            "weight-unit"
        ]
        + [";".join(quoted(v) if "\n" in v or '"' in v else v for v in r) for r in akeneo_rows],
    )
    # Pimcore export: comma, UTF-8, one 150 KB and one 600 KB description (beyond Arrow's
    # 256 KiB read block), quoted.
    write(
        "pimcore_long_html.csv",
        [
            "ProductCode,Name,LongDescription,Price",
            f"PC-1,Workbench,{quoted(html(600, 'PC-1'))},899.00",
            f"PC-2,Vice,{quoted(html(8000, 'PC-2'))},149.00",
            "PC-3,Clamp,short copy,19.90",
        ],
    )
    # Shopify products export: one row per variant, the title only on a handle's first row,
    # image-only rows with no SKU, TRUE/FALSE, grams.
    shopify_header = (
        "Handle,Title,Body (HTML),Vendor,Product Category,Type,Tags,Published,Option1 Name,"
        "Option1 Value,Variant SKU,Variant Grams,Variant Inventory Tracker,Variant Inventory Qty,"
        "Variant Inventory Policy,Variant Fulfillment Service,Variant Price,"
        "Variant Compare At Price,Variant Requires Shipping,Variant Taxable,Variant Barcode,"
        "Image Src,Image Position,Image Alt Text,Gift Card,Status"
    )
    write(
        "shopify_products_export.csv",
        [
            shopify_header,
            'work-gloves,Nitrile Work Gloves,"<p>Grip in wet conditions.</p>",Acme,,Gloves,'
            '"safety, gloves",TRUE,Size,S,GLV-S,120,shopify,40,deny,manual,12.00,14.00,TRUE,'
            "TRUE,0012345678905,https://cdn.example/glv.jpg,1,,FALSE,active",
            "work-gloves,,,,,,,,,M,GLV-M,130,shopify,35,deny,manual,12.00,14.00,TRUE,TRUE,"
            "0012345678912,,,,,active",
            "work-gloves,,,,,,,,,L,GLV-L,140,shopify,0,deny,manual,12.50,,TRUE,TRUE,,,,,,active",
            "work-gloves,,,,,,,,,,,,,,,,,,,,,https://cdn.example/glv-2.jpg,2,,,",
            "safety-glasses,Clear Safety Glasses,<p>EN 166.</p>,Acme,,Eyewear,safety,FALSE,"
            "Title,Default Title,SG-100,45,shopify,10,deny,manual,8.95,,TRUE,TRUE,,,,,FALSE,draft",
        ],
    )
    # WooCommerce export: UTF-8 with BOM, quoted headers, newlines written as a literal \n,
    # variable parents without a SKU or a price.
    write(
        "woocommerce_products.csv",
        [
            'ID,Type,SKU,Name,Published,"Is featured?","Short description",Description,'
            '"Regular price","Sale price","Weight (kg)",Stock',
            '101,simple,WC-101,"Hammer, 500 g",1,0,"Steel head","Line one\\nLine two",'
            "19.99,,0.5,12",
            "102,variable,,Spanner set,1,0,,,,,,",
            '103,variation,WC-103-S,"Spanner set - S",1,0,,,24.90,21.90,0.8,3',
            '104,simple,WC-104,"Tape measure",-1,0,,,"9.5",,0.2,',
        ],
        bom=codecs.BOM_UTF8,
    )
    # SQL Server "Save results as" / bcp -w: UTF-16 LE with BOM, tab-separated, CRLF, money
    # with four decimals.
    write(
        "sqlserver_items_utf16.txt",
        [
            "ItemNo\tDescription\tUnitPrice\tOnHand\tWeightLb",
            'SQL-001\tPipe wrench 14"\t34.5000\t12\t2.2000',
            "SQL-002\tThread seal tape\t1.2500\t480\t0.0500",
            "SQL-003\tBasin wrench\t27.9900\t0\t1.1000",
        ],
        encoding="utf-16-le",
        newline="\r\n",
        bom=codecs.BOM_UTF16_LE,
    )
    # A Swiss price list: apostrophe thousands, prices written with their currency.
    write(
        "swiss_prices.csv",
        [
            "Artikel,Bezeichnung,Preis",
            "CH-1,Bohrmaschine,CHF 1'234.50",
            "CH-2,Bit-Set,Fr. 12.90",
            "CH-3,Schutzbrille,9.90 CHF",
            "CH-4,Handschuhe,EUR 5.00",
        ],
    )
    # A French tariff: narrow no-break space thousands, decimal comma, the euro sign after.
    write(
        "french_tarifs.csv",
        [
            "Référence;Désignation;Prix HT;Poids (kg)",
            f"FR-1;Perceuse à percussion;1{NNBSP}234,50{NBSP}€;2,1",
            f"FR-2;Mèches béton;12,90{NBSP}€;0,35",
            "FR-3;Niveau à bulle;18,00 €;0,4",
        ],
    )
    # Excel "Save as CSV" on a German Windows: cp1252, semicolon, CRLF, empty trailing
    # columns (formatted cells), and rows of nothing but separators at the end.
    write(
        "excel_de_saved_as_csv.csv",
        [
            "Artikelnr;Bezeichnung;VK-Preis;;",
            "XL-1;Spachtel;4,99;;",
            "XL-2;Kelle;7,49;;",
            ";;;;",
            ";;;;",
        ],
        encoding="cp1252",
        newline="\r\n",
    )
    # Rows with too many or too few fields (an unquoted comma in a name, a cut-off line).
    write(
        "ragged_rows.csv",
        [
            "sku,name,price",
            "RG-1,Bolt,1.00",
            "RG-2,Nut, hex,0.20",
            "RG-3,Washer",
            "RG-4,Screw,0.10",
        ],
    )
    # Multi-line quoted values with Windows line endings; the row after them is still row 4.
    write(
        "quoted_newlines_crlf.csv",
        [
            "sku,name,description,price",
            'QN-1,Ladder,"Three steps.\r\nFolds flat.\r\n""Max 150 kg""",89.00',
            'QN-2,Stool,"One step.\r\nNon-slip.",29.00',
            "QN-3,Trestle,,not a price",
        ],
        newline="\r\n",
    )
    # A separate price list with quantity breaks, German style, and its products.
    write(
        "price_list_de.csv",
        [
            "Artikel;Staffel;Menge;Preis",
            "PL-1;Retail;1;1.299,00",
            "PL-1;Retail;10;1.249,00",
            "PL-1;Wholesale;1.000;999,90",
            "PL-2;Retail;1;4,5",
        ],
        encoding="cp1252",
    )
    write(
        "price_list_products_de.csv",
        ["Artikel;Name", "PL-1;Kompressor 50 l", "PL-2;Druckluftschlauch"],
        encoding="cp1252",
    )
    # ISO-8859-1 (declared), as older Unix ERPs write.
    write(
        "latin1_catalog.csv",
        ["code|name|price", "LT-1|Piñata tool|3.50", "LT-2|Café µ-scale|49.00"],
        encoding="latin-1",
    )
    # Classic Mac OS line endings (CR only), still written by some legacy tools.
    write(
        "mac_cr_lines.csv", ["sku,name,price", "CR-1,Brush,2.50", "CR-2,Roller,6.75"], newline="\r"
    )
    # AS/400 fixed-width values padded with spaces, pipe-delimited.
    write(
        "as400_padded.txt",
        [
            "ITNBR     |ITDSC               |PRICE     ",
            "AS-1      |Hex bolt M10        |      0.35",
            "AS-2      |Lock nut M10        |      0.12",
        ],
    )
    # CRM customers: semicolon, cp1252, umlauts in names, a repeated customer number.
    write(
        "crm_customers_cp1252.csv",
        [
            "Kundennummer;Firma;E-Mail;Telefon;Preisgruppe;Zahlungsbedingung;Währung",
            "K-1001;Müller Haustechnik GmbH;einkauf@mueller.example;+49 30 1234567;Wholesale;"
            "NET30;EUR",
            "K-1002;Bäckerei Groß KG;info@gross.example;+49 89 7654321;Retail;NET14;EUR",
            "K-1001;Müller Haustechnik GmbH (alt);alt@mueller.example;;Wholesale;NET30;EUR",
        ],
        encoding="cp1252",
    )
    # ERP orders, German style: headers and lines in two files, dd.mm.yyyy local times (one in
    # winter, one in summer), decimal commas, thousands dots.
    write(
        "erp_orders_de.csv",
        [
            "Auftrag;Belegnummer;Kunde;Datum;Status;Versandkosten;Waehrung",
            "A-1;SO-DE-1;K-1002;31.01.2024 01:30;O;4,90;EUR",
            "A-2;SO-DE-2;K-1002;15.07.2024 01:30;C;1.015,00;EUR",
            "A-3;SO-DE-3;K-1002;32.07.2024 10:00;C;0,00;EUR",
        ],
        encoding="cp1252",
        newline="\r\n",
    )
    write(
        "erp_order_lines_de.csv",
        [
            "Auftrag;Pos;Material;Menge;Einzelpreis",
            "A-1;10;MAT-100001;1.000;0,59",
            "A-1;20;MAT-100003;2;162,59",
            "A-2;10;MAT-100004;1;1.234,50",
            "A-3;10;MAT-100002;5;1,29",
        ],
        encoding="cp1252",
        newline="\r\n",
    )
    # Orders, one row per line, ISO 8601 with offsets (a DST night): converted exactly.
    write(
        "orders_denormalized_iso.csv",
        [
            "order_id,order_number,customer,placed_at,sku,qty,price",
            "B-1,SO-ISO-1,K-1001,2024-03-31T02:30:00+02:00,MAT-100001,10,0.59",
            "B-1,SO-ISO-1,K-1001,2024-03-31T02:30:00+02:00,MAT-100002,5,1.29",
            "B-2,SO-ISO-2,K-1001,2024-10-27T02:30:00Z,MAT-100003,1,162.59",
        ],
    )


if __name__ == "__main__":
    main()
