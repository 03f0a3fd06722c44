"""Job files for ``entity: orders`` and ``entity: customers``: YAML parsed once into frozen,
typed models, every mistake reported at once in the style of :mod:`pipelines.config`.

An orders job reads order headers (``source``) and their lines (``items.source``), or one
denormalized row per line (no ``items.source``); ``fields`` maps header columns to the API's
order fields, dotted names building the nested objects (``customer.customerNumber``).
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from pipelines.errors import JobFileError, Problem
from pipelines.jobs.specs import (
    BatchSettings,
    ColumnMap,
    Constant,
    CsvSource,
    FieldSpec,
    ParquetSource,
    problem_from,
    read_yaml,
)

__all__ = [
    "CUSTOMER_FIELDS",
    "ITEM_FIELDS",
    "ORDER_FIELDS",
    "ORDER_STATUSES",
    "CustomersJob",
    "DateColumn",
    "EntityJob",
    "ItemsSpec",
    "OrdersJob",
    "SqlSource",
    "WatermarkSpec",
    "check_source_columns",
    "entity_of",
    "load_entity_job",
]

Kind = Literal["string", "money", "integer", "boolean", "datetime"]

# CONTRACT §3.2/§3.4 header fields; dotted names are keys of the nested objects.
ORDER_FIELDS: dict[str, Kind] = {
    "orderNumber": "string",
    "orderDate": "datetime",
    "orderStatus": "string",
    "orderType": "string",
    "channel": "string",
    "poNumber": "string",
    "priceTier": "string",
    "currencyCode": "string",
    "terms": "string",
    "notes": "string",
    "tax": "money",
    "customer.customerNumber": "string",
    "primarySalesRep.repNumber": "string",
    "takenBySalesRep.repNumber": "string",
    "shippingDetails.shippingMethod": "string",
    "shippingDetails.shippingTotal": "money",
}
# CONTRACT §3.3: the ETL always sends sku, quantity and price, and may send name.
ITEM_FIELDS: dict[str, Kind] = {
    "sku": "string",
    "quantity": "integer",
    "price": "money",
    "name": "string",
}
# CONTRACT §4.1 customer fields (customerNumber comes from the job's key).
CUSTOMER_FIELDS: dict[str, Kind] = {
    "externalId": "string",
    "companyName": "string",
    "companyEmail": "string",
    "companyPhone": "string",
    "companyFax": "string",
    "pricing": "string",
    "active": "boolean",
    "repNumber": "string",
    "terms": "string",
    "currencyCode": "string",
}
ADDRESS_FIELDS: dict[str, Kind] = {
    "address1": "string",
    "address2": "string",
    "city": "string",
    "stateProvince": "string",
    "zipPostalCode": "string",
    "country": "string",
    "addressType": "string",
    "code": "string",
    "default": "boolean",
}
CONTACT_FIELDS: dict[str, Kind] = {
    "firstName": "string",
    "lastName": "string",
    "email": "string",
    "phoneNumber": "string",
}
# §3.6/§6.4: the emulator stores Completed as Complete; an ERP void is a cancellation.
ORDER_STATUSES = {
    "Pending": "Pending",
    "Processing": "Processing",
    "Shipped": "Shipped",
    "Complete": "Complete",
    "Completed": "Complete",
    "Cancelled": "Cancelled",
    "Void": "Cancelled",
}
_OVERLAP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SqlSource(_Model):
    """A query file run on the database whose URL is in the environment variable ``url_env``."""

    type: Literal["sql"]
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    query: Path
    params: dict[str, str | int | float | bool | None] = {}
    chunk_rows: int = Field(10_000, ge=1)  # ~40k lines: memory stays flat, Arrow still pays


SourceSpec = Annotated[CsvSource | ParquetSource | SqlSource, Field(discriminator="type")]


class DateColumn(_Model):
    """A date column in an ERP format: ``{column: order_date, format: "%m/%d/%Y %H:%M"}``.

    ``format`` is strptime-style; without it the values must be ISO 8601. ``timezone`` is the
    zone naive values are in (default: the job's ``timezone``).
    """

    column: str
    format: str | None = None
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


def _order_spec_kind(raw: Any) -> str | None:
    if isinstance(raw, str):
        return "spec:column"
    if isinstance(raw, dict | BaseModel):
        keys = raw.keys() if isinstance(raw, dict) else type(raw).model_fields.keys()
        if "value" in keys:
            return "spec:value"
        return "spec:map" if "map" in keys else "spec:date"
    return None


OrderFieldSpec = Annotated[
    Annotated[str, Tag("spec:column")]
    | Annotated[Constant, Tag("spec:value")]
    | Annotated[ColumnMap, Tag("spec:map")]
    | Annotated[DateColumn, Tag("spec:date")],
    Discriminator(
        _order_spec_kind,
        custom_error_type="field_spec",
        custom_error_message="must be a column name, {value: ...}, {column: ..., map: {...}} "
        "or {column: ..., format: ..., timezone: ...}",
    ),
]


class WatermarkSpec(_Model):
    """Incremental reads: the next run reads from the last stored watermark minus ``overlap``."""

    column: str
    overlap: timedelta = timedelta(0)

    @field_validator("overlap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _OVERLAP.match(value)
            if match is None:
                raise ValueError("must be a duration such as 30s, 15m, 1h or 2d")
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        return value


class ItemsSpec(_Model):
    """Where order lines come from and which columns make an item (§3.3)."""

    source: SourceSpec | None = None  # None: one denormalized row per line in the job source
    key: str | None = None  # the lines' order-key column; default: the job's key
    sku: str
    quantity: str
    price: str
    name: str | None = None

    def columns(self) -> dict[str, str]:
        """Item field → source column, for the fields mapped."""
        found = {"sku": self.sku, "quantity": self.quantity, "price": self.price}
        return found | ({"name": self.name} if self.name else {})


class ReferenceSettings(_Model):
    """How SKUs and customers are checked before sending (``check: off`` sends unchecked).

    ``products_job``: the product job that syncs this target; when its key is the SKU column,
    the ledger's acknowledged products answer SKU questions without asking the API.
    """

    check: bool = True
    products_job: Path | None = None


class _JobBase(_Model):
    path: Path
    job: str
    source: SourceSpec
    key: str
    watermark: WatermarkSpec | None = None
    allow_production: bool = False


class OrdersJob(_JobBase):
    entity: Literal["orders"]
    fields: dict[str, OrderFieldSpec]
    items: ItemsSpec
    timezone: str = "UTC"
    money_scale: int = Field(4, ge=0, le=18)  # decimals carried; more is rejected, never rounded
    references: ReferenceSettings = ReferenceSettings()
    spill_partition_bytes: int = Field(32 << 20, ge=1 << 16)  # unsorted files: per temp part
    batch: BatchSettings = BatchSettings(max_items=50)  # §3.5 [A]: 50 orders per call

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)

    @property
    def line_key(self) -> str:
        return self.items.key or self.key

    def source_columns_used(self) -> dict[str, str]:
        used = {"key": self.key}
        for target, spec in self.fields.items():
            column = spec if isinstance(spec, str) else getattr(spec, "column", None)
            if column is not None:
                used[f"fields.{target}"] = column
        if self.watermark is not None:
            used["watermark.column"] = self.watermark.column
        return used

    def line_columns_used(self) -> dict[str, str]:
        return {"items.key": self.line_key} | {
            f"items.{name}": column for name, column in self.items.columns().items()
        }


class CustomersJob(_JobBase):
    entity: Literal["customers"]
    fields: dict[str, FieldSpec]
    addresses: tuple[dict[str, FieldSpec], ...] = ()
    contacts: tuple[dict[str, FieldSpec], ...] = ()
    attributes: dict[str, str] = {}  # → customerAttributes
    batch: BatchSettings = BatchSettings(max_items=20)  # customers per unit of work, one PUT each

    def source_columns_used(self) -> dict[str, str]:
        used = {"key": self.key}
        groups = [("fields", self.fields)]
        groups += [(f"addresses[{i}]", a) for i, a in enumerate(self.addresses)]
        groups += [(f"contacts[{i}]", c) for i, c in enumerate(self.contacts)]
        for prefix, specs in groups:
            for target, spec in specs.items():
                column = spec if isinstance(spec, str) else getattr(spec, "column", None)
                if column is not None:
                    used[f"{prefix}.{target}"] = column
        for name, column in self.attributes.items():
            used[f"attributes.{name}"] = column
        if self.watermark is not None:
            used["watermark.column"] = self.watermark.column
        return used


EntityJob = OrdersJob | CustomersJob


def load_entity_job(path: Path) -> EntityJob:
    """Parse and check an orders or customers job file; one JobFileError lists every problem."""
    raw = read_yaml(path)
    raw.setdefault("job", path.stem)
    entity = raw.get("entity")
    model: type[_JobBase] = CustomersJob if entity == "customers" else OrdersJob
    if entity not in ("orders", "customers"):
        fix = _suggest(str(entity), ["orders", "customers"])
        raise JobFileError(
            str(path), [Problem("entity", f"{entity!r} is not orders or customers", fix)]
        )
    problems = _unknown_targets(raw, entity) + _watermark_problems(raw)
    try:
        job = model.model_validate({**raw, "path": path})
    except ValidationError as exc:
        problems = [problem_from(_plain_loc(e)) for e in exc.errors()] + problems
    if problems:
        raise JobFileError(str(path), problems)
    return job


def entity_of(path: Path) -> str | None:
    """The ``entity`` a job file names (None if it names none), for dispatching on it."""
    entity = read_yaml(path).get("entity")
    return entity if isinstance(entity, str) else None


def check_source_columns(
    path: Path, used: dict[str, str], columns: list[str], *, source: str
) -> None:
    """Fail, naming each job-file key, when a source lacks a column the job reads."""
    problems = [
        Problem(key, f"column {column!r} is not in {source}", _suggest(column, columns))
        for key, column in used.items()
        if column not in columns
    ]
    if problems:
        raise JobFileError(str(path), problems)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone ({_suggest(name, sorted(_zones()))})"
        ) from None
    return name


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _plain_loc(error: dict[str, Any]) -> dict[str, Any]:
    """Drop union-member names pydantic adds to a location (``sql``, ``spec:date``)."""
    loc = tuple(p for p in error["loc"] if str(p) not in {"sql"} and not str(p).startswith("spec:"))
    return {**error, "loc": loc}


def _unknown_targets(raw: dict[str, Any], entity: str) -> list[Problem]:
    fields = raw.get("fields")
    known = ORDER_FIELDS if entity == "orders" else CUSTOMER_FIELDS
    problems = []
    if isinstance(fields, dict):
        noun = "an order" if entity == "orders" else "a customer"
        problems += [
            Problem(f"fields.{name}", f"is not {noun} field", _suggest(str(name), sorted(known)))
            for name in fields
            if name not in known
        ]
        if entity == "orders":
            problems += _status_problems(fields.get("orderStatus"))
            if "customer.customerNumber" not in fields:
                problems.append(
                    Problem(
                        "fields.customer.customerNumber",
                        "is required: every order needs its customer (§6.3)",
                        "add e.g. 'customer.customerNumber: <source column>'",
                    )
                )
    if entity == "customers":
        for group, names in (("addresses", ADDRESS_FIELDS), ("contacts", CONTACT_FIELDS)):
            for i, entry in enumerate(raw.get(group) or []):
                for name in entry if isinstance(entry, dict) else []:
                    if name not in names:
                        fix = _suggest(str(name), sorted(names))
                        problems.append(Problem(f"{group}[{i}].{name}", "is not a known key", fix))
    return problems


def _watermark_problems(raw: dict[str, Any]) -> list[Problem]:
    source = raw.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if raw.get("watermark") is None or kind == "sql":
        return []
    return [
        Problem(
            "watermark",
            "incremental reads need a source of type sql",
            "remove watermark, or read the source through a query",
        )
    ]


def _status_problems(spec: Any) -> list[Problem]:
    if not isinstance(spec, dict) or not isinstance(spec.get("map"), dict):
        return []
    values = list(spec["map"].items()) + (
        [("default", spec["default"])] if spec.get("default") is not None else []
    )
    return [
        Problem(
            f"fields.orderStatus.map.{code}",
            f"{status!r} is not an order status",
            _suggest(str(status), sorted(ORDER_STATUSES)),
        )
        for code, status in values
        if status not in ORDER_STATUSES
    ]


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "known: " + ", ".join(choices[:12]) + (" …" if len(choices) > 12 else "")
