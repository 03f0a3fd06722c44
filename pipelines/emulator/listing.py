"""Paged, sorted, filtered list queries (§5.4, §5.5) compiled to SQL over stored documents."""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .casing import canonical_name
from .page_cursors import PageCursors, data_version
from .page_query import Page
from .problems import ProblemError

__all__ = ["Filter", "ListQuery", "TableView", "parse_list_query", "run_list"]

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
_STRING_OPS = frozenset(
    {"startswith", "contains", "notcontains", "endswith", "equals", "notequals"}
)
_ORDER_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_INDEXED_RE = re.compile(r"^filters\[(\d+)\]\.(field|operator|value)$")
_BOOL_WORDS = {"true": 1, "false": 0}


@dataclass(frozen=True)
class Filter:
    field: str  # canonical dotted path, e.g. "sku" or "customer.customerNumber"
    operator: str  # lower-case
    value: str


@dataclass(frozen=True)
class ListQuery:
    page_number: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort_on: str | None = None
    descending: bool = False
    filters: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class TableView:
    """How a table answers list queries: fields with their own column, the default sort, how
    a stored document is read (orders: with exact decimals)."""

    table: str
    key_column: str
    default_sort: str
    columns: dict[str, str] = field(default_factory=dict)
    decode: Callable[[Any], Any] = orjson.loads


def _bad(name: str, message: str) -> ProblemError:
    return ProblemError.of(400, errors={name: [message]})


def _int_param(query: dict[str, list[str]], name: str, label: str, default: int) -> int:
    values = query.get(name)
    if not values or values[-1] == "":
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise _bad(label, f"The value '{values[-1]}' is not valid.") from None


def _field_path(name: str, label: str) -> str:
    if not _FIELD_RE.match(name):
        raise _bad(label, f"'{name}' is not a valid field name.")
    return ".".join(canonical_name(part) for part in name.split("."))


def _make_filter(raw: dict[str, Any], label: str) -> Filter:
    lowered = {str(k).lower(): v for k, v in raw.items()}
    name, op = lowered.get("field"), str(lowered.get("operator") or "equals").lower()
    if not isinstance(name, str) or not name:
        raise _bad(label + ".Field", "The Field field is required.")
    if op not in _STRING_OPS and op not in _ORDER_OPS:
        raise _bad(label + ".Operator", f"Unknown operator '{op}'.")
    value = lowered.get("value")
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return Filter(_field_path(name, label + ".Field"), op, text)


def _json_filters(text: str) -> list[dict[str, Any]]:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _bad("Filters", "Filters must be indexed parameters or a JSON array.") from None
    items = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(item, dict) for item in items):
        raise _bad("Filters", "Each filter must be an object {field, operator, value}.")
    return items


def _parse_filters(query: dict[str, list[str]]) -> tuple[Filter, ...]:
    indexed: dict[int, dict[str, str]] = {}
    for name, values in query.items():
        match = _INDEXED_RE.match(name)
        if match:
            indexed.setdefault(int(match[1]), {})[match[2]] = values[-1]
    raws = [(f"Filters[{i}]", indexed[i]) for i in sorted(indexed)]
    for text in query.get("filters", []):
        if text.strip():
            raws += [(f"Filters[{i}]", item) for i, item in enumerate(_json_filters(text))]
    return tuple(_make_filter(raw, label) for label, raw in raws)


def parse_list_query(query: dict[str, list[str]]) -> ListQuery:
    """Read pageNumber/pageSize/sortOn/sortDirection/filters (names already lower-cased)."""
    page = max(1, _int_param(query, "pagenumber", "PageNumber", 1))
    size = _int_param(query, "pagesize", "PageSize", DEFAULT_PAGE_SIZE)
    size = min(max(size, 1), MAX_PAGE_SIZE)
    sort_on = (query.get("sorton") or [""])[-1].strip()
    direction = (query.get("sortdirection") or ["asc"])[-1].strip().lower()
    return ListQuery(
        page_number=page,
        page_size=size,
        sort_on=_field_path(sort_on, "SortOn") if sort_on else None,
        descending=direction.startswith("desc"),
        filters=_parse_filters(query),
    )


