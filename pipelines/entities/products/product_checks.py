"""Rules every product must pass before it is sent (CONTRACT §2.3–2.5, §2.8), and warnings
about values sent as they are but worth a look."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import COMMON_UNITS
from pipelines.entities.products.product_job import ProductsJob
from pipelines.quality.row_checks import Failure, key_too_long, unknown_currency
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


def product_warnings(table: pa.Table, rows: np.ndarray) -> list[str]:
    """Things sent as they are but worth a look: unusual units, SKUs unusable in URL paths."""
    notes = []
    for field, common in COMMON_UNITS.items():
        if field in table.column_names:
            values = table.column(field).combine_chunks().cast(pa.string())
            odd = present(values) & ~pc.fill_null(
                pc.is_in(pc.utf8_lower(values), value_set=pa.array(sorted(common))), False
            ).to_numpy(zero_copy_only=False)
            notes += _note(odd, rows, values, f"{field} is not a common unit (sent as it is)")
    if "sku" in table.column_names:
        skus = table.column("sku").combine_chunks()
        slash = pc.fill_null(pc.match_substring(skus, "/"), False).to_numpy(zero_copy_only=False)
        notes += _note(
            slash,
            rows,
            skus,
            "SKU contains '/': fine in bulk loads, but it cannot "
            "be used in URL paths such as /api/products/{sku} (CONTRACT §6.22)",
        )
    return notes


def _note(mask: np.ndarray, rows: np.ndarray, values: pa.Array, text: str) -> list[str]:
    if not mask.any():
        return []
    idx = np.nonzero(mask)[0][:5]
    examples = ", ".join(f"row {rows[i]} ({values[int(i)].as_py()!r})" for i in idx)
    more = f" and {int(mask.sum()) - len(idx)} more" if mask.sum() > len(idx) else ""
    return [f"{text}: {examples}{more}"]


def _field_columns(job: ProductsJob) -> dict[str, str]:
    return {
        k.removeprefix("fields."): v
        for k, v in job.source_columns_used().items()
        if k.startswith("fields.")
    }


def _required(table: pa.Table, field: str, column: str) -> Failure:
    values = table.column(field).combine_chunks()
    return Failure(~present(values), column, values, "required", f"{field} is required")
