"""Orders per organization: bulk import/upsert (§3.5, §6.2) and reads."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from .customer_store import CustomerStore
from .db import Database, fetch_in, next_number
from .exact_json import dumps, loads
from .ids import new_guid, utc_now
from .listing import ListQuery, TableView, run_list
from .order_rules import OrderContext, build_order
from .product_store import ProductStore
from .settings import FaultConfig

__all__ = ["ORDER_VIEW", "OrderStore"]

# Orders keep the money they were sent (§3.5): read back with exact decimals.
ORDER_VIEW = TableView("orders", "id", "orderNumber", {"orderNumber": "number_lower"}, decode=loads)
_INSERT = "INSERT INTO orders (org, id, external_id, number_lower, doc) VALUES (?, ?, ?, ?, ?)"
_UPDATE = "UPDATE orders SET external_id = ?, number_lower = ?, doc = ? WHERE org = ? AND id = ?"


@dataclass
class _Slot:
    id: str
    doc: dict[str, Any]
    is_new: bool

    def row(self) -> tuple[Any, ...]:
        number = self.doc["orderNumber"].casefold()
        return self.doc.get("externalId"), number, dumps(self.doc).decode()


class _Batch:
    """Matching indexes (externalId, folded orderNumber) for one transaction."""

    def __init__(self, conn: sqlite3.Connection, org: str, docs: list[dict[str, Any]]) -> None:
        self.conn, self.org = conn, org
        self.by_ext: dict[str, _Slot] = {}
        self.by_number: dict[str, _Slot] = {}
        self.slots: dict[str, _Slot] = {}
        numbers = [str(d["orderNumber"]).casefold() for d in docs if d.get("orderNumber")]
        self._load("external_id", [d.get("externalId") for d in docs])
        self._load("number_lower", numbers)

    def _load(self, column: str, values: list[Any]) -> None:
        sql = f"SELECT id, doc FROM orders WHERE org = ? AND {column} IN ({{marks}})"
        for oid, text in fetch_in(self.conn, sql, self.org, values):
            if oid not in self.slots:
                self._index(_Slot(oid, orjson.loads(text), is_new=False))

    def _index(self, slot: _Slot) -> None:
        self.slots[slot.id] = slot
        if slot.doc.get("externalId"):
            self.by_ext[slot.doc["externalId"]] = slot
        self.by_number[slot.doc["orderNumber"].casefold()] = slot

    def _unindex(self, slot: _Slot) -> None:
        ext, number = slot.doc.get("externalId"), slot.doc["orderNumber"].casefold()
        if ext and self.by_ext.get(ext) is slot:
            del self.by_ext[ext]
        if self.by_number.get(number) is slot:
            del self.by_number[number]

    def find(self, doc: dict[str, Any]) -> tuple[_Slot | None, _Slot | None]:
        ext, number = doc.get("externalId"), doc.get("orderNumber")
        return (
            self.by_ext.get(ext) if ext else None,
            self.by_number.get(str(number).casefold()) if number else None,
        )

    def _generated_number(self) -> str:
        while True:
            number = f"ORD-{next_number(self.conn, self.org, 'order'):05d}"
            taken = self.conn.execute(
                "SELECT 1 FROM orders WHERE org = ? AND number_lower = ?",
                (self.org, number.casefold()),
            ).fetchone()
            if not taken and number.casefold() not in self.by_number:
                return number

    def put(self, slot: _Slot | None, order: dict[str, Any], now: str) -> _Slot:
        """Replace the order's fields and items, keeping `id` (§6.2)."""
        if slot is None:
            slot = _Slot(new_guid(), {"createdAt": now}, is_new=True)
        else:
            self._unindex(slot)
        number = order.get("orderNumber") or slot.doc.get("orderNumber")
        order["orderNumber"] = str(number) if number else self._generated_number()
        slot.doc = {"id": slot.id, **order, "createdAt": slot.doc["createdAt"], "updatedAt": now}
        self._index(slot)
        return slot

    def write(self, touched: list[_Slot]) -> None:
        unique = {s.id: s for s in touched}.values()
        new = [(self.org, s.id, *s.row()) for s in unique if s.is_new]
        changed = [(*s.row(), self.org, s.id) for s in unique if not s.is_new]
        if new:
            self.conn.executemany(_INSERT, new)
        if changed:
            self.conn.executemany(_UPDATE, changed)


