"""Customers per organization, keyed by `customerNumber` (§4.1)."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from .casing import normalize_keys
from .db import Database, fetch_in
from .ids import utc_now
from .listing import ListQuery, TableView, run_list
from .problems import ProblemError

__all__ = ["CUSTOMER_VIEW", "CustomerStore", "validate_customer"]

CUSTOMER_VIEW = TableView(
    "customers",
    "number_lower",
    "name",
    {"name": "json_extract(doc, '$.companyName')", "customerNumber": "number_lower"},
)
_REQUIRED = (
    ("customerNumber", "CustomerNumber"),
    ("companyName", "CompanyName"),
    ("companyEmail", "CompanyEmail"),
    ("pricing", "Pricing"),
)


def validate_customer(body: Any) -> dict[str, Any]:
    """Normalize a customer body; 400 naming every missing required field."""
    if not isinstance(body, dict):
        raise ProblemError.of(400, {"$": ["The request body must be a JSON object."]})
    doc = normalize_keys(body)
    errors: dict[str, list[str]] = {}
    for key, label in _REQUIRED:
        value = doc.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[label] = [f"The {label} field is required."]
        elif not isinstance(value, str):
            errors[label] = ["The JSON value could not be converted to System.String."]
    if errors:
        raise ProblemError.of(400, errors)
    for key in ("createdAt", "updatedAt"):
        doc.pop(key, None)
    return doc


class CustomerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def upsert(self, org: str, doc: dict[str, Any], create_only: bool = False) -> tuple[dict, bool]:
        """Insert or merge (non-null fields replace); returns (customer, created).

        With `create_only`, an existing customer number is a 409 (`POST /api/customers`).
        """
        key, now = doc["customerNumber"].casefold(), utc_now()
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT doc FROM customers WHERE org = ? AND number_lower = ?", (org, key)
            ).fetchone()
            if row is not None and create_only:
                detail = f"Customer '{doc['customerNumber']}' already exists"
                raise ProblemError.of(409, detail=detail)
            stored = orjson.loads(row[0]) if row else {"active": True, "createdAt": now}
            stored.update((k, v) for k, v in doc.items() if v is not None)
            stored["updatedAt"] = now
            conn.execute(
                "INSERT OR REPLACE INTO customers (org, number_lower, doc) VALUES (?, ?, ?)",
                (org, key, orjson.dumps(stored).decode()),
            )
        return stored, row is None

    def get(self, org: str, number: str) -> dict[str, Any] | None:
        with self._db.reading() as conn:
            row = conn.execute(
                "SELECT doc FROM customers WHERE org = ? AND number_lower = ?",
                (org, number.casefold()),
            ).fetchone()
        return orjson.loads(row[0]) if row else None

    def list(self, org: str, q: ListQuery) -> dict[str, Any]:
        with self._db.reading() as conn:
            return run_list(conn, CUSTOMER_VIEW, org, q)

    @staticmethod
    def by_numbers(conn: sqlite3.Connection, org: str, numbers: list[str]) -> dict[str, dict]:
        """Stored customers keyed by folded number (inside a transaction)."""
        sql = "SELECT number_lower, doc FROM customers WHERE org = ? AND number_lower IN ({marks})"
        return {key: orjson.loads(text) for key, text in fetch_in(conn, sql, org, numbers)}
