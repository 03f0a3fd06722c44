"""Products per organization: bulk upsert (§2.8), single upsert, reads, (de)activation.

SQLite holds the products; the match indexes (externalId -> row id, folded SKU -> row id) live
in memory, per organization. They change only under the database lock, in the transaction that
writes the rows, and are rebuilt from the database when such a transaction fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson

from .db import Database, next_number
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
    "INSERT INTO products (rid, org, product_id, external_id, sku_lower, price, active, doc) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE products SET external_id = ?, sku_lower = ?, price = ?, active = ?, doc = ? "
    "WHERE rid = ?"
)
_DOCS = "SELECT rid, doc FROM products WHERE rid IN ({marks})"
_CHUNK = 500


@dataclass(slots=True)
class _OrgIndex:
    """One organization's match indexes: externalId -> row id and folded SKU -> row id."""

    by_ext: dict[str, int] = field(default_factory=dict)
    by_sku: dict[str, int] = field(default_factory=dict)


def _docs_by_rid(conn: sqlite3.Connection, rids: Iterable[int]) -> Iterator[tuple[int, dict]]:
    unique = list(rids)
    for start in range(0, len(unique), _CHUNK):
        chunk = unique[start : start + _CHUNK]
        rows = conn.execute(_DOCS.format(marks=",".join("?" * len(chunk))), chunk)
        yield from ((rid, orjson.loads(text)) for rid, text in rows)


def _row(doc: dict[str, Any], key: str) -> tuple[Any, ...]:
    text = orjson.dumps(doc).decode()
    return doc.get("externalId"), key, doc.get("price"), int(doc["active"]), text


class _Batch:
    """One transaction's changes: the org's live indexes, plus the documents it read or wrote.

    Rows are written once, at the end; `changed` tells whether the indexes were touched.
    """

    def __init__(
        self, conn: sqlite3.Connection, org: str, index: _OrgIndex, first_rid: int
    ) -> None:
        self.conn, self.org, self.now = conn, org, utc_now()
        self.by_ext, self.by_sku = index.by_ext, index.by_sku
        self.docs: dict[int, dict[str, Any]] = {}  # row id -> document, as this batch sees it
        self.keys: dict[int, str] = {}  # row id -> folded SKU, for rows to write
        self.first_rid = self.next_rid = first_rid  # rows from first_rid on are new
        self.changed = False
        self._new_ids: list[str] = []
        self.id_budget = 1

    def load(self, rids: Iterable[int | None]) -> None:
        """Read the stored documents of these rows (None and rows already seen are skipped)."""
        wanted = {rid for rid in rids if rid is not None and rid not in self.docs}
        if wanted:
            self.docs.update(_docs_by_rid(self.conn, wanted))

    def _next_id(self) -> str:
        if not self._new_ids:
            # Reserve ids for the whole batch at once: one counter update, not one per item.
            first = next_number(self.conn, self.org, "product", self.id_budget)
            self._new_ids = product_ids(self.org, first, self.id_budget)
            self._new_ids.reverse()
        return self._new_ids.pop()

    def create(self, doc: dict[str, Any], key: str) -> dict[str, Any]:
        self.changed = True
        rid = self.next_rid
        self.next_rid += 1
        self.docs[rid] = new_product(doc, self.org, self._next_id(), self.now)
        self.keys[rid] = key
        ext = doc.get("externalId")
        if ext:
            self.by_ext[ext] = rid
        self.by_sku[key] = rid
        return doc

    def update(self, rid: int, doc: dict[str, Any], key: str) -> dict[str, Any]:
        self.changed = True
        old = self.docs[rid]
        new = self.docs[rid] = merge_product(old, doc, self.now)
        self.keys[rid] = key
        old_ext, ext = old.get("externalId"), new.get("externalId")
        if old_ext != ext:
            if old_ext and self.by_ext.get(old_ext) == rid:
                del self.by_ext[old_ext]
            if ext:
                self.by_ext[ext] = rid
        if old["sku"] != new["sku"]:
            old_key = old["sku"].casefold()
            if old_key != key and self.by_sku.get(old_key) == rid:
                del self.by_sku[old_key]
            self.by_sku[key] = rid
        return new

    def write(self) -> None:
        org, docs, first = self.org, self.docs, self.first_rid
        new, changed = [], []
        for rid, key in self.keys.items():
            doc = docs[rid]
            if rid >= first:
                new.append((rid, org, doc["productId"], *_row(doc, key)))
            else:
                changed.append((*_row(doc, key), rid))
        if new:
            self.conn.executemany(_INSERT, new)
        if changed:
            self.conn.executemany(_UPDATE, changed)

    def categories(self) -> set[str]:
        docs = self.docs
        return {str(c) for c in (docs[rid].get("category") for rid in self.keys) if c}


