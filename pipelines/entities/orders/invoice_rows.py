"""The ERP's invoices of an order job (``invoices:``), read for ``reconcile``: each chunk of the
source checked and typed as columns, and the hashes an invoice is matched and compared by.

An invoice is matched by (order, invoice number): the 64-bit hash of its order's key, as the
order's ``externalId`` is hashed, mixed with the hash of its number folded to lower case (the
API compares strings case-insensitively, CONTRACT §6.22). Its content hash covers what is
compared, written canonically (a §4.3 status as the API spells it, money as the shortest exact
decimal, ``100.10`` as ``100.1``), so equal hashes agree without another look; the target's
side (``run.invoice_index``) builds the same bytes from the API's JSON.

A row that cannot be compared (no order key or number, a status outside §4.3 or a code the map
lacks, a total that is not a number in the job's ``number:`` style, an unknown currency, the
same order and number twice) is rejected, naming its file, row, column and value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipelines.admit.acked_state import mix
from pipelines.admit.seen_keys import SeenKeys
from pipelines.entities.orders.order_job import INVOICE_STATUSES, InvoicesSpec, OrdersJob
from pipelines.extract.chunks import Chunk
from pipelines.quality.row_checks import (
    Failure,
    required_values,
    split_rejects,
    unknown_currency,
)
from pipelines.transform.convert import present
from pipelines.transform.field_values import FieldValues, text_column
from pipelines.transform.rejects import Reject
from pipelines.transform.serialize import key_hashes

__all__ = [
    "InvoiceRows",
    "canonical_amount",
    "canonical_status",
    "content_hash",
    "invoice_keys",
    "read_invoices",
]

SEPARATOR = "\x1f"  # between the parts of an invoice's content: never in a status or number
_FOLDED = {status.casefold(): status for status in INVOICE_STATUSES}
_STATUS_TEXT = ", ".join(INVOICE_STATUSES)


@dataclass(frozen=True)
class InvoiceRows:
    """One chunk's invoices that passed their checks, column by column."""

    source: str
    rows: np.ndarray  # row numbers as a spreadsheet shows them
    order_keys: pa.Array  # the order key as text, as the order's externalId
    order_hashes: np.ndarray  # that key hashed as the order index hashes it
    numbers: pa.Array  # invoice numbers as written (trimmed)
    keys: np.ndarray  # (order, number) hashes: what matches an invoice at the target
    status: pa.Array  # §4.3 states as the API spells them
    total: pa.Array  # decimal128 at the job's money_scale
    balance: pa.Array | None  # the same, where balanceDue is mapped
    currency: pa.Array | None  # ISO codes (null where a row states none), where mapped
    content: np.ndarray  # hash of what is compared

    def __len__(self) -> int:
        return len(self.rows)

    def invoice(self, i: int) -> dict[str, Any]:
        """Row ``i`` as the API names its fields, amounts as exact decimals."""
        found = {
            "invoiceNumber": self.numbers[i].as_py(),
            "status": self.status[i].as_py(),
            "total": _exact(self.total[i].as_py()),
        }
        if self.balance is not None:
            found["balanceDue"] = _exact(self.balance[i].as_py())
        if self.currency is not None:
            found["currencyCode"] = self.currency[i].as_py()
        return found


def read_invoices(
    job: OrdersJob, chunks: Iterator[Chunk]
) -> Iterator[tuple[InvoiceRows, list[Reject], np.ndarray]]:
    """Each chunk's good invoices, its rejects, and the match keys of the rejected rows that
    still name an order and a number (their target invoices are not "missing in the source":
    their source rows could not be read)."""
    spec = job.invoices
    assert spec is not None
    seen = SeenKeys("invoice", spec.invoice_number)
    for chunk in chunks:
        yield _checked(chunk, job, spec, seen)


def _checked(
    chunk: Chunk, job: OrdersJob, spec: InvoicesSpec, seen: SeenKeys
) -> tuple[InvoiceRows, list[Reject], np.ndarray]:
    table, n = chunk.table, len(chunk.table)
    if not table.num_columns:  # only the rejects of a read that found no good row
        table, n = pa.table({c: pa.array([], pa.string()) for c in _columns(job, spec)}), 0
    failures: list[Failure] = []
    values = FieldValues(job, table, failures)
    key_column = spec.key or job.key
    order_keys = text_column(table.column(key_column))
    numbers = text_column(table.column(spec.invoice_number))
    status = _status(values, spec, table, failures)
    money = {"total": spec.total, "balanceDue": spec.balance_due}
    amounts = {f: values.value(f, c, "money", n) for f, c in money.items() if c is not None}
    failures += [
        required_values(order_keys, key_column, "the invoice's order key"),
        required_values(numbers, spec.invoice_number, "invoiceNumber"),
        *(_required(amounts[f], table, c, f) for f, c in money.items() if c is not None),
    ]
    currency = None
    if spec.currency_code is not None:
        currency = values.value("currencyCode", spec.currency_code, "string", n)
        failures.append(unknown_currency(currency, spec.currency_code))
    order_hashes = key_hashes(order_keys)
    keys = invoice_keys(order_hashes, numbers)
    named = present(order_keys) & present(numbers)
    bad = np.logical_or.reduce([f.mask for f in failures])
    rejected = keys[bad & named]  # read before the duplicates: those have a first row
    # Every named row counts, a rejected one too: a later row with its number is a duplicate,
    # not the first of its invoice (its target invoice is already "rejected in the source").
    twice = seen.check(numbers, keys, chunk.rows, named)
    if twice is not None:
        failures.append(replace(twice, message=_TWICE))
    columns = {"status": status, "total": amounts["total"], "balance": amounts.get("balanceDue")}
    columns["currency"] = currency
    kept = {name: column for name, column in columns.items() if column is not None}
    layout = pa.table({"key": order_keys, "number": numbers, **kept, "i": np.arange(n)})
    good, rows, rejects = split_rejects(
        layout, chunk.rows, failures, source=chunk.source, ids=order_keys
    )
    take = good.column("i").to_numpy()
    found = _rows(chunk, good, rows, order_hashes[take], keys[take])
    return found, [*chunk.rejects, *rejects], rejected


