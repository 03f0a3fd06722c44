"""Read an ERP database through a SQL query file, as a stream of bounded chunks.

A query file (``sql/*.sql``) holds one ``SELECT``; its ``:named`` parameters take their values
from the job file's ``params``, never from text pasted into the SQL. The query must run as-is on
every backend it is pointed at, so keep it portable: no casts, no backend functions. A literal
colon followed by a word inside a string (``'a:b'``) must be written ``'a\\:b'``; comments
may mention parameters freely (they are removed before binding).

Rows are streamed: PostgreSQL through a server-side (named) cursor, MariaDB/MySQL through an
unbuffered ``SSCursor``, SQLite by stepping its cursor; memory holds one chunk, whatever the
table's size. Each chunk of ``chunk_rows`` rows becomes a ``pa.Table`` whose ``rows`` are the
1-based result row numbers. Types follow the values the driver returns:

- ``Decimal`` → ``decimal128(38, scale)`` (the scale the driver declares, else the largest seen so
  far): money stays exact, never float. SQLite has no decimal type: store money as TEXT and it
  arrives as exact text for the mapper to parse.
- ``datetime``/``date`` → ``timestamp[us]``; naive stays naive (the mapper applies the configured
  timezone), aware ones become UTC. ERP text dates stay text.
- ``int`` → int64, ``float`` → float64, ``str`` → string, ``bytes`` → binary.

A column keeps its type from chunk to chunk (an all-null stretch takes the type seen before it;
an undeclared decimal scale may only grow). A column mixing types, as SQLite allows, raises
``SourceError``: ``CAST`` it to one type in the query.

**Incremental reads.** With ``watermark_column`` set, the SQL decides where the filter goes and
references ``:watermark_from`` itself; ``read_sql`` binds it, ``None`` on a first full read::

    SELECT ... FROM orders o
    WHERE o.updated_at >= :watermark_from OR :watermark_from IS NULL
    ORDER BY o.order_id

Put the comparison first: PostgreSQL infers the parameter's type from its first use and rejects
``:watermark_from IS NULL`` on its own. ``>=`` re-reads the rows at the watermark itself, which
idempotent upserts make harmless and which keeps rows committed later in the same second.
``SqlRead.max_watermark`` is the largest value of ``watermark_column`` read, as text ready to bind
next time; it is set only once every chunk has been read, since rows come ordered by key, not by
watermark, and a partial read proves nothing about the rows not yet seen.

**Grouping.** Lines are grouped into orders downstream in bounded memory because the queries are
sorted: ``orders.sql`` by ``order_id``, ``order_lines.sql`` by ``order_id, line_no``; an order's
lines are contiguous, so a merge over the two streams needs one order at a time.

Every SQLAlchemy, driver and Arrow error is translated in ``_translated``: a message naming the
query file, the database (password hidden) and what to check.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from pipelines.drivers import extra_advice
from pipelines.errors import ConfigError, SourceError
from pipelines.extract.chunks import Chunk
from pipelines.redact import scrub

__all__ = ["SqlRead", "SqlSourceConfig", "make_engine", "read_sql", "resolve_url", "sql_columns"]

WATERMARK_PARAM = "watermark_from"
_MAX_PRECISION = 38  # decimal128's limit; exactness needs only the scale to be right
_MAX_CHUNK_ROWS = 2**31 - 1  # drivers pass fetchmany's size as a C int
_CONNECT_TIMEOUT_S = 15
# An unbuffered MariaDB read pauses while the pipeline maps and posts a chunk; the server drops
# a client that has not taken rows for net_write_timeout (60 s by default).
_MYSQL_NET_WRITE_TIMEOUT_S = 3600
# Comments go before binding: a :name inside one would be counted as a parameter. Quoted strings
# and identifiers (group 1) are kept as they are, so '--' or '/*' inside them survive.
_COMMENTS = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`)|--[^\n]*|/\*.*?\*/""", re.DOTALL)
_URL_EXAMPLE = "e.g. postgresql+psycopg://user:password@host:5432/erp or sqlite:///erp.sqlite"
# Driver modules whose package on PyPI has another name.
_PACKAGES = {"MySQLdb": "mysqlclient", "cx_Oracle": "cx-Oracle", "pysqlcipher3": "sqlcipher3"}