def _expr(view: TableView, path: str) -> tuple[str, tuple[Any, ...]]:
    column = view.columns.get(path)
    if column is not None:
        return column, ()
    # The path inline, not a parameter: an index on the expression (db.py) then matches it.
    # Safe: field paths are identifiers joined by dots (_FIELD_RE).
    if not _FIELD_RE.match(path):
        raise _bad("Field", f"'{path}' is not a valid field name.")
    return f"json_extract(doc, '$.{path}')", ()


def _like(value: str, before: str, after: str) -> str:
    escaped = value.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return before + escaped + after


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _filter_sql(view: TableView, flt: Filter) -> tuple[str, tuple[Any, ...]]:
    expr, p = _expr(view, flt.field)
    op, value = flt.operator, flt.value
    if op in _ORDER_OPS:
        number = _number(value)
        return f"{expr} {_ORDER_OPS[op]} ?", (*p, value if number is None else number)
    if op in ("equals", "notequals"):
        if value.lower() in _BOOL_WORDS:
            sql, params = f"{expr} = ?", (*p, _BOOL_WORDS[value.lower()])
        else:
            sql, params = f"(fold({expr}) = ? OR {expr} = ?)", (*p, value.casefold(), *p, value)
        return (sql, params) if op == "equals" else (f"NOT coalesce({sql}, 0)", params)
    patterns = {"startswith": ("", "%"), "endswith": ("%", ""), "contains": ("%", "%")}
    before, after = patterns.get(op, ("%", "%"))
    sql = f"fold({expr}) LIKE ? ESCAPE '\\'"
    if op == "notcontains":
        sql = f"NOT coalesce({sql}, 0)"
    return sql, (*p, _like(value, before, after))


def _condition(
    view: TableView, org: str, q: ListQuery, where: tuple[tuple[str, tuple[Any, ...]], ...]
) -> tuple[str, tuple[Any, ...]]:
    clauses, params = ["org = ?"], [org]
    for sql, p in (*where, *(_filter_sql(view, f) for f in q.filters)):
        clauses.append(sql)
        params.extend(p)
    return " AND ".join(clauses), tuple(params)


def _sort(view: TableView, q: ListQuery) -> str:
    sort_expr, _ = _expr(view, q.sort_on or view.default_sort)
    if not sort_expr.isidentifier():  # own columns hold folded keys; documents need NOCASE
        sort_expr += " COLLATE NOCASE"
    return sort_expr


def run_list(
    conn: sqlite3.Connection,
    view: TableView,
    org: str,
    q: ListQuery,
    where: tuple[tuple[str, tuple[Any, ...]], ...] = (),
) -> dict[str, Any]:
    """The §5.4 envelope; `data` holds the stored documents (not yet rendered)."""
    condition, params = _condition(view, org, q, where)
    sort = _sort(view, q)
    cursors: PageCursors | None = getattr(conn, "page_cursors", None)
    known = None
    if cursors is not None:
        shape = (view.table, condition, params, sort, q.descending)
        known = cursors.query(shape, data_version(conn))
    if known is None or known.count is None:
        total = conn.execute(f"SELECT count(*) FROM {view.table} WHERE {condition}", params)
        total_records = int(total.fetchone()[0])
        if known is not None:
            known.count = total_records
    else:
        total_records = known.count
    page = Page(view.table, view.key_column, condition, params, sort, q.descending)
    rows = page.rows(conn, (q.page_number - 1) * q.page_size, q.page_size, known)
    return {
        "data": [view.decode(row[0]) for row in rows],
        "totalRecords": total_records,
        "currentPage": q.page_number,
        "totalPages": math.ceil(total_records / q.page_size),
        "pageSize": q.page_size,
    }
