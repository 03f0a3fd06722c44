"""Deterministic product catalogs for benchmarks, shaped like ``sample_data/products.csv``.

Every value is built column-wise with numpy and pyarrow compute, so a million rows take seconds.
The same ``rows`` and ``seed`` always give byte-identical files. Unlike the sample data, these
catalogs have no defects and no byte order mark, and SKUs are unique (``SKU-0000001`` ...).

Run it::

    python bench/catalog.py --rows 1000000 --out bench/out/catalog_1m.csv
    python bench/catalog.py --rows 1000000 --out bench/out/catalog_1m.csv \\
        --delta bench/out/catalog_1m_delta.csv --fraction 0.01
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

__all__ = ["COLUMNS", "apply_delta", "generate_catalog"]

# fmt: off
COLUMNS = [
    "sku", "name", "description", "category", "price_retail", "price_wholesale",
    "price_wholesale_50", "qty_on_hand", "min_order_qty", "weight", "weight_unit", "upc",
    "status", "color", "size",
]

_CATEGORIES = ["Fasteners", "Hand Tools", "Safety", "Electrical", "Plumbing", "Power Tools",
               "Adhesives", "Lighting", "Storage", "Abrasives"]
_ADJECTIVES = ["Heavy-Duty", "Compact", "Industrial", "Precision", "Standard", "Pro",
               "Insulated", "Corrosion-Resistant", "Quick-Release", "Low-Profile"]
_MATERIALS = ["Steel", "Stainless", "Brass", "Nylon", "Aluminum", "Zinc-Plated", "PVC",
              "Fiberglass"]
_NOUNS = ["Hex Bolt", "Wood Screw", "Claw Hammer", "Safety Glasses", "Wire Connector",
          "Pipe Fitting", "Cordless Drill", "Epoxy", "LED Work Light", "Tool Box",
          "Sanding Disc", "Socket Set", "Work Gloves", "Ball Valve", "Cable Tie"]
_USES = ["for workshop and job site use", "for residential and light commercial work",
         "for maintenance crews", "rated for outdoor use",
         "built for daily professional use"]
_FEATURES = ["easy to install", "meets ANSI standards", "sold individually",
             "resists rust, heat and wear", "includes mounting hardware",
             "ergonomic grip", "lifetime warranty"]
_COLORS = ["Black", "Blue", "Red", "Yellow", "Silver", "Orange", "Green", "Gray"]
_SIZES = ["XS", "S", "M", "L", "XL", "1/4 in", "3/8 in", "1/2 in", "10 mm", "12 mm", "One Size"]
_UNITS = ["lb", "kg"]
_STATUSES = ["A", "I"]
# fmt: on


def generate_catalog(
    path: Path, rows: int, *, seed: int = 1, fmt: Literal["csv", "parquet"] = "csv"
) -> Path:
    """Write a ``rows``-row catalog to ``path`` as CSV (no BOM) or Parquet (all strings)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    batch_rows = 250_000  # bounds memory; the RNG stream is continuous, so output is stable
    with _TableWriter(path, fmt) as writer:
        for start in range(0, rows, batch_rows):
            writer.write(_catalog_batch(rng, start, min(batch_rows, rows - start)))
    return path


def _catalog_batch(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    ids = np.arange(start + 1, start + n + 1)
    name = _join(_pick(rng, _ADJECTIVES, n), _pick(rng, _MATERIALS, n), _pick(rng, _NOUNS, n))
    description = _join(
        name, _pick(rng, _USES, n), pa.repeat(";", n), _pick(rng, _FEATURES, n),
        pa.repeat("and", n), _pick(rng, _FEATURES, n),
    )  # fmt: skip
    retail = rng.integers(199, 250_000, n)
    wholesale = retail * rng.integers(55, 90, n) // 100
    wholesale_50 = _money(wholesale * 95 // 100)
    columns = {
        "sku": _prefixed("SKU-", ids, 7),
        "name": name,
        "description": pc.replace_substring(description, " ; ", ", "),
        "category": _pick(rng, _CATEGORIES, n),
        "price_retail": _money(retail),
        "price_wholesale": _money(wholesale),
        "price_wholesale_50": pc.if_else(pa.array(rng.random(n) < 0.5), wholesale_50, None),
        "qty_on_hand": _digits(rng.integers(0, 5_000, n)),
        "min_order_qty": _pick(rng, ["1", "1", "1", "5", "10", "25"], n),
        "weight": _money(rng.integers(1, 5_000, n)),
        "weight_unit": _pick(rng, _UNITS, n),
        "upc": _prefixed("", rng.integers(0, 10**12, n), 12),
        "status": _pick(rng, _STATUSES, n, p=[0.9, 0.1]),
        "color": _pick(rng, _COLORS, n),
        "size": _pick(rng, _SIZES, n),
    }
    return pa.table(columns)


def apply_delta(src: Path, dst: Path, *, fraction: float = 0.01, seed: int = 2) -> int:
    """Copy catalog ``src`` to ``dst`` with new price_retail and qty_on_hand on some rows.

    Exactly ``round(rows * fraction)`` rows change, chosen by ``seed``; returns that count.
    The format (CSV or Parquet) follows each path's suffix.
    """
    src, dst = Path(src), Path(dst)
    total = sum(batch.num_rows for batch in _read_batches(src))
    changed = round(total * fraction)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, size=changed, replace=False))
    dst.parent.mkdir(parents=True, exist_ok=True)
    offset = 0
    with _TableWriter(dst, _fmt(dst)) as writer:
        for batch in _read_batches(src):
            table = pa.Table.from_batches([batch])
            local = chosen[(chosen >= offset) & (chosen < offset + len(table))] - offset
            writer.write(_change_rows(table, local, rng))
            offset += len(table)
    return changed


