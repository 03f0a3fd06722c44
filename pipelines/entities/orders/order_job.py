"""Order job files (``entity: orders``): order headers (``source``) and their lines
(``items.source``), or one denormalized row per line (no ``items.source``); ``fields`` maps
header columns to the API's order fields, dotted names building the nested objects
(``customer.customerNumber``). Money is exact to ``money_scale`` decimals; naive dates are in
``timezone``, which a job mapping a date must state: a guessed zone moves every order by hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, Discriminator, Field, Tag, field_validator

from pipelines.errors import Problem
from pipelines.jobs.job_file import parse_job, suggest
from pipelines.jobs.specs import (
    BatchSettings,
    ColumnMap,
    Constant,
    FieldKind,
    JobBase,
    SourceSpec,
    SpecModel,
    parse_duration,
)

__all__ = [
    "ITEM_FIELDS",
    "ORDER_FIELDS",
    "ORDER_STATUSES",
    "DateColumn",
    "HoldPolicy",
    "ItemsSpec",
    "OrdersJob",
    "check_timezone",
    "parse_orders_job",
]

Kind = FieldKind

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


class DateColumn(SpecModel):
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

    @field_validator("format")
    @classmethod
    def _strptime_format(cls, value: str | None) -> str | None:
        if value is not None and "%" not in value:
            raise ValueError(
                f"format {value!r} has no strptime directive; write it as e.g. '%d.%m.%Y %H:%M' "
                "(%d day, %m month, %Y year, %H:%M hours and minutes)"
            )
        return value


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


class ItemsSpec(SpecModel):
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


class ReferenceSettings(SpecModel):
    """How SKUs and customers are checked before sending (``check: off`` sends unchecked).

    ``products_job``: the product job that syncs this target; when its key is the SKU column,
    the ledger's acknowledged products answer SKU questions without asking the API.
    """

    check: bool = True
    products_job: Path | None = None


class HoldPolicy(SpecModel):
    """How long an order may wait for a customer or SKU the target lacks. Once held by
    ``max_runs`` runs, or for ``max_age`` (``7d``, ``12h``), the next run that finds it still
    waiting rejects it for good (rule ``gave_up_waiting``) and lets the watermark move past
    it. Without a policy an order waits as long as it takes."""

    max_runs: int | None = Field(None, ge=1)
    max_age: timedelta | None = None

    @field_validator("max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

    def expired(self, runs: int, first_held_at: datetime, now: datetime) -> bool:
        """Whether an order held by ``runs`` runs since ``first_held_at`` waits no longer."""
        too_many = self.max_runs is not None and runs >= self.max_runs
        too_old = self.max_age is not None and now - first_held_at >= self.max_age
        return too_many or too_old

    def describe(self) -> str:
        parts = [f"max_runs: {self.max_runs}"] if self.max_runs else []
        parts += [f"max_age: {self.max_age}"] if self.max_age else []
        return "hold: {" + ", ".join(parts) + "}"


class OrdersJob(JobBase):
    entity: Literal["orders"] = "orders"
    fields: dict[str, OrderFieldSpec]
    items: ItemsSpec
    timezone: str | None = None  # required when a date has no zone of its own (_zone_problems)
    money_scale: int = Field(4, ge=0, le=18)  # decimals carried; more is rejected, never rounded
    references: ReferenceSettings = ReferenceSettings()
    hold: HoldPolicy | None = None  # orders waiting for a reference: how long they may wait
    spill_partition_bytes: int = Field(32 << 20, ge=1 << 16)  # unsorted files: per temp part
    BATCH_DEFAULTS = {"max_items": 50}  # §3.5 [A]: 50 orders per call
    batch: BatchSettings = BatchSettings(**BATCH_DEFAULTS)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @property
    def line_key(self) -> str:
        return self.items.key or self.key

    def line_columns_used(self) -> dict[str, str]:
        return {"items.key": self.line_key} | {
            f"items.{name}": column for name, column in self.items.columns().items()
        }

    def sources(self) -> list[Any]:
        return [self.source] + ([self.items.source] if self.items.source is not None else [])


def parse_orders_job(raw: dict[str, Any], path: Path) -> OrdersJob:
    fields = raw.get("fields")
    record_fields = {"externalId", *(f.split(".")[0] for f in fields or {}), "items"}
    problems = _problems(fields) + _zone_problems(fields, raw.get("timezone"))
    return parse_job(OrdersJob, raw, path, problems, record_fields)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not an IANA time zone ({suggest(name, sorted(_zones()))})"
        ) from None
    return name


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _problems(fields: Any) -> list[Problem]:
    if not isinstance(fields, dict):
        return []
    problems = [
        Problem(f"fields.{name}", "is not an order field", suggest(str(name), sorted(ORDER_FIELDS)))
        for name in fields
        if name not in ORDER_FIELDS
    ]
    problems += _status_problems(fields.get("orderStatus"))
    if "customer.customerNumber" not in fields:
        problems.append(
            Problem(
                "fields.customer.customerNumber",
                "is required: every order needs its customer (§6.3)",
                "add e.g. 'customer.customerNumber: <source column>'",
            )
        )
    return problems


def _zone_problems(fields: Any, timezone: Any) -> list[Problem]:
    """A date mapped with no zone is a problem before anything is read: naive ERP timestamps
    (MariaDB DATETIME, CSV text) would otherwise be taken as UTC without a word, and an order
    placed at 01:30 in Berlin would arrive an hour or two off. Values that carry an offset are
    converted exactly whatever the zone says."""
    if timezone is not None or not isinstance(fields, dict):
        return []
    return [
        Problem(
            f"fields.{name}",
            f"maps a date but the job names no time zone for its naive values (column "
            f"{spec if isinstance(spec, str) else spec.get('column')!r})",
            "add 'timezone: <IANA zone>' to the job, the zone the source writes local times "
            "in (e.g. Europe/Berlin; UTC if it writes UTC), or set the field's own timezone",
        )
        for name, spec in fields.items()
        if ORDER_FIELDS.get(name) == "datetime"
        and (isinstance(spec, str) or (isinstance(spec, dict) and not spec.get("timezone")))
        and not (isinstance(spec, dict) and "value" in spec)
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
            suggest(str(status), sorted(ORDER_STATUSES)),
        )
        for code, status in values
        if status not in ORDER_STATUSES
    ]