_TWICE = "this order's invoice number is on an earlier row; only the first is compared"


def _columns(job: OrdersJob, spec: InvoicesSpec) -> list[str]:
    return sorted({spec.key or job.key, *spec.columns().values()})


def _rows(
    chunk: Chunk, good: pa.Table, rows: np.ndarray, order_hashes: np.ndarray, keys: np.ndarray
) -> InvoiceRows:
    column = {name: good.column(name).combine_chunks() for name in good.column_names}
    status = column["status"]
    total, balance, currency = column["total"], column.get("balance"), column.get("currency")
    return InvoiceRows(
        source=chunk.source,
        rows=rows,
        order_keys=column["key"],
        order_hashes=order_hashes,
        numbers=column["number"],
        keys=keys,
        status=status,
        total=total,
        balance=balance,
        currency=currency,
        content=_contents(status, total, balance, currency),
    )


def _status(
    values: FieldValues, spec: InvoicesSpec, table: pa.Table, failures: list[Failure]
) -> pa.Array:
    """The status column in §4.3's spelling; a state outside §4.3 fails its row (a map's
    states were checked with the job file; a code it lacks fails as unmapped_value)."""
    column = spec.status if isinstance(spec.status, str) else spec.status.column
    given = text_column(values.value("status", spec.status, "string", len(table)))
    index = pc.index_in(pc.utf8_lower(given), value_set=pa.array(list(_FOLDED)))
    unknown = present(given) & ~present(index)
    if unknown.any():
        message = (
            f"is not an invoice status (CONTRACT §4.3: {_STATUS_TEXT}); translate the ERP's "
            "codes with status: {column: ..., map: {CODE: Paid, ...}}"
        )
        failures.append(Failure(unknown, column, given, "unknown_status", message))
    written = text_column(table.column(column))
    failures.append(required_values(written, column, "status"))
    return pc.take(pa.array(list(_FOLDED.values())), index)


def _required(values: pa.Array, table: pa.Table, column: str, field: str) -> Failure:
    """A missing amount; one that is there but unreadable fails as not_a_number already."""
    missing = ~present(values) & ~present(text_column(table.column(column)))
    return Failure(missing, column, values, "required", f"{field} is required")


def invoice_keys(order_hashes: np.ndarray, numbers: pa.Array) -> np.ndarray:
    """The (order, invoice number) hash of each invoice: what matches it across the sides."""
    folded = pc.utf8_lower(numbers)
    return mix(mix(order_hashes).view(np.uint64) ^ key_hashes(folded).view(np.uint64))


def _contents(
    status: pa.Array, total: pa.Array, balance: pa.Array | None, currency: pa.Array | None
) -> np.ndarray:
    parts = [status, _amounts(total)]
    parts += [_amounts(balance)] if balance is not None else []
    parts += [currency] if currency is not None else []
    text = [pc.fill_null(pc.cast(p, pa.string()), "") for p in parts]
    joined = pc.binary_join_element_wise(*text, SEPARATOR)
    raw = pc.cast(joined, pa.binary()).to_pylist()
    digests = np.fromiter(map(xxhash.xxh3_64_intdigest, raw), np.uint64, count=len(raw))
    return digests.view(np.int64)


def _amounts(values: pa.Array) -> pa.Array:
    """Decimals as their shortest exact text: ``100.1000`` → ``100.1``, ``5.0000`` → ``5``."""
    text = pc.cast(values, pa.string())
    text = pc.replace_substring_regex(text, r"^(-?\d+)\.0*$", r"\1")
    return pc.replace_substring_regex(text, r"^(-?\d+\.\d*?)0+$", r"\1")


def content_hash(parts: list[str]) -> int:
    """The content hash of one invoice from the canonical text of what is compared (status,
    total, then balance and currency where compared), as ``_contents`` hashes columns."""
    digest = xxhash.xxh3_64_intdigest(SEPARATOR.join(parts).encode())
    return digest - (1 << 64) if digest >= 1 << 63 else digest  # as int64


def canonical_status(value: Any) -> str:
    """A status in §4.3's spelling when it is one (any case), else as given."""
    text = "" if value is None else str(value).strip()
    return _FOLDED.get(text.casefold(), text)


def canonical_amount(value: Decimal | None) -> str:
    """The shortest exact text of an amount (``100.10`` → ``100.1``, ``1E+2`` → ``100``, ``-0``
    → ``0``), as ``_amounts`` writes a column; nothing → empty."""
    if value is None:
        return ""
    text = str(value)
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _exact(value: Any) -> Decimal | None:
    """An amount read at ``money_scale`` as its shortest exact digits (``100.1000`` → 100.1)."""
    return None if value is None else Decimal(canonical_amount(Decimal(value)))
