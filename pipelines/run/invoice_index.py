"""The target's invoices of the orders `reconcile` read, as a compact index sorted by (order,
invoice number) hash: what the source's invoices (``invoices:`` of an order job) are matched
against.

Each invoice the invoice list returns is added with the index position of its order (found by
``orderId``, see ``run.order_linkage``). Memory keeps fixed-width columns per invoice: match
hash, content hash, order position, id hash, currency code, and where its compared fields lie
in a spill file on disk; about 50 bytes an invoice, so millions fit. The fields are read back
only for an invoice whose content hash differs from its source row's, or that no source row
matched. Money per currency of the invoices of compared orders is summed as they are read; an
invoice that states no currency counts in its order's (``order_currency``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from pipelines.entities.orders.invoice_rows import (
    canonical_amount,
    canonical_status,
    content_hash,
    invoice_keys,
)
from pipelines.load.api_reader import field_of
from pipelines.transform.serialize import key_hashes

__all__ = ["InvoiceMoney", "TargetInvoices", "target_amount"]

FIELDS = ("invoiceNumber", "status", "total", "balanceDue", "currencyCode")


class InvoiceMoney:
    """Invoices, totals and balances per currency, exact."""

    def __init__(self) -> None:
        self.sums: dict[str, list] = {}  # currency → [invoices, total, balance]

    def add(self, currency: str, total: Decimal | None, balance: Decimal | None, n: int = 1):
        row = self.sums.setdefault(currency, [0, Decimal(0), Decimal(0)])
        row[0] += n
        row[1] += total or 0
        row[2] += balance or 0


class TargetInvoices:
    def __init__(
        self,
        *,
        balance: bool,
        currency: bool,
        order_currency: Callable[[int], str] = lambda _pos: "",
        spill_dir: Path | None = None,
    ):
        """``balance``, ``currency``: whether the job compares them (maps their columns);
        ``order_currency``: the currency of the order at an index position."""
        self.balance, self.currency, self.order_currency = balance, currency, order_currency
        # Closed (and so deleted) by close(): the index is itself a context manager.
        self._spill = tempfile.TemporaryFile(dir=spill_dir, prefix="nymble-invoices-")  # noqa: SIM115
        self._written = 0
        self._parts: dict[str, list[np.ndarray]] = {}
        self.currencies: list[str] = []  # a currency code's text by its number
        self._codes: dict[str, int] = {}
        self.money = InvoiceMoney()  # of the invoices of compared orders
        self.listed_twice = 0

    def add(self, invoices: list[dict], orders: np.ndarray, order_keys: np.ndarray,
            compared: np.ndarray) -> None:  # fmt: skip
        """Invoices with their orders' index positions and key hashes; ``compared``: whether
        each one's order is among those compared (its money counts)."""
        fields = [_fields(invoice) for invoice in invoices]  # amounts as canonical text
        numbers = pa.array([f["invoiceNumber"] for f in fields], pa.string())
        ids = [field_of(invoice, "id") for invoice in invoices]
        blobs = [orjson.dumps(f) for f in fields]
        lengths = np.fromiter(map(len, blobs), np.int64, len(blobs))
        offsets = self._written + np.concatenate(([0], np.cumsum(lengths)[:-1]))
        self._spill.write(b"".join(blobs))
        self._written += int(lengths.sum())
        booked = [
            f["currencyCode"] or self.order_currency(int(at))
            for f, at in zip(fields, orders, strict=True)
        ]
        columns = {
            "keys": invoice_keys(order_keys, numbers),
            "content": np.array([self._content(f) for f in fields], np.int64),
            "offsets": offsets.astype(np.int64),
            "lengths": lengths,
            "orders": orders.astype(np.int64),
            "ids": key_hashes(pa.array([str(i) if i else None for i in ids], pa.string())),
            "currency": np.array([self._code(c) for c in booked], np.int16),
        }
        for name, values in columns.items():
            self._parts.setdefault(name, []).append(values)
        for f, currency, counted in zip(fields, booked, compared, strict=True):
            if counted:
                self.money.add(currency, _decimal(f["total"]), _decimal(f["balanceDue"]))

    def _content(self, fields: dict[str, Any]) -> int:
        parts = [fields["status"], fields["total"] or ""]
        parts += [fields["balanceDue"] or ""] if self.balance else []
        parts += [fields["currencyCode"] or ""] if self.currency else []
        return content_hash(parts)

    def _code(self, currency: str | None) -> int:
        text = currency or ""
        if text not in self._codes:
            self._codes[text] = len(self.currencies)
            self.currencies.append(text)
        return self._codes[text]

    def finish(self) -> None:
        """Sort by match hash; an invoice listed twice (the list changed while it was paged)
        is kept once. Two invoices with one number on one order both stay: the second is
        one the source lacks."""
        columns = {name: np.concatenate(parts) for name, parts in self._parts.items()}
        self._parts = {}
        keys = columns.pop("keys", np.empty(0, np.int64))
        ids = columns.get("ids", np.empty(0, np.int64))
        order = np.lexsort((ids, keys))
        keys, ids = keys[order], ids[order]
        first = np.ones(len(keys), dtype=bool)
        first[1:] = (keys[1:] != keys[:-1]) | (ids[1:] != ids[:-1])
        self.listed_twice = int((~first).sum())
        self.keys = keys[first]
        self.columns = {name: values[order][first] for name, values in columns.items()}
        self.seen = np.zeros(len(self.keys), dtype=bool)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns.get(name, np.empty(0, np.int64))

    def locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found, position) of each match hash; of two invoices with one hash, the first
        not yet seen."""
        if not len(self.keys):
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), np.intp)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = self.keys[pos] == keys
        for i in np.flatnonzero(found & self.seen[pos]):  # rare: a number twice at the target
            at = pos[i]
            while at + 1 < len(self.keys) and self.keys[at + 1] == keys[i] and self.seen[at]:
                at += 1
            pos[i] = at
        return found, pos

    def currency_of(self, positions: np.ndarray) -> np.ndarray:
        """The currency the invoices at ``positions`` are counted in (their own, else their
        order's)."""
        names = np.array(self.currencies or [""], dtype=object)
        return names[self["currency"][positions]]

    def invoice(self, pos: int) -> dict[str, Any]:
        """The compared fields of the invoice at ``pos``, amounts exact."""
        offset, length = int(self["offsets"][pos]), int(self["lengths"][pos])
        self._spill.seek(offset)
        fields = orjson.loads(self._spill.read(length))
        for name in ("total", "balanceDue"):
            fields[name] = _decimal(fields[name])
        return fields

    def close(self) -> None:
        self._spill.close()

    def __enter__(self) -> TargetInvoices:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fields(invoice: dict) -> dict[str, Any]:
    """What is compared of an invoice, as the API wrote it (any key casing); amounts as their
    shortest exact text (``0.00`` as ``0``), as the source's are hashed and reports show them."""
    number = field_of(invoice, "invoiceNumber")
    currency = field_of(invoice, "currencyCode")
    return {
        "invoiceNumber": None if number is None else str(number).strip(),
        "status": canonical_status(field_of(invoice, "status")),
        "total": _amount_text(field_of(invoice, "total")),
        "balanceDue": _amount_text(field_of(invoice, "balanceDue")),
        "currencyCode": str(currency).strip().upper() if currency else None,
    }


def target_amount(value: Any) -> Decimal | None:
    """An amount the API wrote as exact digits; a float by its shortest text; nothing, or
    something that is no number, as nothing (it then differs from any amount)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return amount if amount.is_finite() else None


def _amount_text(value: Any) -> str | None:
    amount = target_amount(value)
    return None if amount is None else canonical_amount(amount)


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)
