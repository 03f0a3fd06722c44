"""Invoices per organization (§4.3): read-only through the API, seeded through the admin surface.

Amounts are kept as they were seeded (``exact_json``, as orders keep their money): a total of
``100.10`` or of twenty significant digits reads back with the same value, never rounded
through a binary float.
"""

from __future__ import annotations

from typing import Any

from .casing import normalize_keys
from .db import Database, next_number
from .exact_json import dumps, loads
from .ids import new_guid, utc_now
from .listing import ListQuery, TableView, run_list
from .problems import ProblemError

__all__ = ["INVOICE_VIEW", "InvoiceStore"]

INVOICE_VIEW = TableView("invoices", "id", "invoiceNumber", {"orderId": "order_id"}, decode=loads)
_STATUSES = ("Draft", "Issued", "PartiallyPaid", "Paid", "Voided", "Cancelled")


def _invoice(raw: Any, org: str, number: int, now: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ProblemError.of(400, {"invoices": ["Each invoice must be a JSON object."]})
    doc = normalize_keys(raw)
    if not doc.get("orderId"):
        raise ProblemError.of(400, {"OrderId": ["The OrderId field is required."]})
    status = str(doc.get("status") or "Draft")
    if status not in _STATUSES:
        raise ProblemError.of(400, {"Status": [f"Unknown invoice status '{status}'"]})
    doc.update(status=status, organizationId=org, createdAt=now, updatedAt=now)
    doc.setdefault("id", new_guid())
    doc.setdefault("invoiceNumber", f"INV-{number:05d}")
    doc.setdefault("invoiceDate", now)
    return doc


class InvoiceStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def seed(self, org: str, raws: list[Any]) -> list[dict[str, Any]]:
        """Insert invoices as given (admin only); fills id, number, status and dates."""
        now, docs = utc_now(), []
        with self._db.transaction() as conn:
            for raw in raws:
                doc = _invoice(raw, org, next_number(conn, org, "invoice"), now)
                conn.execute(
                    "INSERT OR REPLACE INTO invoices (org, id, order_id, doc) VALUES (?, ?, ?, ?)",
                    (org, doc["id"], str(doc["orderId"]), dumps(doc).decode()),
                )
                docs.append(doc)
        return docs

    def get(self, org: str, invoice_id: str) -> dict[str, Any] | None:
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT doc FROM invoices WHERE org = ? AND id = ?", (org, invoice_id)
            ).fetchone()
        return loads(row[0]) if row else None

    def list(
        self,
        org: str,
        q: ListQuery,
        order_id: str | None,
        customer_id: str | None,
        status: str | None,
    ) -> dict[str, Any]:
        where: list[tuple[str, tuple[Any, ...]]] = []
        if order_id:
            where.append(("order_id = ?", (order_id,)))
        if customer_id:
            clause = (
                "(json_extract(doc, '$.customerId') = ? "
                "OR fold(json_extract(doc, '$.customer.customerNumber')) = ?)"
            )
            where.append((clause, (customer_id, customer_id.casefold())))
        if status:
            where.append(("fold(json_extract(doc, '$.status')) = ?", (status.casefold(),)))
        with self._db.reading() as conn:
            return run_list(conn, INVOICE_VIEW, org, q, tuple(where))
