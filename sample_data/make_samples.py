"""Write the sample files in this folder; see README.md for what each holds and its defects.

Deterministic (fixed seed, stdlib ``random``, no network): rerunning it rewrites identical files.

    python sample_data/make_samples.py
"""

from __future__ import annotations

import csv
import random
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SEED = 20_240_611
ROWS = 2_000  # data records in products.csv, the bad ones included

COLUMNS = [
    "sku", "name", "description", "category", "price_retail", "price_wholesale",
    "price_wholesale_50", "qty_on_hand", "min_order_qty", "weight", "weight_unit", "upc",
    "status", "color", "size",
]  # fmt: skip
TEXT_COLUMNS = ["sku", "name", "description", "category", "weight_unit", "color", "size"]

# Spreadsheet row numbers (header = row 1) of the deliberate bad rows; README.md lists them.
EMPTY_SKU, NEGATIVE_PRICE, TEXT_QTY, DUPLICATE_SKU, TEXT_WHOLESALE, MISSING_FIELD = (
    57, 311, 602, 988, 1375, 1730,
)  # fmt: skip
DUPLICATE_OF = 140

# category: (SKU prefix, product nouns, sizes, retail price range)
# fmt: off
CATALOG = {
    "Fasteners": ("FST", ["Hex Bolt", "Wood Screw", "Lag Screw", "Flat Washer", "Nylon Lock Nut",
                          "Drywall Anchor"], ["1/4 in", "5/16 in", "3/8 in", "1/2 in", "M6", "M8"],
                  (0.19, 24.99)),
    "Hand Tools": ("HTL", ["Claw Hammer", "Screwdriver Set", "Adjustable Wrench", "Tape Measure",
                           "Utility Knife", "Hex Key Set"], ["", "6 in", "8 in", "10 in", "25 ft"],
                   (4.99, 89.99)),
    "Safety": ("SAF", ["Safety Glasses", "Work Gloves", "Hard Hat", "Hi-Vis Vest", "Ear Plugs",
                       "Dust Mask"], ["S", "M", "L", "XL", "One Size"], (1.49, 59.99)),
    "Electrical": ("ELC", ["Wire Connector", "Extension Cord", "Outlet Box", "Circuit Tester",
                           "Cable Tie", "Electrical Tape"],
                   ["", "14 AWG", "12 AWG", "25 ft", "50 ft"], (0.99, 79.99)),
    "Plumbing": ("PLB", ["Ball Valve", "Pipe Fitting", "PTFE Tape", "Compression Elbow",
                         "Drain Snake", "Faucet Cartridge"], ["1/2 in", "3/4 in", "1 in", ""],
                 (1.99, 119.99)),
    "Power Tools": ("PWT", ["Cordless Drill", "Angle Grinder", "Jigsaw", "Impact Driver",
                            "Orbital Sander"], ["", "18V", "20V", "12V"], (39.99, 499.99)),
    "Lighting": ("LGT", ["LED Work Light", "Shop Light", "Headlamp", "Flashlight"],
                 ["", "1000 lm", "3000 lm", "5000 lm"], (7.99, 149.99)),
    "Adhesives": ("ADH", ["Epoxy", "Wood Glue", "Construction Adhesive", "Super Glue"],
                  ["", "1 oz", "8 oz", "10 oz", "1 gal"], (2.49, 39.99)),
    "Storage": ("STO", ["Tool Box", "Parts Organizer", "Shelf Bin", "Tool Bag"],
                ["", "S", "M", "L"], (5.99, 199.99)),
}
ADJECTIVES = ["Heavy-Duty", "Compact", "Industrial", "Precision", "Standard", "Pro",
              "Insulated", "Corrosion-Resistant", "Quick-Release", "Low-Profile"]
MATERIALS = ["Steel", "Stainless", "Brass", "Nylon", "Aluminum", "Zinc-Plated", "Fiberglass"]
BRANDS = ["Café Series", "Nøkkel", "Élan", "Søren Pro", "Ångström", "Müller"]  # non-ASCII names
COLORS = {"Black": "BK", "Blue": "BL", "Red": "RD", "Yellow": "YL", "Silver": "SV",
          "Orange": "OR", "Green": "GN", "Gray": "GY"}
USES = ["for workshop and job site use", "for residential and light commercial work",
        "for maintenance crews", "rated for outdoor use", "built for daily professional use"]
FEATURES = ["easy to install", "meets ANSI standards", "sold individually",
            "resists rust, heat and wear", "includes mounting hardware", "ergonomic grip",
            "lifetime warranty"]
# fmt: on


def main() -> None:
    rng = random.Random(SEED)
    products = make_products(rng)
    pad_some_cells(rng, products)
    break_rows(products)
    write_products_csv(HERE / "products.csv", products)
    write_products_parquet(HERE / "products.parquet", products)
    write_price_list(HERE / "price_list.csv", rng, products)


def row_index(row: int) -> int:
    """List index of a spreadsheet row number (header = row 1)."""
    return row - 2


def make_products(rng: random.Random) -> list[dict[str, str]]:
    number = 10_000
    products = []
    for _ in range(ROWS):
        number += rng.randint(1, 7)  # gaps, as in a catalog that has lost items over the years
        products.append(make_product(rng, number))
    return products


