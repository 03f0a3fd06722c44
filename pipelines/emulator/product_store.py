"""Products per organization: bulk upsert (§2.8), single upsert, reads, (de)activation."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import orjson

from .db import Database, fetch_in, next_number
from .ids import product_ids, utc_now
from .listing import ListQuery, TableView, run_list
from .problems import ProblemError
from .product_rules import ItemChecks, merge_product, new_product
from .settings import FaultConfig

__all__ = ["PRODUCT_VIEW", "ProductStore"]

PRODUCT_VIEW = TableView(
    "products",
    "rid",
    "sku",
    {"sku": "sku_lower", "price": "price", "active": "active"},
)
_INSERT = (
    "INSERT INTO products (org, product_id, external_id, sku_lower, price, active, doc) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE products SET external_id = ?, sku_lower = ?, price = ?, active = ?, doc = ? "
    "WHERE rid = ?"
)
_BY_EXT = "SELECT rid, doc FROM products WHERE org = ? AND external_id IN ({marks})"
_BY_SKU = "SELECT rid, doc FROM products WHERE org = ? AND sku_lower IN ({marks})"
_ONE_BY_SKU = "SELECT rid, doc FROM products WHERE org = ? AND sku_lower = ?"


@dataclass(slots=True)
class _Slot:
    """A product as the current batch sees it; written once at the end of the batch."""

    rid: int | None  # None until inserted
    doc: dict[str, Any]
    key: str  # the folded SKU
    dirty: bool = False

    def row(self) -> tuple[Any, ...]:
        doc = self.doc
        text = orjson.dumps(doc).decode()
        return doc.get("externalId"), self.key, doc.get("price"), int(doc["active"]), text


class _Batch:
    """The matching indexes (by externalId, by folded SKU) of one transaction."""

    def __init__(
        self, conn: sqlite3.Connection, org: str, exts: list[str | None], keys: list[str]
    ) -> None:
        self.conn, self.org = conn, org
        self.by_ext: dict[str, _Slot] = {}
        self.by_sku: dict[str, _Slot] = {}
        self.existing: dict[int, _Slot] = {}
        self.new: list[_Slot] = []
        self._new_ids: list[str] = []
        self._id_budget = len(keys)
        self._load(_BY_EXT, exts)
        self._load(_BY_SKU, keys)

    def _load(self, sql: str, values: list[Any]) -> None:
        for rid, text in fetch_in(self.conn, sql, self.org, values):
            if rid not in self.existing:
                doc = orjson.loads(text)
                slot = self.existing[rid] = _Slot(rid, doc, doc["sku"].casefold())
                self._index(slot)

    def _index(self, slot: _Slot) -> None:
        ext = slot.doc.get("externalId")
        if ext:
            self.by_ext[ext] = slot
        self.by_sku[slot.key] = slot

    def _unindex(self, slot: _Slot) -> None:
        ext = slot.doc.get("externalId")
        if ext and self.by_ext.get(ext) is slot:
            del self.by_ext[ext]
        if self.by_sku.get(slot.key) is slot:
            del self.by_sku[slot.key]

    def find(self, ext: str | None, sku_key: str) -> tuple[_Slot | None, _Slot | None]:
        return (self.by_ext.get(ext) if ext else None), self.by_sku.get(sku_key)

    def _next_id(self) -> str:
        if not self._new_ids:
            # Reserve ids for the whole batch at once: one counter update, not one per item.
            first = next_number(self.conn, self.org, "product", self._id_budget)
            self._new_ids = product_ids(self.org, first, self._id_budget)
            self._new_ids.reverse()
        return self._new_ids.pop()

    def create(self, doc: dict[str, Any], key: str, now: str) -> _Slot:
        slot = _Slot(None, new_product(doc, self.org, self._next_id(), now), key)
        self.new.append(slot)
        ext = doc.get("externalId")
        if ext:
            self.by_ext[ext] = slot
        self.by_sku[key] = slot
        return slot

    def update(self, slot: _Slot, doc: dict[str, Any], key: str, now: str) -> None:
        self._unindex(slot)
        slot.doc, slot.key, slot.dirty = merge_product(slot.doc, doc, now), key, True
        self._index(slot)

    def write(self) -> None:
        org = self.org
        if self.new:
            self.conn.executemany(_INSERT, [(org, s.doc["productId"], *s.row()) for s in self.new])
        changed = [(*s.row(), s.rid) for s in self.existing.values() if s.dirty]
        if changed:
            self.conn.executemany(_UPDATE, changed)

    def categories(self) -> set[str]:
        slots = [*self.new, *(s for s in self.existing.values() if s.dirty)]
        return {str(s.doc["category"]) for s in slots if s.doc.get("category")}


def _conflict(sku: str, owner: _Slot) -> dict[str, list[str]]:
    ext = owner.doc.get("externalId") or ""
    return {"Sku": [f"SKU '{sku}' belongs to another product (externalId '{ext}')"]}


def _apply_all(
    batch: _Batch, checks: ItemChecks, docs: list[dict], keys: list[str], now: str
) -> list[dict[str, Any]]:
    """Every bulk item in array order: match by externalId, then SKU (§2.8).

    This is the emulator's hot loop, hence the local names and the inlined lookups.
    """
    results, by_ext, by_sku, check = [], batch.by_ext, batch.by_sku, checks.active
    for index, (doc, key) in enumerate(zip(docs, keys, strict=True)):
        ext, sku = doc.get("externalId"), doc["sku"]
        owner_ext = by_ext.get(ext) if ext else None
        owner_sku = by_sku.get(key)
        errors = checks.errors(doc) if check else None
        if errors is None and owner_ext and owner_sku and owner_ext is not owner_sku:
            errors = _conflict(sku, owner_sku)
        if errors is not None:
            results.append(
                {
                    "index": index,
                    "externalId": ext,
                    "sku": sku,
                    "status": "Failed",
                    "errors": errors,
                }
            )
            continue
        slot = owner_ext or owner_sku
        if slot is None:
            slot, status = batch.create(doc, key, now), "Created"
        else:
            batch.update(slot, doc, key, now)
            status = "Updated"
        pid = slot.doc["productId"]
        results.append(
            {"index": index, "externalId": ext, "sku": sku, "status": status, "productId": pid}
        )
    return results


class ProductStore:
    def __init__(self, db: Database, auto_create_categories: bool) -> None:
        self._db = db
        self._auto_categories = auto_create_categories

    def _checks(self, conn: sqlite3.Connection, org: str, faults: FaultConfig) -> ItemChecks:
        if self._auto_categories:
            return ItemChecks.build(faults)
        rows = conn.execute("SELECT name_lower FROM categories WHERE org = ?", (org,))
        return ItemChecks.build(faults, {r[0] for r in rows})

    def _finish(self, conn: sqlite3.Connection, org: str, batch: _Batch) -> None:
        batch.write()
        names = batch.categories() if self._auto_categories else ()
        if names:
            rows = [(org, name.casefold(), name) for name in names]
            conn.executemany("INSERT OR IGNORE INTO categories VALUES (?, ?, ?)", rows)

    def bulk_upsert(self, org: str, docs: list[dict], faults: FaultConfig) -> dict[str, Any]:
        """Apply validated items in array order in one transaction; returns the §2.8 summary."""
        now = utc_now()
        keys = [doc["sku"].casefold() for doc in docs]
        with self._db.transaction() as conn:
            checks = self._checks(conn, org, faults)
            batch = _Batch(conn, org, [doc.get("externalId") for doc in docs], keys)
            results = _apply_all(batch, checks, docs, keys, now)
            self._finish(conn, org, batch)
        statuses = [r["status"] for r in results]
        created, failed = statuses.count("Created"), statuses.count("Failed")
        return {
            "totalCount": len(docs),
            "createdCount": created,
            "updatedCount": len(docs) - created - failed,
            "failedCount": failed,
            "results": results,
        }

    def upsert_one(self, org: str, doc: dict, faults: FaultConfig) -> tuple[dict, bool]:
        """`PUT /api/products`: upsert by SKU. Returns (stored product, created)."""
        with self._db.transaction() as conn:
            errors = self._checks(conn, org, faults).errors(doc)
            if errors is not None:
                raise ProblemError.of(400, errors)
            key = doc["sku"].casefold()
            batch = _Batch(conn, org, [doc.get("externalId")], [key])
            by_ext, by_sku = batch.find(doc.get("externalId"), key)
            if by_ext is not None and by_ext is not by_sku:
                detail = f"externalId '{doc['externalId']}' belongs to SKU '{by_ext.doc['sku']}'"
                raise ProblemError.of(409, detail=detail)
            if by_sku is None:
                slot = batch.create(doc, key, utc_now())
            else:
                batch.update(slot := by_sku, doc, key, utc_now())
            self._finish(conn, org, batch)
        return slot.doc, by_sku is None

    def get(self, org: str, sku: str) -> dict[str, Any] | None:
        with self._db.reading() as conn:
            row = conn.execute(_ONE_BY_SKU, (org, sku.casefold())).fetchone()
        return orjson.loads(row[1]) if row else None

    def list(self, org: str, q: ListQuery) -> dict[str, Any]:
        # §6.9: deactivated products stay out of lists unless the caller filters on Active.
        where = () if any(f.field == "active" for f in q.filters) else (("active = 1", ()),)
        with self._db.reading() as conn:
            return run_list(conn, PRODUCT_VIEW, org, q, where)

    def set_active(self, org: str, sku: str, active: bool) -> bool:
        """Toggle `active`; False when no such product."""
        with self._db.transaction() as conn:
            row = conn.execute(_ONE_BY_SKU, (org, sku.casefold())).fetchone()
            if row is None:
                return False
            slot = _Slot(row[0], orjson.loads(row[1]), sku.casefold())
            slot.doc.update(active=active, updatedAt=utc_now())
            conn.execute(_UPDATE, (*slot.row(), slot.rid))
        return True

    def delete(self, org: str, sku: str) -> bool:
        with self._db.transaction() as conn:
            row = conn.execute(_ONE_BY_SKU, (org, sku.casefold())).fetchone()
            if row is not None:
                conn.execute("DELETE FROM products WHERE rid = ?", (row[0],))
        return row is not None

    @staticmethod
    def by_skus(conn: sqlite3.Connection, org: str, skus: list[str]) -> dict[str, dict]:
        """Stored products keyed by folded SKU, for order line matching (inside a transaction)."""
        docs = (orjson.loads(text) for _, text in fetch_in(conn, _BY_SKU, org, skus))
        return {doc["sku"].casefold(): doc for doc in docs}