@dataclass(frozen=True)
class SqlSourceConfig:
    """Where and what to read: the URL's environment variable, the query file and its values."""

    url_env: str  # NAME of the variable holding the SQLAlchemy URL; a job file never holds it
    query_file: Path
    params: dict[str, object] = field(default_factory=dict)
    chunk_rows: int = 50_000
    watermark_column: str | None = None


def resolve_url(config: SqlSourceConfig, environ: Mapping[str, str]) -> str:
    """The database URL from ``environ[config.url_env]``; ``ConfigError`` naming it when unset."""
    url = environ.get(config.url_env, "").strip()
    if not url:
        raise ConfigError(
            f"environment variable {config.url_env} is not set; set it to the database URL "
            f"({_URL_EXAMPLE}) before running {config.query_file}"
        )
    return url


def make_engine(url: str, *, env_var: str | None = None) -> sa.Engine:
    """An engine for reading a source database, with pre-pinged pooled connections.

    Raises ``ConfigError`` for a malformed URL, an unknown dialect, a missing driver (saying
    what to install) or a SQLite file that does not exist (SQLite would silently create an empty
    one); the URL is never echoed, only its scheme.
    """
    where = f"the URL in {env_var}" if env_var else "the database URL"
    with _translated(where, action="parse"):
        parsed = sa.make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed, where)
    elif "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    with _translated(where, parsed, action="parse"), _driver_loaded(where, parsed):
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


@contextmanager
def _driver_loaded(where: str, url: sa.URL) -> Iterator[None]:
    """SQLAlchemy imports the URL's driver in ``create_engine``: a missing one, or a dialect it
    does not know, is a setup problem, explained with what to install."""
    try:
        yield
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"{where}: cannot load the database driver for {url.drivername} "
            f"({_reason(exc, url)}); {_driver_advice(url, exc)}"
        ) from exc


def _driver_advice(url: sa.URL, exc: Exception) -> str:
    backend = url.get_backend_name()
    advice = extra_advice(backend)
    if advice is not None:
        return advice
    module = getattr(exc, "name", None)  # None: SQLAlchemy does not know the dialect at all
    package = _PACKAGES.get(module, module) if module else "the package that provides it"
    return (
        f"install the SQLAlchemy driver for {backend} ({package}), "
        "or use sqlite, postgresql+psycopg or mysql+pymysql"
    )


def _check_sqlite_file(url: sa.URL, where: str) -> None:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file:")
    if not in_memory and not Path(database).expanduser().is_file():
        raise ConfigError(f"{where}: SQLite database file {database} does not exist")


def sql_columns(engine: sa.Engine, config: SqlSourceConfig) -> list[str]:
    """The query's result column names, read without fetching a row (the query under LIMIT 0)."""
    stmt, params = _statement(config, None)
    probe = sa.text(f"SELECT * FROM (\n{stmt.text}\n) AS q LIMIT 0")
    source = str(config.query_file)
    with _translated(source, engine.url, action="connect", env_var=config.url_env):
        conn = engine.connect()
    with conn, _translated(source, engine.url, action="query"):
        names = list(conn.execute(probe, params).keys())
    _check_names(names, source)
    return names


