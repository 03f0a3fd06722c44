"""An order's money as the ERP computed it (CONTRACT §3.5), in exact decimal arithmetic.

A line total derived from a discount is ``quantity × price`` less the discount, rounded once
by the job's rule; the checks compare each order's ``subtotal`` with the sum of its lines and
its ``orderTotal`` with ``subtotal + tax + shipping``. Everything is Arrow ``decimal256``
column arithmetic: exact at any scale up to 18, never float, no Python loop over lines.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.orders.order_job import Discount, OrdersJob, Rounding
from pipelines.quality.row_checks import Failure, field_columns
from pipelines.transform.convert import present
from pipelines.transform.money import money_type

__all__ = ["discounted_totals", "total_rules"]

_SUM = 68  # decimal256 digits of an order's sums: 2**31 lines of 58-digit products fit
_MODES = {"half_up": "half_towards_infinity", "half_even": "half_to_even"}  # Arrow's names


def discounted_totals(
    quantity: pa.Array, price: pa.Array, discount: pa.Array, spec: Discount, rounding: Rounding,
    scale: int, cells: pa.Array,
) -> tuple[pa.Array, list[Failure]]:  # fmt: skip
    """Each line's ``lineTotal`` at money ``scale``, and failures for the lines whose discount
    is out of range (a percentage outside 0–100, a fraction outside 0–1, an amount below 0
    or above ``quantity × price``) or whose total is too large for decimal128, reported with
    the discount ``cells`` as read; those lines get no total, nor does a line without
    quantity or price (it is rejected for that)."""
    gross = _gross(quantity, price, scale)
    known = present(gross)
    fits = _flag(pc.less(pc.abs(gross), _power(38 - scale, gross.type)))
    gross = _nulled(gross, ~fits).cast(pa.decimal256(38, scale))  # narrow: products stay < 76
    off = pc.fill_null(_money(discount, scale), pa.scalar(Decimal(0), pa.decimal256(38, scale)))
    if spec.kind in ("percent", "fraction"):
        whole = 100 if spec.kind == "percent" else 1
        bad = _outside(off, 0, whole)
        share = _nulled(off, bad).cast(pa.decimal256(3 + scale, scale))  # narrow: ≤ 100
        if whole == 100:
            share = pc.multiply(share, _hundredth())
        net = pc.multiply(gross, pc.subtract(pa.scalar(Decimal(1), pa.decimal256(1, 0)), share))
        text = f"a {spec.kind} discount must be from 0 to {whole}"
    else:
        bad = _outside(off, 0, None) | _flag(pc.greater(off, gross))
        net = pc.subtract(gross, off)
        text = "an amount discount must be from 0 to the line's quantity × price"
    rounded = pc.round(net, rounding.places, round_mode=_MODES[rounding.mode])
    fits &= _flag(pc.less(pc.abs(rounded), _power(38 - scale, rounded.type)))
    failures = [
        Failure(bad, spec.column, cells, "discount_out_of_range", text),
        Failure(
            known & ~bad & ~fits,
            spec.column,
            cells,
            "out_of_range",
            "the line's total has more than 38 digits",
        ),
    ]
    totals = _nulled(rounded, bad | ~fits).cast(money_type(scale))
    return totals, [f for f in failures if f.mask.any()]


def total_rules(table: pa.Table, job: OrdersJob, checked: np.ndarray) -> list[Failure]:
    """Orders whose totals do not add up within ``totals.tolerance`` (see ``TotalsSettings``),
    among the ``checked`` ones (those that broke no other rule: a line already rejected would
    only put its order's sums off again); the rejected value names both sums."""
    scale, checks = job.money_scale, job.totals.check
    if not any(c in table.column_names for c in checks):
        return []
    columns = field_columns(job.fields)
    items = table.column("items").combine_chunks()
    lines = _order_sums(_line_amounts(items, scale), items.offsets.to_numpy(), scale)
    subtotal = _header(table, "subtotal", scale)
    found = []
    if "subtotal" in checks and subtotal is not None:
        column = columns.get("subtotal")
        found.append(_mismatch(subtotal, lines, job, column, "subtotal", "lines", checked))
    total = _header(table, "orderTotal", scale)
    if "orderTotal" in checks and total is not None:
        parts = [_header(table, name, scale) for name in ("tax", "shippingTotal")]
        expected = _added(lines if subtotal is None else pc.coalesce(subtotal, lines), parts)
        column = columns.get("orderTotal")
        label = "subtotal + tax + shipping"
        found.append(_mismatch(total, expected, job, column, "orderTotal", label, checked))
    return [f for f in found if f.mask.any()]


# --- per line ---------------------------------------------------------------------------------


def _gross(quantity: pa.Array, price: pa.Array, scale: int) -> pa.Array:
    """``quantity × price``, exact: decimal256(58, scale)."""
    return pc.multiply(quantity.cast(pa.decimal256(19, 0)), _money(price, scale))


def _line_amounts(items: pa.ListArray, scale: int) -> pa.Array:
    """Each line's ``lineTotal``, or ``quantity × price`` where it has none (what the API
    computes, §3.3); 0 where neither is known (that order is rejected for it)."""
    lines = items.flatten()
    amounts = _gross(pc.struct_field(lines, "quantity"), pc.struct_field(lines, "price"), scale)
    if "lineTotal" in [f.name for f in lines.type]:
        given = _money(pc.struct_field(lines, "lineTotal"), scale).cast(amounts.type)
        amounts = pc.coalesce(given, amounts)
    return pc.fill_null(amounts, pa.scalar(Decimal(0), amounts.type))


def _order_sums(amounts: pa.Array, offsets: np.ndarray, scale: int) -> pa.Array:
    """The sum of each order's lines, decimal256(_SUM, scale) (0 for an order without lines)."""
    counts = np.diff(offsets - offsets[0])
    order = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    table = pa.table({"order": order, "amount": amounts})
    sums = table.group_by("order", use_threads=False).aggregate([("amount", "sum")])
    where = np.full(len(counts), -1, np.int64)
    where[sums.column("order").to_numpy()] = np.arange(len(sums))
    found = sums.column("amount_sum").combine_chunks().cast(pa.decimal256(_SUM, scale))
    taken = found.take(pa.array(where, mask=where < 0))
    return pc.fill_null(taken, pa.scalar(Decimal(0), taken.type))


# --- per order --------------------------------------------------------------------------------


def _header(table: pa.Table, name: str, scale: int) -> pa.Array | None:
    """A mapped header amount as decimal256(_SUM, scale); ``shippingTotal`` is read from
    ``shippingDetails``. None when the job does not map it."""
    values = None
    if name == "shippingTotal" and "shippingDetails" in table.column_names:
        details = table.column("shippingDetails").combine_chunks()
        if name in [f.name for f in details.type]:
            values = pc.struct_field(details, name)
    elif name in table.column_names:
        values = table.column(name).combine_chunks()
    return None if values is None else _money(values, scale).cast(pa.decimal256(_SUM, scale))


def _added(first: pa.Array, parts: list[pa.Array | None]) -> pa.Array:
    """``first`` plus the parts mapped, a missing value counting 0 (as the API adds them)."""
    total = first
    for part in (p for p in parts if p is not None):
        total = pc.add(total, pc.fill_null(part, pa.scalar(Decimal(0), part.type)))
    return total


def _mismatch(
    given: pa.Array, expected: pa.Array, job: OrdersJob, column: str | None, field: str,
    label: str, checked: np.ndarray,
) -> Failure:  # fmt: skip
    """Orders whose ``given`` total (where they have one) differs from ``expected`` by more
    than the job's tolerance; the value names both sums."""
    gap = pc.abs(pc.subtract(given, expected))
    mask = checked & _flag(pc.greater(gap, pa.scalar(_tolerance(job), gap.type)))
    texts: list[str | None] = [None] * len(mask)
    where = np.nonzero(mask)[0]
    if len(where):  # only the failing orders are described, one string each
        pick = pa.array(where)
        pairs = zip(given.take(pick).to_pylist(), expected.take(pick).to_pylist(), strict=True)
        for i, (have, want) in zip(where, pairs, strict=True):
            texts[i] = f"{field} {_plain(have)} ≠ {label} {_plain(want)}"
    message = (
        f"{field} differs from the order's {label} by more than "
        f"{_plain(job.totals.tolerance)} (totals.tolerance)"
    )
    return Failure(mask, column, pa.array(texts, pa.string()), f"{field}_mismatch", message)


# --- decimal helpers --------------------------------------------------------------------------


def _money(values: pa.Array, scale: int) -> pa.Array:
    """Money as decimal256(38, scale) (a constant's dictionary decoded; a null stays null)."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values.cast(pa.decimal256(38, scale))


def _nulled(values: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def _outside(values: pa.Array, low: int, high: int | None) -> np.ndarray:
    below = _flag(pc.less(values, pa.scalar(Decimal(low), values.type)))
    if high is None:
        return below
    return below | _flag(pc.greater(values, pa.scalar(Decimal(high), values.type)))


def _tolerance(job: OrdersJob) -> Decimal:
    """The tolerance cut to the money's decimals: gaps are multiples of 10**-scale, so a gap
    exceeds 0.015 exactly when it exceeds 0.01 (and 0.01, with money_scale 0, means 0)."""
    return job.totals.tolerance.quantize(Decimal(1).scaleb(-job.money_scale), ROUND_FLOOR)


def _power(digits: int, kind: pa.DataType) -> pa.Scalar:
    """10**digits in ``kind`` (comparisons need one scale on both sides)."""
    return pa.scalar(Decimal(10) ** digits, kind)


def _hundredth() -> pa.Scalar:
    return pa.scalar(Decimal("0.01"), pa.decimal256(2, 2))


def _flag(values: pa.Array) -> np.ndarray:
    return pc.fill_null(values, False).to_numpy(zero_copy_only=False)


def _plain(value: Decimal) -> str:
    """Money as people write it: ``185.0000`` → ``185.00``, ``12.3450`` → ``12.345``."""
    whole, _, decimals = format(value, "f").partition(".")
    return f"{whole}.{decimals.rstrip('0').ljust(2, '0')}"
