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
    columns = {"externalId": source[job.key]}
    for target, spec in job.fields.items():
        columns[target] = _field(spec, PRODUCT_FIELDS[target], source, len(chunk.table), failures)
    if job.prices:
        columns["prices"] = _wide_prices(job.prices, source, failures)
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
    sku = _field(spec, PRODUCT_FIELDS["sku"], source, len(chunk.table), [])
    return pa.table({"externalId": source[job.key], "sku": sku})


def _source(chunk: Chunk, used: set[str | None]) -> dict[str, pa.Array]:
    return {
        name: normalize_text(chunk.table.column(name).combine_chunks())
        for name in chunk.table.column_names
        if name in used
    }


def _field(spec, kind, source, n: int, failures: list[Failure]) -> pa.Array:
    if isinstance(spec, Constant):  # dictionary-encoded, so it is serialized once, not n times
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, np.int32)), pa.array([spec.value])
        )
    if isinstance(spec, ColumnMap):
        return _mapped_column(spec, kind, source[spec.column], failures)
    values, bad = convert(source[spec], kind)
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


def _wide_prices(tiers: tuple[TierPrice, ...], source, failures: list[Failure]) -> pa.Array:
    grid = np.column_stack([_price_column(t.price, source, failures) for t in tiers])
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


def _price_column(name: str, source, failures: list[Failure]) -> np.ndarray:
    values, bad = convert(source[name], "decimal")
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