def read_sql(
    engine: sa.Engine, config: SqlSourceConfig, *, watermark_from: str | None = None
) -> SqlRead:
    """Stream the query's result as ``Chunk``s of ``config.chunk_rows`` rows.

    The query file and its parameters are checked before any connection is made; see the
    module docstring for types, watermarks and errors. Iterate the result once, or ``close()``
    it (or use it as a context manager) to release the connection early.
    """
    if not 1 <= config.chunk_rows <= _MAX_CHUNK_ROWS:
        raise ConfigError(f"{config.query_file}: chunk_rows must be from 1 to {_MAX_CHUNK_ROWS:,}")
    stmt, params = _statement(config, watermark_from)
    return SqlRead(engine, config, stmt, params)


class SqlRead:
    """The chunks of one ``read_sql`` call, and ``max_watermark`` once they are all read."""

    def __init__(
        self, engine: sa.Engine, config: SqlSourceConfig, stmt: sa.TextClause, params: dict
    ):
        self.max_watermark: str | None = None
        self._source = str(config.query_file)
        self._generator = self._read(engine, config, stmt, params)

    def __iter__(self) -> SqlRead:
        return self

    def __next__(self) -> Chunk:
        return next(self._generator)

    def close(self) -> None:
        self._generator.close()

    def __enter__(self) -> SqlRead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, engine, config, stmt, params) -> Iterator[Chunk]:
        source, url = self._source, engine.url
        with _translated(source, url, action="connect", env_var=config.url_env):
            conn = engine.connect()
        with conn:
            with _translated(source, url, action="query"):
                result = _stream(conn, config.chunk_rows).execute(stmt, params)
            try:
                watermark = yield from self._chunks(result, config, url)
            except BaseException:
                _abandon(result)
                raise
        self.max_watermark = watermark.text()

    def _chunks(
        self, result: sa.CursorResult, config: SqlSourceConfig, url: sa.URL
    ) -> Generator[Chunk, None, _Watermark]:
        names = list(result.keys())
        _check_names(names, self._source)
        builder = _ChunkBuilder(names, result.cursor.description, self._source)
        watermark = _Watermark(config.watermark_column, names, self._source)
        first = 1
        for rows in _fetch(result, config.chunk_rows, self._source, url):
            chunk = builder.build(rows, first)
            watermark.see(chunk.table)
            first += len(rows)
            yield chunk
        return watermark


def _abandon(result: sa.CursorResult) -> None:
    """Close a half-read stream before its connection goes back to the pool. A MariaDB
    unbuffered cursor reads (and drops) the rest of its rows to close; PostgreSQL's just closes."""
    # Only after an error or an early close(): a second error here would hide the first one.
    with suppress(Exception):
        result.close()


def _stream(conn: sa.Connection, chunk_rows: int) -> sa.Connection:
    if conn.dialect.name in ("mysql", "mariadb"):
        conn.exec_driver_sql(f"SET SESSION net_write_timeout = {_MYSQL_NET_WRITE_TIMEOUT_S}")
    return conn.execution_options(stream_results=True, yield_per=chunk_rows)


def _fetch(result: sa.CursorResult, size: int, source: str, url: sa.URL) -> Iterator[Any]:
    # an explicit size: SQLite has no server-side cursors, and there yield_per is not applied
    batches = result.partitions(size)
    while True:
        with _translated(source, url, action="fetch"):
            rows = next(batches, None)
        if rows is None:
            return
        yield rows


# --- the query file and its parameters --------------------------------------------------------


