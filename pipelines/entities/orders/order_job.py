"""Order job files (``entity: orders``): order headers (``source``) and their lines
(``items.source``), or one denormalized row per line (no ``items.source``); ``fields`` maps
header columns to the API's order fields, dotted names building the nested objects
(``customer.customerNumber``). Money is exact to ``money_scale`` decimals; naive dates are in
``timezone``, which a job mapping a date must state: a guessed zone moves every order by hours.
The ERP's totals (``subtotal``, ``tax``, ``orderTotal``, line ``lineTotal`` or a line
``discount`` turned into it by the job's ``rounding``) are sent as computed there (§3.5), and
``totals`` says how closely they must add up. ``invoices`` names the ERP's invoices, which
only ``reconcile`` reads (see :class:`InvoicesSpec`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
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
    "INVOICE_STATUSES",
    "DateColumn",
    "Discount",
    "HoldPolicy",
    "InvoicesSpec",
    "ItemsSpec",
    "OrdersJob",
    "Rounding",
    "TotalsSettings",
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
    "subtotal": "money",
    "tax": "money",
    "orderTotal": "money",
    "customer.customerNumber": "string",
    "primarySalesRep.repNumber": "string",
    "takenBySalesRep.repNumber": "string",
    "shippingDetails.shippingMethod": "string",
    "shippingDetails.shippingTotal": "money",
}
# CONTRACT §3.3: the ETL always sends sku, quantity and price, and may send name; §3.5: a
# historical order's lineTotal is stored as sent.
ITEM_FIELDS: dict[str, Kind] = {
    "sku": "string",
    "quantity": "integer",
    "price": "money",
    "name": "string",
    "lineTotal": "money",
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


# CONTRACT §4.3: an invoice's states, as the API spells them (compared case-insensitively).
INVOICE_STATUSES = ("Draft", "Issued", "PartiallyPaid", "Paid", "Voided", "Cancelled")


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


class Discount(SpecModel):
    """A line discount the ERP stores instead of the line's total: ``{column: disc_pct, kind:
    percent}`` (10 means 10 % off the line), ``kind: fraction`` (0.10 means 10 % off) or
    ``{column: disc_amt, kind: amount}`` (money off the whole line, not per unit). An empty
    cell is no discount."""

    column: str
    kind: Literal["percent", "fraction", "amount"]


class Rounding(SpecModel):
    """How a line total computed from a discount is rounded, as the ERP rounds it: ``half_up``
    (a tie goes away from zero: 5.025 → 5.03) or ``half_even`` (to the even digit: 5.025 →
    5.02), to ``places`` decimals. ``rounding: half_up`` is ``{mode: half_up, places: 2}``."""

    mode: Literal["half_up", "half_even"]
    places: int = Field(2, ge=0, le=18)


class ItemsSpec(SpecModel):
    """Where order lines come from and which columns make an item (§3.3, §3.5)."""

    source: SourceSpec | None = None  # None: one denormalized row per line in the job source
    key: str | None = None  # the lines' order-key column; default: the job's key
    sku: str
    quantity: str
    price: str
    name: str | None = None
    line_total: str | None = Field(None, alias="lineTotal")  # the ERP's own, sent as it is
    discount: Discount | None = None  # or: lineTotal = quantity × price less the discount
    rounding: Rounding | None = None  # required with a discount

    @field_validator("rounding", mode="before")
    @classmethod
    def _mode_alone(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    def columns(self) -> dict[str, str]:
        """Job-file item key → source column, for every column the lines carry: the item
        fields mapped (``ITEM_FIELDS``) and the discount."""
        found = {"sku": self.sku, "quantity": self.quantity, "price": self.price}
        more = {
            "name": self.name,
            "lineTotal": self.line_total,
            "discount": self.discount.column if self.discount else None,
        }
        return found | {name: column for name, column in more.items() if column}


def _status_spec_kind(raw: Any) -> str | None:
    if isinstance(raw, str):
        return "spec:column"
    return "spec:map" if isinstance(raw, dict | BaseModel) else None


# An invoice's status: a column holding §4.3 states, or ERP codes translated by a map.
StatusSpec = Annotated[
    Annotated[str, Tag("spec:column")] | Annotated[ColumnMap, Tag("spec:map")],
    Discriminator(
        _status_spec_kind,
        custom_error_type="field_spec",
        custom_error_message="must be a column name or {column: ..., map: {...}}",
    ),
]


class InvoicesSpec(SpecModel):
    """The ERP's invoices of the job's orders, for ``reconcile`` only: each invoice the source
    lists is matched to the target's by its order and ``invoiceNumber`` (CONTRACT §4.3), and
    their status, total, and balance and currency where mapped, are compared exactly. ``run``,
    ``plan`` and ``validate`` never read this source (Nymble's invoices are not sent by this
    tool); its keys are checked with the rest of the job file all the same.

    Keys name source columns, as ``items`` does: ``key`` the invoices' order-key column
    (default: the job's key), ``status`` a column of §4.3 states or ``{column: ..., map:
    {...}}`` translating the ERP's codes. Money is read in the job's ``number:`` style, exact
    to ``money_scale`` decimals."""

    source: SourceSpec
    key: str | None = None
    invoice_number: str = Field(alias="invoiceNumber")
    status: StatusSpec
    total: str
    balance_due: str | None = Field(None, alias="balanceDue")
    currency_code: str | None = Field(None, alias="currencyCode")

    def columns(self) -> dict[str, str]:
        """Job-file key (under ``invoices``) → source column, for every column compared."""
        status = self.status if isinstance(self.status, str) else self.status.column
        found = {"invoiceNumber": self.invoice_number, "status": status, "total": self.total}
        more = {"balanceDue": self.balance_due, "currencyCode": self.currency_code}
        return found | {name: column for name, column in more.items() if column}


class TotalsSettings(SpecModel):
    """How closely an order's totals must add up before it is sent: ``subtotal`` to the sum
    of its lines' ``lineTotal`` (``quantity × price`` where a line has none), ``orderTotal`` to
    ``subtotal + tax + shippingDetails.shippingTotal``, each part the job leaves out taken as
    the API computes it (CONTRACT §3.5: subtotal from the lines, tax and shipping 0). A total
    is checked only where the order has it; ``check`` lists the totals checked."""

    tolerance: Decimal = Field(Decimal("0.01"), ge=0)  # in units of the order's currency
    check: tuple[Literal["subtotal", "orderTotal"], ...] = ("subtotal", "orderTotal")

    @field_validator("tolerance", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        return Decimal(repr(value)) if isinstance(value, float) else value  # YAML's 0.01


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
    it. Without a policy an order waits as long as it takes. The ledger applies it where
    the held orders are kept (:func:`pipelines.ledger.held_records.held_key_hashes`): runs
    >= ``max_runs``, or first held at least ``max_age`` ago."""

    max_runs: int | None = Field(None, ge=1)
    max_age: timedelta | None = None

    @field_validator("max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)

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
    totals: TotalsSettings = TotalsSettings()
    references: ReferenceSettings = ReferenceSettings()
    hold: HoldPolicy | None = None  # orders waiting for a reference: how long they may wait
    invoices: InvoicesSpec | None = None  # reconcile only: the ERP's invoices to compare
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
        keys = {"discount": "discount.column"}
        return {"items.key": self.line_key} | {
            f"items.{keys.get(name, name)}": column for name, column in self.items.columns().items()
        }

    def invoice_columns_used(self) -> dict[str, str]:
        """Job-file key → column of the invoices source (``reconcile`` checks them before it
        reads anything)."""
        if self.invoices is None:
            return {}
        mapped = not isinstance(self.invoices.status, str)
        used = {"invoices.key": self.invoices.key or self.key}
        for name, column in self.invoices.columns().items():
            used[f"invoices.{name}" + (".column" if name == "status" and mapped else "")] = column
        return used

    def sources(self) -> list[Any]:
        """The sources a run reads: headers and lines (not ``invoices``, which only
        ``reconcile`` reads: see ``evidence_sources``)."""
        return [self.source] + ([self.items.source] if self.items.source is not None else [])

    def evidence_sources(self) -> list[Any]:
        """The sources only ``reconcile`` reads: the invoices."""
        return [self.invoices.source] if self.invoices is not None else []


def parse_orders_job(raw: dict[str, Any], path: Path) -> OrdersJob:
    fields = raw.get("fields")
    record_fields = {"externalId", *(f.split(".")[0] for f in fields or {}), "items"}
    problems = _problems(fields) + _zone_problems(fields, raw.get("timezone"))
    problems += _line_total_problems(raw) + _invoice_status_problems(raw.get("invoices"))
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


def _line_total_problems(raw: dict[str, Any]) -> list[Problem]:
    """A line's total comes from one place, and a discount's rounding is stated, no finer
    than the money carried."""
    items, scale = raw.get("items"), raw.get("money_scale", 4)
    if not isinstance(items, dict):
        return []
    scale = scale if isinstance(scale, int) else 18  # a bad scale is reported by the model
    discount, rounding = items.get("discount"), items.get("rounding")
    problems = []
    if discount is not None and items.get("lineTotal") is not None:
        problems.append(
            Problem(
                "items.discount",
                "is given with items.lineTotal: a line's total comes from one of them",
                "map lineTotal when the ERP stores each line's total, discount when the "
                "total is derived from it",
            )
        )
    if discount is not None and rounding is None:
        problems.append(
            Problem(
                "items.rounding",
                "is required with items.discount: a line total computed from a discount "
                "must be rounded as the ERP rounds it",
                "add 'rounding: half_up' (a tie away from zero) or 'rounding: half_even'; "
                "{mode: half_up, places: 0} for a currency without cents (default places: 2)",
            )
        )
    if rounding is not None and discount is None:
        problems.append(
            Problem(
                "items.rounding",
                "rounds a line total computed from a discount, but no discount is mapped",
                "remove it, or add items.discount: {column: ..., kind: percent} (or amount)",
            )
        )
    return problems + _places_problems(rounding, scale) + _percent_problems(raw, discount)


def _percent_problems(raw: dict[str, Any], discount: Any) -> list[Problem]:
    """``number: {percent: true}`` reads ``12.5%`` as 0.125, which ``kind: percent`` would take
    for an eighth of a per cent off."""
    if not isinstance(discount, dict) or discount.get("kind") != "percent":
        return []
    number = raw.get("number") if isinstance(raw.get("number"), dict) else {}
    own = (number.get("columns") or {}).get(discount.get("column"))
    style = own if isinstance(own, dict) else number
    if not style.get("percent"):
        return []
    return [
        Problem(
            "items.discount.kind",
            "percent takes 12.5 as 12.5 % off, but number: percent: true reads '12.5%' as "
            "0.125 for this column",
            "use kind: fraction",
        )
    ]


def _places_problems(rounding: Any, scale: int) -> list[Problem]:
    places = rounding.get("places", 2) if isinstance(rounding, dict) else 2
    if rounding is None or not isinstance(places, int) or places <= scale:
        return []
    return [
        Problem(
            "items.rounding.places",
            f"{places} decimals is finer than money_scale ({scale})",
            f"raise money_scale to {places}, or round to at most {scale} decimals",
        )
    ]


def _invoice_status_problems(invoices: Any) -> list[Problem]:
    """The states an ERP's invoice codes are mapped to must be §4.3's, before anything is
    read: a typo would otherwise reject every invoice with that code."""
    spec = invoices.get("status") if isinstance(invoices, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("map"), dict):
        return []
    given = [(f"invoices.status.map.{code}", status) for code, status in spec["map"].items()]
    if spec.get("default") is not None:
        given.append(("invoices.status.default", spec["default"]))
    known = {s.casefold() for s in INVOICE_STATUSES}
    return [
        Problem(
            key,
            f"{status!r} is not an invoice status (CONTRACT §4.3)",
            suggest(str(status), list(INVOICE_STATUSES)),
        )
        for key, status in given
        if not isinstance(status, str) or status.casefold() not in known
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