def make_product(rng: random.Random, number: int) -> dict[str, str]:
    category = rng.choice(list(CATALOG))
    prefix, nouns, sizes, (low, high) = CATALOG[category]
    color = rng.choice([*COLORS, ""])
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(nouns)}"
    if rng.random() < 0.05:
        name = f"{rng.choice(BRANDS)} — {name}"
    retail = money(rng.uniform(low, high))
    wholesale = money(float(retail) * rng.uniform(0.6, 0.85))
    return {
        "sku": f"{prefix}-{number}-{COLORS.get(color, 'NC')}",
        "name": name,
        "description": description(rng, name),
        "category": category,
        "price_retail": str(retail),
        "price_wholesale": str(wholesale),
        "price_wholesale_50": str(money(float(wholesale) * 0.92)) if rng.random() < 0.5 else "",
        "qty_on_hand": str(rng.choice([0, rng.randint(1, 40), rng.randint(40, 5_000)])),
        "min_order_qty": str(rng.choice([1, 1, 1, 5, 10, 25, 50])),
        "weight": str(money(rng.uniform(0.02, 45))),
        "weight_unit": rng.choices(["lb", "kg"], weights=[7, 3])[0],
        "upc": upc(rng, leading_zero=rng.random() < 0.2),
        "status": rng.choices(["A", "I"], weights=[9, 1])[0],
        "color": color,
        "size": rng.choice(sizes),
    }


def description(rng: random.Random, name: str) -> str:
    """Plain, with commas, or with quotes: exports must quote the last two properly."""
    kind = rng.random()
    if kind < 0.55:
        return f"{name} {rng.choice(USES)}."
    if kind < 0.85:
        return f"{name} {rng.choice(USES)}, {rng.choice(FEATURES)}, {rng.choice(FEATURES)}."
    return f'{name}, {rng.choice(USES)}; label reads "{rng.choice(FEATURES)}".'


def money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def upc(rng: random.Random, *, leading_zero: bool) -> str:
    """A 12-digit UPC-A with a valid check digit; the company prefix may start with 0."""
    first = "0" if leading_zero else str(rng.randint(1, 9))
    body = first + "".join(str(rng.randint(0, 9)) for _ in range(10))
    odd = sum(int(d) for d in body[0::2])
    even = sum(int(d) for d in body[1::2])
    return body + str((10 - (odd * 3 + even) % 10) % 10)


def pad_some_cells(rng: random.Random, products: list[dict[str, str]]) -> None:
    """Stray spaces around ~3% of text cells: harmless once the mapper trims."""
    for product in products:
        for column in TEXT_COLUMNS:
            if product[column] and rng.random() < 0.03:
                product[column] = (
                    rng.choice([" ", "  ", ""]) + product[column] + rng.choice([" ", "", "   "])
                )


def break_rows(products: list[dict[str, str]]) -> None:
    """Plant the defects README.md lists, each in its own row."""
    products[row_index(EMPTY_SKU)]["sku"] = ""
    products[row_index(NEGATIVE_PRICE)]["price_retail"] = "-4.50"
    products[row_index(TEXT_QTY)]["qty_on_hand"] = "twelve"
    products[row_index(DUPLICATE_SKU)]["sku"] = products[row_index(DUPLICATE_OF)]["sku"].strip()
    products[row_index(TEXT_WHOLESALE)]["price_wholesale"] = "abc"


def write_products_csv(path: Path, products: list[dict[str, str]]) -> None:
    """UTF-8 with a BOM and CRLF line ends, as spreadsheet-minded PIM exports write them."""
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        writer = csv.writer(file, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row, product in enumerate(products, start=2):
            values = [product[column] for column in COLUMNS]
            writer.writerow(values[:-1] if row == MISSING_FIELD else values)


def write_products_parquet(path: Path, products: list[dict[str, str]]) -> None:
    """Same rows and order minus the malformed one; all strings, so UPC zeros survive."""
    kept = [p for row, p in enumerate(products, start=2) if row != MISSING_FIELD]
    columns = {c: pa.array([p[c] or None for p in kept], pa.string()) for c in COLUMNS}
    pq.write_table(pa.table(columns), path)


def write_price_list(path: Path, rng: random.Random, products: list[dict[str, str]]) -> None:
    """Quantity breaks for 300 good catalog SKUs; a tier's price falls as quantity rises."""
    bad = {EMPTY_SKU, NEGATIVE_PRICE, TEXT_QTY, DUPLICATE_SKU, TEXT_WHOLESALE, MISSING_FIELD}
    good = [p for row, p in enumerate(products, start=2) if row not in bad | {DUPLICATE_OF}]
    chosen = sorted(rng.sample(range(len(good)), 300))
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["sku", "tier", "quantity", "price"])
        for index in chosen:
            for tier, quantity, price in tiers(rng, good[index]):
                writer.writerow([good[index]["sku"].strip(), tier, quantity, price])


def tiers(rng: random.Random, product: dict[str, str]):
    retail, wholesale = Decimal(product["price_retail"]), Decimal(product["price_wholesale"])
    breaks = {
        "Retail": (retail, [1, 10, 50]),
        "Wholesale": (wholesale, [1, 10, 50, 100]),
        "Distributor": (money(float(wholesale) * 0.85), [1, 50, 100, 250, 500]),
    }
    for tier, (base, quantities) in breaks.items():
        price = base
        for quantity in quantities:
            yield tier, quantity, price
            # 3-12% off per break, and at least a cent, so prices strictly fall
            price = min(price - Decimal("0.01"), money(float(price) * rng.uniform(0.88, 0.97)))
            if price <= 0:
                break


if __name__ == "__main__":
    main()