def _statement(
    config: SqlSourceConfig, watermark_from: str | None
) -> tuple[sa.TextClause, dict[str, object]]:
    """The query as a text clause and its bound values, checked against the job's params."""
    source = config.query_file
    try:
        sql = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: cannot read the query file: {exc}") from exc
    sql = _COMMENTS.sub(lambda match: match.group(1) or " ", sql).strip().rstrip(";").rstrip()
    if not sql:
        raise ConfigError(f"{source}: the query file is empty; write one SELECT in it")
    stmt = sa.text(sql)
    used = list(stmt.compile().params)
    params = dict(config.params)
    if WATERMARK_PARAM in params:
        raise ConfigError(f"{source}: params.{WATERMARK_PARAM} is reserved: read_sql binds it")
    wants_filter = config.watermark_column is not None or watermark_from is not None
    if wants_filter and WATERMARK_PARAM not in used:
        raise ConfigError(
            f"{source}: an incremental read needs the query to filter on :{WATERMARK_PARAM}, "
            f"e.g. WHERE updated_at >= :{WATERMARK_PARAM} OR :{WATERMARK_PARAM} IS NULL"
        )
    if WATERMARK_PARAM in used:
        params[WATERMARK_PARAM] = watermark_from
    missing = [name for name in used if name not in params]
    if missing:
        listed = ", ".join(f":{name}" for name in missing)
        raise ConfigError(f"{source}: the query uses {listed} but params gives no value; "
                          "add it under params in the job file")  # fmt: skip
    unused = sorted(set(params) - set(used))
    if unused:
        raise ConfigError(f"{source}: params {', '.join(unused)} not used by the query; "
                          "remove them or fix their names")  # fmt: skip
    return stmt, params