def _change_rows(table: pa.Table, local: np.ndarray, rng: np.random.Generator) -> pa.Table:
    if len(local) == 0:
        return table
    mask = np.zeros(len(table), dtype=bool)
    mask[local] = True
    cents = np.rint(table["price_retail"].to_numpy().astype(np.float64) * 100).astype(np.int64)
    qty = table["qty_on_hand"].to_numpy().astype(np.int64)
    # strictly positive bumps, so every chosen row really differs from its source
    cents[local] += rng.integers(1, 500, len(local))
    qty[local] += rng.integers(1, 50, len(local))
    flag = pa.array(mask)
    price = pc.if_else(flag, _money(cents), table["price_retail"])
    table = table.set_column(table.schema.get_field_index("price_retail"), "price_retail", price)
    qty_text = pc.if_else(flag, _digits(qty), table["qty_on_hand"])
    return table.set_column(table.schema.get_field_index("qty_on_hand"), "qty_on_hand", qty_text)


def _read_batches(path: Path) -> Iterator[pa.RecordBatch]:
    if _fmt(path) == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=250_000)
        return
    types = {name: pa.string() for name in COLUMNS}
    yield from pacsv.open_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )


class _TableWriter:
    """One CSV or Parquet writer for tables written batch by batch with the same schema."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt, self._writer = path, fmt, None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            if self.fmt == "parquet":
                self._writer = pq.ParquetWriter(self.path, table.schema)
            else:
                self._writer = pacsv.CSVWriter(self.path, table.schema)
        self._writer.write_table(table)

    def __enter__(self) -> _TableWriter:
        return self

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()


def _fmt(path: Path) -> Literal["csv", "parquet"]:
    return "parquet" if path.suffix.lower() in {".parquet", ".pq"} else "csv"


def _pick(rng: np.random.Generator, values: list[str], n: int, p=None) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(rng.choice(len(values), n, p=p)))


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, " ")


def _digits(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(values, pa.int64()), pa.string())


def _prefixed(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    padded = pc.utf8_lpad(_digits(values), width=width, padding="0")
    return pc.binary_join_element_wise(pa.repeat(prefix, len(values)), padded, "")


def _money(cents: np.ndarray) -> pa.Array:
    """Cents as text with exactly two decimals (``1234`` → ``"12.34"``), as exports print them."""
    whole = _digits(cents // 100)
    frac = pc.utf8_lpad(_digits(cents % 100), width=2, padding="0")
    return pc.binary_join_element_wise(whole, frac, ".")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/catalog_1m.csv"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delta", type=Path, help="also write a changed copy here")
    parser.add_argument("--fraction", type=float, default=0.01)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    generate_catalog(args.out, args.rows, seed=args.seed, fmt=_fmt(args.out))
    size_mb = args.out.stat().st_size / 1e6
    seconds = time.perf_counter() - began
    print(f"{args.out}: {args.rows:,} rows, {size_mb:.0f} MB in {seconds:.2f} s")
    if args.delta:
        began = time.perf_counter()
        changed = apply_delta(args.out, args.delta, fraction=args.fraction)
        print(f"{args.delta}: {changed:,} rows changed in {time.perf_counter() - began:.2f} s")


if __name__ == "__main__":
    main()