def _conflict(sku: str, owner: dict[str, Any]) -> dict[str, list[str]]:
    ext = owner.get("externalId") or ""
    return {"Sku": [f"SKU '{sku}' belongs to another product (externalId '{ext}')"]}


def _apply_all(batch: _Batch, checks: ItemChecks, docs: list[dict]) -> list[dict[str, Any]]:
    """Every bulk item in array order: match by externalId, then SKU (§2.8).

    This is the emulator's hot loop, hence the local names and the inlined lookups.
    """
    keys = [doc["sku"].casefold() for doc in docs]
    by_ext, by_sku, stored, check = batch.by_ext, batch.by_sku, batch.docs, checks.active
    batch.load([*map(by_ext.get, [doc["externalId"] for doc in docs]), *map(by_sku.get, keys)])
    batch.id_budget = len(docs)
    results = []
    for index, (doc, key) in enumerate(zip(docs, keys, strict=True)):
        ext, sku = doc["externalId"], doc["sku"]
        rid_ext, rid_sku = by_ext.get(ext), by_sku.get(key)
        errors = checks.errors(doc) if check else None
        if errors is None and rid_ext is not None and rid_sku is not None and rid_ext != rid_sku:
            errors = _conflict(sku, stored[rid_sku])
        if errors is not None:
            failed = {"index": index, "externalId": ext, "sku": sku, "status": "Failed"}
            failed["errors"] = errors
            results.append(failed)
            continue
        rid = rid_sku if rid_ext is None else rid_ext
        if rid is None:
            pid, status = batch.create(doc, key)["productId"], "Created"
        else:
            pid, status = batch.update(rid, doc, key)["productId"], "Updated"
        results.append(
            {"index": index, "externalId": ext, "sku": sku, "status": status, "productId": pid}
        )
    return results


class ProductStore:
    def __init__(self, db: Database, auto_create_categories: bool) -> None:
        self._db = db
        self._auto_categories = auto_create_categories
        self._orgs: dict[str, _OrgIndex] = {}
        self._next_rid = 1
        self.reload()

    def reload(self) -> None:
        """Rebuild the match indexes from the database (on open, after a reset or a failure)."""
        orgs: dict[str, _OrgIndex] = {}
        with self._db.reading() as conn:
            rows = conn.execute("SELECT org, rid, external_id, sku_lower FROM products")
            for org, rid, ext, key in rows:
                index = orgs.get(org) or orgs.setdefault(org, _OrgIndex())
                if ext:
                    index.by_ext[ext] = rid
                index.by_sku[key] = rid
            self._orgs = orgs
            self._next_rid = conn.execute("SELECT coalesce(max(rid), 0) + 1 FROM products")
            self._next_rid = int(self._next_rid.fetchone()[0])

    def _index(self, org: str) -> _OrgIndex:
        return self._orgs.get(org) or self._orgs.setdefault(org, _OrgIndex())

    def _rid(self, org: str, sku: str) -> int | None:
        index = self._orgs.get(org)
        return index.by_sku.get(sku.casefold()) if index else None

    @contextmanager
    def _writing(self, org: str) -> Iterator[_Batch]:
        """A batch inside a transaction; its rows are written and the indexes kept on success."""
        with self._db.reading():  # the lock spans the transaction and a rebuild after it fails
            batch: _Batch | None = None
            try:
                with self._db.transaction() as conn:
                    batch = _Batch(conn, org, self._index(org), self._next_rid)
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

    def _finish(self, conn: sqlite3.Connection, org: str, batch: _Batch) -> None:
        batch.write()
        names = batch.categories() if self._auto_categories else ()
        if names:
            rows = [(org, name.casefold(), name) for name in names]
            conn.executemany("INSERT OR IGNORE INTO categories VALUES (?, ?, ?)", rows)

    def bulk_upsert(self, org: str, docs: list[dict], faults: FaultConfig) -> dict[str, Any]:
        """Apply validated items in array order in one transaction; returns the §2.8 summary."""
        with self._writing(org) as batch:
            results = _apply_all(batch, self._checks(batch.conn, org, faults), docs)
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
            row = None if rid is None else conn.execute(_DOCS.format(marks="?"), (rid,)).fetchone()
        return orjson.loads(row[1]) if row else None

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
            [(_, doc)] = _docs_by_rid(conn, [rid])
            doc.update(active=active, updatedAt=utc_now())
            conn.execute(_UPDATE, (*_row(doc, sku.casefold()), rid))
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
        docs = (doc for _, doc in _docs_by_rid(conn, rids))  # type: ignore[arg-type]
        return {doc["sku"].casefold(): doc for doc in docs}
