"""Products per organization: bulk upsert (§2.8), single upsert, reads, (de)activation.

SQLite holds the products; the match indexes (externalId -> row id, folded SKU -> row id) live
in memory, per organization. They change only under the database lock, in the transaction that
writes the rows, and are rebuilt from the database when such a transaction fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .db import Database
from .ids import utc_now
from .listing import ListQuery, TableView, run_list
from .problems import ProblemError
from .product_batch import UPDATE_ROW, OrgIndex, ProductBatch, apply_bulk, docs_by_rid, product_row
from .product_rules import ItemChecks
from .settings import FaultConfig

__all__ = ["PRODUCT_VIEW", "ProductStore"]

PRODUCT_VIEW = TableView(
    "products",
    "rid",
    "sku",
    {"sku": "sku_lower", "price": "price", "active": "active"},
)


class ProductStore:
    def __init__(self, db: Database, auto_create_categories: bool) -> None:
        self._db = db
        self._auto_categories = auto_create_categories
        self._orgs: dict[str, OrgIndex] = {}
        self._next_rid = 1
        self.reload()

    def reload(self) -> None:
        """Rebuild the match indexes from the database (on open, after a reset or a failure)."""
        orgs: dict[str, OrgIndex] = {}
        with self._db.reading() as conn:
            rows = conn.execute("SELECT org, rid, external_id, sku_lower FROM products")
            for org, rid, ext, key in rows:
                index = orgs.get(org) or orgs.setdefault(org, OrgIndex())
                if ext:
                    index.by_ext[ext] = rid
                index.by_sku[key] = rid
            self._orgs = orgs
            (top,) = conn.execute("SELECT coalesce(max(rid), 0) FROM products").fetchone()
            self._next_rid = int(top) + 1

    def _index(self, org: str) -> OrgIndex:
        return self._orgs.get(org) or self._orgs.setdefault(org, OrgIndex())

    def _rid(self, org: str, sku: str) -> int | None:
        index = self._orgs.get(org)
        return index.by_sku.get(sku.casefold()) if index else None

    @contextmanager
    def _writing(self, org: str) -> Iterator[ProductBatch]:
        """A batch inside a transaction; its rows are written and the indexes kept on success."""
        with self._db.reading():  # the lock spans the transaction and a rebuild after it fails
            batch: ProductBatch | None = None
            try:
                with self._db.transaction() as conn:
                    batch = ProductBatch(conn, org, self._index(org), self._next_rid)
                    yield batch
                    self._finish(conn, org, batch)
                    self._next_rid = batch.next_rid
            except BaseException:
                if batch is not None and batch.changed:
                    self.reload()
                raise

    def _checks(self, conn: sqlite3.Connection, org: str, faults: FaultConfig) -> ItemChecks:
        if self._auto_categories:
            return ItemChecks.build(faults)
        rows = conn.execute("SELECT name_lower FROM categories WHERE org = ?", (org,))
        return ItemChecks.build(faults, {r[0] for r in rows})

    def _finish(self, conn: sqlite3.Connection, org: str, batch: ProductBatch) -> None:
        batch.write()
        names = batch.categories() if self._auto_categories else ()
        if names:
            rows = [(org, name.casefold(), name) for name in names]
            conn.executemany("INSERT OR IGNORE INTO categories VALUES (?, ?, ?)", rows)

    def bulk_upsert(self, org: str, docs: list[dict], faults: FaultConfig) -> dict[str, Any]:
        """Apply validated items in array order in one transaction; returns the §2.8 summary."""
        with self._writing(org) as batch:
            results = apply_bulk(batch, self._checks(batch.conn, org, faults), docs)
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
        with self._writing(org) as batch:
            errors = self._checks(batch.conn, org, faults).errors(doc)
            if errors is not None:
                raise ProblemError.of(400, errors)
            ext, key = doc.get("externalId"), doc["sku"].casefold()
            rid_ext, rid_sku = batch.by_ext.get(ext) if ext else None, batch.by_sku.get(key)
            batch.load([rid_ext, rid_sku])
            if rid_ext is not None and rid_ext != rid_sku:
                detail = f"externalId '{ext}' belongs to SKU '{batch.docs[rid_ext]['sku']}'"
                raise ProblemError.of(409, detail=detail)
            if rid_sku is None:
                return batch.create(doc, key), True
            return batch.update(rid_sku, doc, key), False

    def get(self, org: str, sku: str) -> dict[str, Any] | None:
        with self._db.reading() as conn:
            rid = self._rid(org, sku)
            found = [] if rid is None else list(docs_by_rid(conn, [rid]))
        return found[0][1] if found else None

    def list(self, org: str, q: ListQuery) -> dict[str, Any]:
        # §6.9: deactivated products stay out of lists unless the caller filters on Active.
        where = () if any(f.field == "active" for f in q.filters) else (("active = 1", ()),)
        with self._db.reading() as conn:
            return run_list(conn, PRODUCT_VIEW, org, q, where)

    def set_active(self, org: str, sku: str, active: bool) -> bool:
        """Toggle `active`; False when no such product."""
        with self._db.transaction() as conn:
            rid = self._rid(org, sku)
            if rid is None:
                return False
            [(_, doc)] = docs_by_rid(conn, [rid])
            doc.update(active=active, updatedAt=utc_now())
            conn.execute(UPDATE_ROW, (*product_row(doc, sku.casefold()), rid))
        return True

    def delete(self, org: str, sku: str) -> bool:
        with self._db.reading():
            rid = self._rid(org, sku)
            if rid is None:
                return False
            with self._db.transaction() as conn:
                sql = "DELETE FROM products WHERE rid = ? RETURNING external_id"
                [(ext,)] = conn.execute(sql, (rid,)).fetchall()
            index = self._orgs[org]
            del index.by_sku[sku.casefold()]
            if ext and index.by_ext.get(ext) == rid:
                del index.by_ext[ext]
        return True

    def by_skus(self, conn: sqlite3.Connection, org: str, skus: list[str]) -> dict[str, dict]:
        """Stored products keyed by folded SKU, for order line matching (inside a transaction)."""
        index = self._orgs.get(org)
        rids = {index.by_sku.get(s.casefold()) for s in skus} if index else set()
        rids.discard(None)
        docs = (doc for _, doc in docs_by_rid(conn, rids))  # type: ignore[arg-type]
        return {doc["sku"].casefold(): doc for doc in docs}