class OrderStore:
    def __init__(self, db: Database, products: ProductStore, strict_skus: bool) -> None:
        self._db, self._products, self._strict = db, products, strict_skus

    def _context(self, conn: sqlite3.Connection, org: str, docs: list[dict], faults: FaultConfig):
        numbers, skus = [], []
        for doc in docs:
            customer = doc.get("customer")
            if isinstance(customer, dict) and isinstance(customer.get("customerNumber"), str):
                numbers.append(customer["customerNumber"].casefold())
            for item in doc.get("items") or []:
                if isinstance(item, dict) and isinstance(item.get("sku"), str):
                    skus.append(item["sku"].casefold())
        return OrderContext(
            org=org,
            now=utc_now(),
            customers=CustomerStore.by_numbers(conn, org, numbers),
            products=self._products.by_skus(conn, org, skus),
            strict_skus=self._strict,
            fail_skus=frozenset(s.casefold() for s in faults.fail_skus),
            unknown_tiers=frozenset(t.casefold() for t in faults.unknown_tiers),
        )

    def bulk_upsert(self, org: str, docs: list[dict], faults: FaultConfig) -> dict[str, Any]:
        """Apply items in array order in one transaction; returns the §3.5 summary."""
        results: list[dict[str, Any]] = []
        touched: list[_Slot] = []
        with self._db.transaction() as conn:
            ctx = self._context(conn, org, docs, faults)
            batch = _Batch(conn, org, docs)
            for index, doc in enumerate(docs):
                result, slot = self._apply_one(batch, ctx, doc)
                results.append({"index": index, **result})
                touched += [slot] if slot else []
            batch.write(touched)
        counts = {s: sum(r["status"] == s for r in results) for s in ("Created", "Updated")}
        return {
            "totalCount": len(docs),
            "createdCount": counts["Created"],
            "updatedCount": counts["Updated"],
            "failedCount": len(docs) - counts["Created"] - counts["Updated"],
            "results": results,
        }

    @staticmethod
    def _apply_one(batch: _Batch, ctx: OrderContext, doc: dict) -> tuple[dict, _Slot | None]:
        result: dict[str, Any] = {
            "externalId": doc.get("externalId"),
            "orderNumber": doc.get("orderNumber"),
        }
        order, errors = build_order(doc, ctx)
        by_ext, by_number = batch.find(doc)
        if not errors and by_ext and by_number and by_ext is not by_number:
            owner = by_number.doc.get("externalId") or ""
            message = f"Order number '{doc['orderNumber']}' belongs to another order"
            errors = {"OrderNumber": [f"{message} (externalId '{owner}')"]}
        if errors or order is None:
            return {**result, "status": "Failed", "errors": errors}, None
        status = "Updated" if (by_ext or by_number) else "Created"
        slot = batch.put(by_ext or by_number, order, ctx.now)
        result.update(orderNumber=slot.doc["orderNumber"], status=status, id=slot.id)
        return result, slot

    def get(self, org: str, order_id: str) -> dict[str, Any] | None:
        """By `id`, falling back to `orderNumber`."""
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT doc FROM orders WHERE org = ? AND (id = ? OR number_lower = ?) "
                "ORDER BY id = ? DESC LIMIT 1",
                (org, order_id, order_id.casefold(), order_id),
            ).fetchone()
        return loads(row[0]) if row else None

    def list(self, org: str, q: ListQuery) -> dict[str, Any]:
        with self._db.reading() as conn:
            return run_list(conn, ORDER_VIEW, org, q)
