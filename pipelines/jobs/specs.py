"""Job files: YAML parsed once into frozen, typed models, with every mistake reported at once.

A job file says where rows come from (``source``), which column is the record key (``key``),
and how source columns become Nymble fields (``fields``, ``prices``, ``price_list``,
``attributes``). Problems name the file, the key and the fix, before any data is read.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from pipelines.contract import PRODUCT_FIELDS
from pipelines.errors import JobFileError, Problem
from pipelines.quality.expectations import ExpectationSpec, check_specs
from pipelines.quality.gates import GateSettings

__all__ = [
    "BatchSettings",
    "ColumnMap",
    "Constant",
    "CsvSource",
    "FieldSpec",
    "JobConfig",
    "ParquetSource",
    "PriceList",
    "SourceConfig",
    "TierPrice",
    "check_columns",
    "load_job",
    "problem_from",
    "read_yaml",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CsvSource(_Model):
    type: Literal["csv"]
    path: Path
    encoding: str = "auto"
    delimiter: str = Field(",", min_length=1, max_length=1)


class ParquetSource(_Model):
    type: Literal["parquet"]
    path: Path


SourceConfig = Annotated[CsvSource | ParquetSource, Field(discriminator="type")]


class Constant(_Model):
    """The same value for every record, e.g. ``currencyCode: {value: USD}``."""

    value: str | int | float | bool


class ColumnMap(_Model):
    """A column whose values are translated, e.g. ERP status codes to ``active``."""

    column: str
    map: dict[str, str | int | float | bool]
    default: str | int | float | bool | None = None


def _spec_kind(raw: Any) -> str | None:
    if isinstance(raw, str):
        return "spec:column"
    if isinstance(raw, dict | BaseModel):
        keys = raw.keys() if isinstance(raw, dict) else type(raw).model_fields.keys()
        return "spec:value" if "value" in keys else "spec:map"
    return None


# A plain string names a source column; a mapping is a constant or a translated column.
FieldSpec = Annotated[
    Annotated[str, Tag("spec:column")]
    | Annotated[Constant, Tag("spec:value")]
    | Annotated[ColumnMap, Tag("spec:map")],
    Discriminator(
        _spec_kind,
        custom_error_type="field_spec",
        custom_error_message="must be a column name, {value: ...} or {column: ..., map: {...}}",
    ),
]


class TierPrice(_Model):
    """One entry of ``prices[]`` taken from a wide column: tier, price column, quantity break."""

    tier: str = Field(min_length=1)
    price: str
    atQuantity: int = Field(1, ge=1)  # noqa: N815 - spelled as the API spells it


class PriceList(_Model):
    """Prices from a long list (one row per key, tier and quantity), joined to the job's key."""

    source: SourceConfig
    key: str
    tier: str = "tier"
    quantity: str = "quantity"
    price: str = "price"


class BatchSettings(_Model):
    max_items: int = Field(500, ge=1, le=10_000)
    max_bytes: int = Field(4_000_000, ge=1_000)
    concurrency: int = Field(4, ge=1, le=64)
    timeout_s: float = Field(60.0, gt=0)


class JobConfig(_Model):
    path: Path
    job: str
    entity: Literal["products"]
    source: SourceConfig
    key: str
    fields: dict[str, FieldSpec]
    prices: tuple[TierPrice, ...] = ()
    price_list: PriceList | None = None
    attributes: dict[str, str] = {}
    batch: BatchSettings = BatchSettings()
    allow_production: bool = False
    # Mirror mode: products this job synced that a complete feed no longer holds are
    # deactivated (never deleted), unless that would touch more than max_deactivate_pct.
    missing: Literal["keep", "deactivate"] = "keep"
    gates: GateSettings = GateSettings()
    expectations: tuple[ExpectationSpec, ...] = ()
    max_deactivate_pct: float = Field(5.0, ge=0, le=100)

    @model_validator(mode="after")
    def _one_price_source(self) -> JobConfig:
        if self.prices and self.price_list is not None:
            raise ValueError("give either 'prices' (wide columns) or 'price_list', not both")
        return self

    def source_columns_used(self) -> dict[str, str]:
        """Every source column the job reads, keyed by the job-file key that names it."""
        used = {"key": self.key}
        for target, spec in self.fields.items():
            column = spec if isinstance(spec, str) else getattr(spec, "column", None)
            if column is not None:
                used[f"fields.{target}"] = column
        for i, tier in enumerate(self.prices):
            used[f"prices[{i}].price"] = tier.price
        for name, column in self.attributes.items():
            used[f"attributes.{name}"] = column
        return used


def load_job(path: Path) -> JobConfig:
    """Parse and check a job file; raise one JobFileError listing every problem found."""
    raw = read_yaml(path)
    raw.setdefault("job", path.stem)
    problems = _unknown_targets(raw.get("fields"))
    try:
        job = JobConfig.model_validate({**raw, "path": path})
    except ValidationError as exc:
        problems = [problem_from(e) for e in exc.errors()] + problems
    if problems:
        raise JobFileError(str(path), problems)
    if job.expectations:  # imports Great Expectations: only for jobs that declare a suite
        fields = {"externalId", *job.fields, "prices", "productAttributes"}
        found = check_specs(list(job.expectations), fields)
        if found:
            raise JobFileError(str(path), [Problem("expectations", p) for p in found])
    return job


def check_columns(job: JobConfig, columns: list[str], *, source: str) -> None:
    """Fail, naming each job-file key, when the source lacks a column the job reads."""
    problems = [
        Problem(key, f"column {column!r} is not in {source}", _suggest(column, columns))
        for key, column in job.source_columns_used().items()
        if column not in columns
    ]
    if problems:
        raise JobFileError(str(job.path), problems)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JobFileError(str(path), [Problem("(file)", f"cannot read: {exc.strerror}")]) from None
    except yaml.YAMLError as exc:
        raise JobFileError(str(path), [Problem("(file)", f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise JobFileError(str(path), [Problem("(file)", "must be a YAML mapping of keys")])
    return raw


def problem_from(error: dict[str, Any]) -> Problem:
    loc = [
        str(p) for p in error["loc"] if not str(p).startswith(("function-after", "tagged-union"))
    ]
    # pydantic tries each member of a union; keep the path the user wrote, not the member names.
    loc = [p for p in loc if not p.startswith("spec:") and p not in {"csv", "parquet"}]
    key = ".".join(loc) or "(file)"
    kind = error["type"]
    if kind == "missing":
        return Problem(key, "is required", "add it")
    if kind == "extra_forbidden":
        return Problem(key, "is not a known key", "remove it or check its spelling")
    if kind == "union_tag_invalid":
        return Problem(key, "source type must be 'csv' or 'parquet'")
    return Problem(key, error["msg"])


def _unknown_targets(fields: Any) -> list[Problem]:
    if not isinstance(fields, dict):
        return []
    known = sorted(PRODUCT_FIELDS)
    problems = [
        Problem(f"fields.{name}", "is not a Nymble product field", _suggest(str(name), known))
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


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "known: " + ", ".join(choices[:12]) + (" …" if len(choices) > 12 else "")