def _check_names(names: list[str], source: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SourceError(f"the query returns column {name!r} twice; give each column "
                              "a distinct name with AS", source=source)  # fmt: skip
        seen.add(name)


# --- rows to Arrow ----------------------------------------------------------------------------


class _ChunkBuilder:
    """Turns fetched rows into chunks, one ``pa.array`` per column, types pinned across chunks."""

    def __init__(self, names: list[str], description: Any, source: str):
        self.names, self.source = names, source
        self.types: list[pa.DataType | None] = [None] * len(names)
        # The scale the driver declares (PostgreSQL, MariaDB); None where it does not (SQLite).
        self.scales = [_declared_scale(column) for column in description or [()] * len(names)]

    def build(self, rows: Any, first: int) -> Chunk:
        numbers = np.arange(first, first + len(rows), dtype=np.int64)
        columns = zip(*rows, strict=True) if rows else [()] * len(self.names)
        arrays = []
        for index, values in enumerate(columns):
            name = self.names[index]
            span = f"{first}-{first + len(rows) - 1}"
            with _translated(self.source, action="arrow", column=name, rows=span):
                arrays.append(self._array(index, values))
        return Chunk(pa.Table.from_arrays(arrays, names=self.names), numbers, self.source)

    def _array(self, index: int, values: tuple) -> pa.Array:
        scale = self.scales[index]
        if scale is not None and isinstance(_first_value(values), Decimal):
            # every value fits the declared scale; giving the type is 12x faster than inferring it
            wanted = pa.decimal128(_MAX_PRECISION, scale)
            self.types[index] = wanted
            return pa.array(values, type=wanted)
        array = pa.array(values)
        wanted = _normal_type(array.type, scale)
        pinned = self.types[index]
        if pinned is not None and wanted != pinned:
            wanted = _reconcile(pinned, wanted, self.names[index])
        if not pa.types.is_null(wanted):
            self.types[index] = wanted
        return array if array.type == wanted else array.cast(wanted)


def _first_value(values: tuple) -> object:
    return next((value for value in values if value is not None), None)


def _declared_scale(column: Any) -> int | None:
    """DB-API ``description`` item 5; meaningful only for columns whose values are Decimal."""
    scale = column[5] if len(column) > 5 else None
    return scale if isinstance(scale, int) and 0 <= scale <= _MAX_PRECISION else None


def _normal_type(inferred: pa.DataType, declared_scale: int | None) -> pa.DataType:
    if pa.types.is_decimal(inferred):
        scale = max(inferred.scale, declared_scale or 0)
        return pa.decimal128(_MAX_PRECISION, scale)
    if pa.types.is_date(inferred):
        return pa.timestamp("us")
    if pa.types.is_timestamp(inferred):
        return pa.timestamp("us", "UTC" if inferred.tz else None)
    return inferred


def _reconcile(pinned: pa.DataType, chunk: pa.DataType, name: str) -> pa.DataType:
    """The type a later chunk is cast to: the earlier one, or a wider decimal scale."""
    if pa.types.is_null(chunk):
        return pinned
    if pa.types.is_decimal(pinned) and pa.types.is_decimal(chunk):
        return pa.decimal128(_MAX_PRECISION, max(pinned.scale, chunk.scale))
    widening = pa.types.is_integer(chunk) and (
        pa.types.is_floating(pinned) or pa.types.is_decimal(pinned)
    )
    if widening:
        return pinned
    raise pa.ArrowTypeError(f"earlier rows of column {name!r} are {pinned}, these are {chunk}")


class _Watermark:
    """The running maximum of the watermark column."""

    def __init__(self, column: str | None, names: list[str], source: str):
        if column is not None and column not in names:
            raise ConfigError(f"{source}: watermark_column {column!r} is not a column of the "
                              f"query's result ({', '.join(names)})")  # fmt: skip
        self.column, self.value = column, None

    def see(self, table: pa.Table) -> None:
        if self.column is None or pa.types.is_null(table[self.column].type):
            return
        value = pc.max(table[self.column]).as_py()
        if value is not None and (self.value is None or value > self.value):
            self.value = value

    def text(self) -> str | None:
        """The maximum as text any backend parses back into the column's type."""
        if isinstance(self.value, datetime):
            return self.value.isoformat(sep=" ")
        if isinstance(self.value, date):
            return self.value.isoformat()
        return None if self.value is None else str(self.value)


# --- errors -----------------------------------------------------------------------------------

_HINTS = {
    "connect": "cannot connect to {url}: {reason}; check the host, port, database, user and "
    "password in {env_var}, and that the server is running",
    "query": "the query failed on {url}: {reason}; check the table and column names and the SQL "
    "syntax in the query file",
    "fetch": "reading rows from {url} failed: {reason}",
    "arrow": "{reason} (in rows {rows}); CAST the column to one type in the query",
}


@contextmanager
def _translated(
    source: str,
    url: sa.URL | None = None,
    *,
    action: str,
    env_var: str | None = None,
    column: str | None = None,
    rows: str = "",
) -> Iterator[None]:
    """Turn SQLAlchemy, driver and Arrow errors into ``ConfigError``/``SourceError``: the one
    place. The URL is shown with its password hidden and the password scrubbed from any text."""
    try:
        yield
    except (ConfigError, SourceError):
        raise
    except (sa.exc.NoSuchModuleError, ImportError) as exc:  # unknown dialect, driver missing
        raise ConfigError(f"{source}: {_reason(exc, url)}; check the URL's scheme and that "
                          "its driver is installed") from exc  # fmt: skip
    except (sa.exc.SQLAlchemyError, pa.ArrowException, ValueError, OverflowError) as exc:
        if action == "parse":  # make_url() quotes the whole string, password and all
            raise ConfigError(f"{source}: not a valid database URL ({_URL_EXAMPLE})") from exc
        if not isinstance(exc, sa.exc.SQLAlchemyError | pa.ArrowException | OverflowError):
            raise
        shown = url.render_as_string(hide_password=True) if url is not None else "the database"
        text = _HINTS[action].format(
            url=shown, reason=_reason(exc, url), env_var=env_var or "the database URL", rows=rows
        )
        raise SourceError(text, source=source, column=column) from exc


def _reason(exc: BaseException, url: sa.URL | None) -> str:
    # The driver's own first line says what went wrong; SQLAlchemy's wrapper appends the
    # statement and its parameters, which are long and may hold record data.
    origin = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    text = (str(origin).strip().splitlines() or [type(origin).__name__])[0].rstrip(".")
    text = scrub(text, {})  # any URL's password the driver quoted
    password = url.password if url is not None else None
    return text.replace(str(password), "***") if password else text
