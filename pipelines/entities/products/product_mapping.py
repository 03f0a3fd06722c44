"""Shape source rows into Nymble product records, one chunk at a time, column by column.

The result is an Arrow table whose columns are the API's field names (``externalId``, ``sku``,
``prices``, ``productAttributes`` …) plus the cell-level failures met on the way (a number that
does not parse, a code missing from a value map). Nothing here drops rows: ``validate`` does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.contract import PRODUCT_FIELDS
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_job import ProductsJob, TierPrice
from pipelines.extract.chunks import Chunk
from pipelines.jobs.specs import ColumnMap, Constant
from pipelines.quality.row_checks import Failure
from pipelines.transform.convert import convert, normalize_text, value_map
from pipelines.transform.numbers import is_text, read_number_columns

__all__ = ["PRICE_TYPE", "map_identities", "map_products"]

PRICE_TYPE = pa.struct(
    [
        ("tier", pa.dictionary(pa.int32(), pa.string())),
        ("price", pa.float64()),
        ("atQuantity", pa.int64()),
    ]
)


def map_products(
    chunk: Chunk, job: ProductsJob, price_list: PriceListIndex | None = None
) -> tuple[pa.Table, list[Failure]]:
    source = _source(chunk, set(job.source_columns_used().values()))
    failures: list[Failure] = []
    numbers = _Numbers(source, chunk.table.schema, job, failures)
    columns = {"externalId": source[job.key]}
    for target, spec in job.fields.items():
        kind = PRODUCT_FIELDS[target]
        columns[target] = _field(spec, kind, source, numbers, len(chunk.table), failures)
    if job.prices:
        columns["prices"] = _wide_prices(job.prices, source, numbers, failures)
    elif price_list is not None:
        columns["prices"] = price_list.prices_for(columns["externalId"], failures)
    if job.attributes:
        columns["productAttributes"] = pa.StructArray.from_arrays(
            [source[c] for c in job.attributes.values()], names=list(job.attributes)
        )
    return pa.table(columns), failures


def map_identities(chunk: Chunk, job: ProductsJob) -> pa.Table:
    """Only ``externalId`` and ``sku``, exactly as ``map_products`` gives them: what a run
    needs of rows known to be unchanged (to find repeated keys)."""
    spec = job.fields["sku"]
    column = spec if isinstance(spec, str) else getattr(spec, "column", None)
    source = _source(chunk, {job.key, column})
    numbers = _Numbers(source, chunk.table.schema, job, [])
    sku = _field(spec, PRODUCT_FIELDS["sku"], source, numbers, len(chunk.table), [])
    return pa.table({"externalId": source[job.key], "sku": sku})


def _source(chunk: Chunk, used: set[str | None]) -> dict[str, pa.Array]:
    return {
        name: normalize_text(chunk.table.column(name).combine_chunks())
        for name in chunk.table.column_names
        if name in used
    }


class _Numbers:
    """The chunk's number columns as plain text, read in the job's ``number:`` style, all
    at once on first use (a retail price column is often a tier's price too). Only text is
    read so: a Parquet or SQL number column is typed already."""

    def __init__(self, source: dict, schema: pa.Schema, job: ProductsJob, failures: list[Failure]):
        self.source, self.schema, self.job, self.failures = source, schema, job, failures
        self.read: dict[str, pa.Array] | None = None

    def __call__(self, name: str) -> pa.Array:
        if self.read is None:
            texts = {
                column: self.source[column]
                for column in _number_columns(self.job)
                if is_text(self.schema.field(column).type)
            }
            self.read, found = read_number_columns(texts, self.job.number)
            self.failures.extend(found)
        return self.read.get(name, self.source[name])


def _number_columns(job: ProductsJob) -> list[str]:
    """The source columns the job reads as numbers."""
    fields = [
        spec
        for target, spec in job.fields.items()
        if isinstance(spec, str) and PRODUCT_FIELDS[target] in ("decimal", "integer")
    ]
    return list(dict.fromkeys([*fields, *(tier.price for tier in job.prices)]))


def _field(spec, kind, source, numbers: _Numbers, n: int, failures: list[Failure]) -> pa.Array:
    if isinstance(spec, Constant):  # dictionary-encoded, so it is serialized once, not n times
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([spec.value])
        )
    if isinstance(spec, ColumnMap):
        return _mapped_column(spec, kind, source[spec.column], failures)
    values, bad = convert(numbers(spec) if kind in ("decimal", "integer") else source[spec], kind)
    if bad.any():
        failures.append(
            Failure(
                bad,
                spec,
                source[spec],
                "not_a_number" if kind != "boolean" else "not_a_boolean",
                f"is not a valid {kind}",
            )
        )
    return values


def _mapped_column(spec: ColumnMap, kind, column: pa.Array, failures: list[Failure]) -> pa.Array:
    mapped, unmapped = value_map(column, spec.map, spec.default)
    if unmapped.any():
        known = ", ".join(str(k) for k in spec.map)
        failures.append(
            Failure(
                unmapped,
                spec.column,
                column,
                "unmapped_value",
                f"has no entry in the value map (known: {known})",
            )
        )
    values, _ = convert(mapped, kind)
    return values


def _wide_prices(
    tiers: tuple[TierPrice, ...], source, numbers: _Numbers, failures: list[Failure]
) -> pa.Array:
    grid = np.column_stack([_price_column(t.price, source, numbers, failures) for t in tiers])
    valid = ~np.isnan(grid)
    tier_idx = np.nonzero(valid)[1]  # row-major order keeps each row's entries together
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
    entries = pa.StructArray.from_arrays(
        [
            # Dictionary-encoded: a few tier names repeated millions of times serialize once.
            pa.DictionaryArray.from_arrays(
                pa.array(tier_idx.astype(np.int32)), pa.array([t.tier for t in tiers], pa.string())
            ),
            pa.array(grid[valid], pa.float64()),
            pa.array(np.array([t.atQuantity for t in tiers], dtype=np.int64)[tier_idx]),
        ],
        fields=list(PRICE_TYPE),
    )
    return pa.ListArray.from_arrays(pa.array(offsets), entries)


def _price_column(name: str, source, numbers: _Numbers, failures: list[Failure]) -> np.ndarray:
    values, bad = convert(numbers(name), "decimal")
    if bad.any():
        failures.append(Failure(bad, name, source[name], "not_a_number", "is not a valid decimal"))
    prices = values.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        negative = prices < 0
    if negative.any():
        failures.append(
            Failure(negative, name, source[name], "negative_price", "must be 0 or more")
        )
    return prices
