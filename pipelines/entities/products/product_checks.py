"""Rules every product must pass before it is sent (CONTRACT §2.3–2.5, §2.8), and warnings
about values sent as they are but worth a look."""

from __future__ import annotations

from functools import cache
from itertools import product

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import COMMON_UNITS
from pipelines.entities.products.product_job import ProductsJob
from pipelines.quality.row_checks import Failure, key_too_long, unknown_currency
from pipelines.quality.row_warnings import RowWarning
from pipelines.transform.convert import present

__all__ = ["check_products", "product_warnings"]


def check_products(table: pa.Table, job: ProductsJob) -> list[Failure]:
    """Rules every product must pass (CONTRACT §2.3–2.5, §2.8): keys present, numbers in
    range, currency codes from ISO 4217."""
    sources = {target: column for target, column in _field_columns(job).items()}
    failures = [
        _required(table, "externalId", job.key),
        _required(table, "sku", sources.get("sku", "sku")),
        key_too_long(table.column("externalId").combine_chunks(), job.key),
    ]
    for field, minimum, rule in _RANGES:
        if field in table.column_names:
            values = table.column(field).combine_chunks()
            low = pc.fill_null(pc.less(values, minimum), False).to_numpy(zero_copy_only=False)
            failures.append(
                Failure(
                    low,
                    sources.get(field, field),
                    values,
                    rule,
                    f"{field} must be {minimum} or more",
                )
            )
    if "currencyCode" in table.column_names:
        failures.append(
            unknown_currency(
                table.column("currencyCode").combine_chunks(),
                sources.get("currencyCode", "currencyCode"),
            )
        )
    return [f for f in failures if f.mask.any()]


# CONTRACT §2.4–2.5: prices are not negative; order quantities and steps are at least 1.
_RANGES = [
    ("price", 0, "negative_price"),
    ("weight", 0, "negative_weight"),
    ("minimumOrderQuantity", 1, "below_minimum"),
    ("quantityIncrement", 1, "below_minimum"),
]


def product_warnings(table: pa.Table, job: ProductsJob) -> list[RowWarning]:
    """Values sent as they are but worth a look, over mapped products: SKUs unusable in URL
    paths (CONTRACT §6.22), uncommon units (§2.5 lists examples, no closed set), a price of 0,
    a weight without its unit, a minimum order quantity the quantity step never reaches."""
    columns = _field_columns(job)
    found = [_slash_in_sku(table, columns)]
    for field, common in COMMON_UNITS.items():
        found.append(_uncommon_unit(table, field, common, columns))
    found += [
        _zero_price(table, columns),
        _weight_without_unit(table, columns),
        _minimum_off_step(table, columns),
    ]
    return [w for w in found if w is not None and w.mask.any()]


def _slash_in_sku(table: pa.Table, columns: dict[str, str]) -> RowWarning | None:
    if "sku" not in table.column_names:
        return None
    skus = _text(table.column("sku"))
    if not _may_hold(skus, b"/"):  # nearly always: one pass over the bytes, 30x faster
        return None
    slash = pc.fill_null(pc.match_substring(skus, "/"), False).to_numpy(zero_copy_only=False)
    return RowWarning(
        slash,
        columns.get("sku", "sku"),
        skus,
        "slash_in_sku",
        "the SKU contains '/': fine in bulk loads, but it cannot be used in URL paths such "
        "as /api/products/{sku} (CONTRACT §6.22)",
    )


def _uncommon_unit(
    table: pa.Table, field: str, common: frozenset[str], columns: dict[str, str]
) -> RowWarning | None:
    if field not in table.column_names:
        return None
    units = _text(table.column(field))
    known = pc.is_in(units, value_set=_any_case(common))  # no lower-cased copy of the column
    if pc.sum(known).as_py() == len(units) - units.null_count:
        return None  # the usual chunk: every unit is a common one
    odd = present(units) & ~pc.fill_null(known, False).to_numpy(zero_copy_only=False)
    return RowWarning(
        odd,
        columns.get(field, field),
        units,
        "uncommon_unit",
        f"{field} is not a common unit ({', '.join(sorted(common))}); sent as it is",
    )


def _zero_price(table: pa.Table, columns: dict[str, str]) -> RowWarning | None:
    if "price" not in table.column_names:
        return None
    prices = table.column("price").combine_chunks()
    zero = pc.equal(prices, 0)
    if not pc.any(zero).as_py():
        return None
    zero = pc.fill_null(zero, False).to_numpy(zero_copy_only=False)
    return RowWarning(
        zero,
        columns.get("price", "price"),
        prices,
        "zero_price",
        "the price is 0: sent as it is, the product is free wherever no tier price applies",
    )


def _weight_without_unit(table: pa.Table, columns: dict[str, str]) -> RowWarning | None:
    if "weight" not in table.column_names or "weightUnit" not in table.column_names:
        return None  # a job that maps no unit at all chose so; this is about gaps
    weights, units = table.column("weight"), table.column("weightUnit")
    if not units.null_count or weights.null_count == len(weights):
        return None
    weights = weights.combine_chunks()
    bare = present(weights) & ~present(units.combine_chunks())
    return RowWarning(
        bare,
        columns.get("weightUnit", "weightUnit"),
        weights,
        "weight_without_unit",
        "a weight is given without its unit: sent as a bare number",
    )


def _minimum_off_step(table: pa.Table, columns: dict[str, str]) -> RowWarning | None:
    """§2.3: quantities are multiples of quantityIncrement, at least minimumOrderQuantity; a
    minimum that is no multiple cannot be ordered as such (10 in steps of 6: 12 at least)."""
    names = ("minimumOrderQuantity", "quantityIncrement")
    if not all(n in table.column_names for n in names):
        return None
    minimum, step = (table.column(n).combine_chunks() for n in names)
    low = pc.fill_null(minimum.cast(pa.float64()), 0).to_numpy(zero_copy_only=False)
    by = pc.fill_null(step.cast(pa.float64()), 1).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        off = (by >= 1) & (low >= 1) & (np.mod(low, by) != 0)
    return RowWarning(
        off,
        columns.get("minimumOrderQuantity", "minimumOrderQuantity"),
        minimum,
        "minimum_off_step",
        "minimumOrderQuantity is not a multiple of quantityIncrement: the smallest order "
        "that can be placed is the next multiple",
    )


@cache
def _any_case(words: frozenset[str]) -> pa.Array:
    """Every spelling of ``words`` in any case (``lb``, ``Lb``, ``lB``, ``LB`` ...)."""
    cases = (product(*((c.lower(), c.upper()) for c in word)) for word in words)
    return pa.array(sorted({"".join(chars) for spellings in cases for chars in spellings}))


def _may_hold(values: pa.Array, byte: bytes) -> bool:
    """Whether any string of ``values`` may contain ``byte`` (an ASCII character): its data
    buffer is scanned whole, so a slice's neighbours may answer yes, never a wrong no."""
    data = values.buffers()[2]
    return data is not None and bool((np.frombuffer(data, np.uint8) == byte[0]).any())


def _text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as plain strings (a constant is dictionary-encoded)."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


def _field_columns(job: ProductsJob) -> dict[str, str]:
    return {
        k.removeprefix("fields."): v
        for k, v in job.source_columns_used().items()
        if k.startswith("fields.")
    }


def _required(table: pa.Table, field: str, column: str) -> Failure:
    values = table.column(field).combine_chunks()
    return Failure(~present(values), column, values, "required", f"{field} is required")
