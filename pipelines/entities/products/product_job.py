"""Product job files: which column is the key, how columns become Nymble product fields
(``fields``), prices from wide columns (``prices``) or a long list (``price_list``),
attributes, and mirror mode (``missing: deactivate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from pipelines.contract import PRODUCT_FIELDS
from pipelines.errors import Problem
from pipelines.jobs.job_file import parse_job, suggest
from pipelines.jobs.specs import FieldSpec, JobBase, SourceSpec, SpecModel, spec_column

__all__ = ["PriceList", "ProductsJob", "TierPrice", "parse_products_job"]


class TierPrice(SpecModel):
    """One entry of ``prices[]`` taken from a wide column: tier, price column, quantity break."""

    tier: str = Field(min_length=1)
    price: str
    atQuantity: int = Field(1, ge=1)  # noqa: N815 - spelled as the API spells it


class PriceList(SpecModel):
    """Prices from a long list (one row per key, tier and quantity), joined to the job's key."""

    source: SourceSpec
    key: str
    tier: str = "tier"
    quantity: str = "quantity"
    price: str = "price"


class ProductsJob(JobBase):
    entity: Literal["products"] = "products"
    fields: dict[str, FieldSpec]
    prices: tuple[TierPrice, ...] = ()
    price_list: PriceList | None = None
    attributes: dict[str, str] = {}
    # Mirror mode: products this job synced that a complete feed no longer holds are
    # deactivated (never deleted), unless that would touch more than max_deactivate_pct.
    missing: Literal["keep", "deactivate"] = "keep"
    max_deactivate_pct: float = Field(5.0, ge=0, le=100)

    @model_validator(mode="after")
    def _one_price_source(self) -> ProductsJob:
        if self.prices and self.price_list is not None:
            raise ValueError("give either 'prices' (wide columns) or 'price_list', not both")
        if self.watermark is not None and self.missing == "deactivate":
            raise ValueError(
                "mirror mode (missing: deactivate) needs the whole feed; an incremental read "
                "(watermark) holds only what changed: remove one of them"
            )
        return self

    def source_columns_used(self) -> dict[str, str]:
        """Every source column the job reads, keyed by the job-file key that names it."""
        used = {"key": self.key}
        for target, spec in self.fields.items():
            column = spec_column(spec)
            if column is not None:
                used[f"fields.{target}"] = column
        for i, tier in enumerate(self.prices):
            used[f"prices[{i}].price"] = tier.price
        for name, column in self.attributes.items():
            used[f"attributes.{name}"] = column
        if self.watermark is not None:
            used["watermark.column"] = self.watermark.column
        return used

    def sources(self) -> list[Any]:
        return [self.source] + ([self.price_list.source] if self.price_list else [])


def parse_products_job(raw: dict[str, Any], path: Path) -> ProductsJob:
    fields = raw.get("fields")
    record_fields = {"externalId", *(fields or {}), "prices", "productAttributes"}
    return parse_job(ProductsJob, raw, path, _unknown_targets(fields), record_fields)


def _unknown_targets(fields: Any) -> list[Problem]:
    if not isinstance(fields, dict):
        return []
    known = sorted(PRODUCT_FIELDS)
    problems = [
        Problem(f"fields.{name}", "is not a Nymble product field", suggest(str(name), known))
        for name in fields
        if name not in PRODUCT_FIELDS
    ]
    if "sku" not in fields:
        problems.append(
            Problem(
                "fields.sku",
                "is required: every product needs a SKU",
                "add e.g. 'sku: <source column>'",
            )
        )
    return problems
