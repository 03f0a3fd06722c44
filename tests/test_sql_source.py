"""The SQL source on the sample ERP database: SQLite as committed, and copied into real
PostgreSQL and MariaDB servers with server types (NUMERIC money, TIMESTAMP/DATETIME dates)."""

from __future__ import annotations

import csv
import functools
import re
import sqlite3
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines.errors import ConfigError, SourceError
from pipelines.extract.sql import SqlSourceConfig, make_engine, read_sql, resolve_url, sql_columns

ROOT = Path(__file__).resolve().parents[1]
ERP = ROOT / "sample_data" / "erp.sqlite"
SQL = ROOT / "sql"
CANARY = "canary-PW-1"
LATE = "2025-01-01 00:00:00"  # about 3% of the sample orders were edited after this

MONEY = {"unit_price", "ship_total", "subtotal", "tax", "order_total", "disc_pct", "line_total"}
DATE_FORMATS = {"order_date": "%m/%d/%Y %H:%M", "updated_at": "%Y-%m-%d %H:%M:%S"}


def erp(sql: str, *args: object) -> list[tuple]:
    """Rows straight from the committed SQLite file, for expected values."""
    with sqlite3.connect(f"file:{ERP}?mode=ro", uri=True) as db:
        return db.execute(sql, args).fetchall()


def config(query: str | Path, **options) -> SqlSourceConfig:
    path = query if isinstance(query, Path) else SQL / query
    params = options.pop("params", {})
    return SqlSourceConfig(url_env="ERP_URL", query_file=path, params=params, **options)


def read_all(engine, cfg, **kwargs) -> tuple[list, pa.Table]:
    chunks = list(read_sql(engine, cfg, **kwargs))
    return chunks, pa.concat_tables([chunk.table for chunk in chunks])


# --- loading the sample into the servers ------------------------------------------------------


def _server_type(name: str, declared: str) -> sa.types.TypeEngine:
    if name in MONEY:
        return sa.Numeric(12, 3)
    if name in DATE_FORMATS:
        return sa.DateTime()
    return sa.Integer() if declared == "INTEGER" else sa.String(200)


def _server_value(name: str, value: object) -> object:
    if value is None:
        return None
    if name in MONEY:
        return Decimal(value)
    if name in DATE_FORMATS:
        return datetime.strptime(value, DATE_FORMATS[name])
    return value


@functools.cache
def erp_tables() -> tuple[tuple[list[tuple], list[tuple]], ...]:
    """Each table of erp.sqlite as (PRAGMA table_info rows, rows with server values)."""
    tables = []
    for (table,) in erp("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        info = erp(f"PRAGMA table_info({table})")  # cid, name, type, notnull, default, pk
        names = [column[1] for column in info]
        rows = [
            tuple(_server_value(name, value) for name, value in zip(names, row, strict=True))
            for row in erp(f"SELECT * FROM {table}")
        ]
        tables.append((table, info, rows))
    return tuple(tables)


def load_erp(url: str) -> None:
    """Copy every table of erp.sqlite into the server at ``url``, with server types."""
    metadata = sa.MetaData()
    loads = []
    for table, info, rows in erp_tables():
        columns = [
            sa.Column(name, _server_type(name, declared), primary_key=bool(pk), autoincrement=False)
            for _, name, declared, _, _, pk in info
        ]
        loads.append((sa.Table(table, metadata, *columns, mysql_charset="utf8mb4"), rows))
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            for server_table, rows in loads:
                _bulk_insert(conn, server_table, rows)
    finally:
        engine.dispose()


def _bulk_insert(conn: sa.Connection, table: sa.Table, rows: list[tuple]) -> None:
    """COPY on PostgreSQL, PyMySQL's multi-row executemany on MariaDB: a second, not ten."""
    names = ", ".join(column.name for column in table.columns)
    if conn.dialect.name == "postgresql":
        with (
            conn.connection.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join(["%s"] * len(table.columns))
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
    pytest.param("mysql_url", id="mariadb", marks=pytest.mark.services),
]


@pytest.fixture(params=BACKENDS)
def engine(request):
    if request.param == "sqlite":
        url = f"sqlite:///{ERP}"
    else:
        url = request.getfixturevalue(request.param)
        load_erp(url)
    built = make_engine(url)
    yield built
    built.dispose()


def is_server(engine) -> bool:
    return engine.dialect.name != "sqlite"


# --- reading ----------------------------------------------------------------------------------

EXPECTED_ROWS = {
    "customers.sql": "SELECT COUNT(*) FROM customers",
    "orders.sql": "SELECT COUNT(*) FROM orders",
    "order_lines.sql": "SELECT COUNT(*) FROM order_lines JOIN orders USING (order_id)",
    "orders_denormalized.sql": "SELECT COUNT(*) FROM orders LEFT JOIN order_lines USING (order_id)",
}


def test_every_query_file_runs_on_every_backend(engine):
    for query, count_sql in EXPECTED_ROWS.items():
        chunks, table = read_all(engine, config(query))
        assert table.num_rows == erp(count_sql)[0][0], query
        assert table.column_names == sql_columns(engine, config(query))
        assert {chunk.source for chunk in chunks} == {str(SQL / query)}
        if query == "orders_denormalized.sql":  # LEFT JOIN: the order without lines survives
            (row,) = [row for row in table.to_pylist() if row["order_id"] == 142]
            assert row["line_no"] is None and row["sku"] is None
    assert engine.pool.checkedout() == 0


def test_small_chunks_are_contiguous_and_equal_one_read(engine):
    chunks, table = read_all(engine, config("order_lines.sql", chunk_rows=3_000))
    _, whole = read_all(engine, config("order_lines.sql", chunk_rows=100_000))
    assert len(chunks) == -(-whole.num_rows // 3_000) > 1
    assert all(chunk.table.num_rows == 3_000 for chunk in chunks[:-1])
    rows = np.concatenate([chunk.rows for chunk in chunks])
    assert rows.dtype == np.int64
    assert rows.tolist() == list(range(1, whole.num_rows + 1))
    assert table.equals(whole)
    keys = list(zip(table["order_id"].to_pylist(), table["line_no"].to_pylist(), strict=True))
    assert keys == sorted(keys)  # the order grouping relies on


def test_money_stays_exact_and_dates_stay_naive(engine):
    _, lines = read_all(engine, config("order_lines.sql"))
    line = next(row for row in lines.to_pylist() if (row["order_id"], row["line_no"]) == (303, 1))
    _, orders = read_all(engine, config("orders.sql"))
    if is_server(engine):
        assert pa.types.is_decimal(lines.schema.field("unit_price").type)
        assert line["unit_price"] == Decimal("12.345")
        assert str(line["unit_price"]) == "12.345"
        assert orders.schema.field("ship_total").type.scale == 3
        assert orders.schema.field("order_date").type == pa.timestamp("us")  # no timezone
        assert orders["order_date"][0].as_py() == datetime(2023, 1, 2, 1, 58)
    else:  # SQLite keeps money and ERP dates as text for the mapper to parse exactly
        assert line["unit_price"] == "12.345"
        assert orders["order_date"][0].as_py() == "01/02/2023 01:58"
    assert lines.schema.field("qty").type == pa.int64()
    assert lines.schema.field("sku").type == pa.string()


def test_incremental_read_returns_newer_rows_and_the_max(engine):
    full = read_sql(engine, config("orders.sql", watermark_column="updated_at"))
    assert full.max_watermark is None  # known only once every chunk is read
    assert sum(chunk.table.num_rows for chunk in full) == 5_000
    newest = erp("SELECT MAX(updated_at) FROM orders")[0][0]
    assert full.max_watermark == newest

    late = read_sql(engine, config("orders.sql", chunk_rows=50, watermark_column="updated_at"),
                    watermark_from=LATE)  # fmt: skip
    table = pa.concat_tables([chunk.table for chunk in late])
    expected = [
        r[0] for r in erp("SELECT order_id FROM orders WHERE updated_at >= ? ORDER BY 1", LATE)
    ]
    assert table["order_id"].to_pylist() == expected
    assert 0 < len(expected) < 500
    assert late.max_watermark == newest

    empty = read_sql(engine, config("orders.sql", watermark_column="updated_at"),
                     watermark_from=newest.replace("2025", "2031"))  # fmt: skip
    assert list(empty) == [] and empty.max_watermark is None

    _, lines = read_all(engine, config("order_lines.sql"), watermark_from=LATE)
    assert set(lines["order_id"].to_pylist()) <= set(expected)


def test_closing_early_releases_the_connection(engine):
    with read_sql(engine, config("order_lines.sql", chunk_rows=100)) as reader:
        first = next(reader)
    assert first.rows.tolist() == list(range(1, 101))
    assert engine.pool.checkedout() == 0
    with pytest.raises(StopIteration):
        next(reader)


@pytest.mark.services
def test_postgresql_rows_stream_from_a_server_side_cursor(pg_url):
    """psycopg fetches a whole result into the client unless the cursor is a named one: the
    rows must come from a server-side cursor, one chunk's worth per FETCH, while the read is
    paused between chunks (a 10,000,000-line history never sits in memory at once)."""
    load_erp(pg_url)
    app = f"h6-stream-{uuid.uuid4().hex[:8]}"  # finds this read's session among others'
    engine = make_engine(f"{pg_url}&application_name={app}")
    watcher = sa.create_engine(pg_url)
    try:
        with read_sql(engine, config("order_lines.sql", chunk_rows=700)) as reader:
            firsts = [next(reader).table.num_rows for _ in range(3)]
            with watcher.connect() as conn:
                sessions = "SELECT state, query FROM pg_stat_activity WHERE application_name = :a"
                (state, query), *others = conn.execute(sa.text(sessions), {"a": app}).all()
        assert firsts == [700, 700, 700] and not others
        # the session's last statement fetched from a named cursor, which stays open (in its
        # transaction) while the client works on the chunk it has
        assert re.fullmatch(r'FETCH FORWARD \d+ FROM "[^"]+"', query), query
        assert int(query.split()[2]) <= 700
        assert state == "idle in transaction"
    finally:
        watcher.dispose()
        engine.dispose()


# --- errors -----------------------------------------------------------------------------------


def query_file(tmp_path, sql: str) -> Path:
    path = tmp_path / "custom.sql"
    path.write_text(sql, encoding="utf-8")
    return path


QUERY_ERRORS = {  # query → words the message must hold
    "SELECT * FROM no_such_table": ["no_such_table", "check the table and column names"],
    "SELEKT order_id FROM orders": ["SQL syntax"],
    "SELECT no_such_column FROM orders": ["no_such_column"],
}


def test_query_errors_name_the_query_file(engine, tmp_path):
    for sql, words in QUERY_ERRORS.items():
        path = query_file(tmp_path, sql)
        with pytest.raises(SourceError) as caught:
            list(read_sql(engine, config(path)))
        message = str(caught.value)
        assert message.startswith(f"{path}: the query failed on {engine.dialect.name}"), message
        assert all(word in message for word in words), message
        assert "[SQL:" not in message and "Traceback" not in message
    assert engine.pool.checkedout() == 0


def test_missing_env_var_names_the_variable():
    with pytest.raises(ConfigError, match="ERP_URL is not set"):
        resolve_url(config("orders.sql"), {"OTHER": "sqlite://"})
    assert resolve_url(config("orders.sql"), {"ERP_URL": " sqlite:///x.db "}) == "sqlite:///x.db"


UNREACHABLE = [
    pytest.param(f"postgresql+psycopg://postgres:{CANARY}@127.0.0.1:1/test", id="postgresql"),
    pytest.param(f"mysql+pymysql://root:{CANARY}@127.0.0.1:1/test", id="mariadb"),
]
REFUSED = [
    pytest.param(f"postgresql+psycopg://no_such_user_x:{CANARY}@127.0.0.1:5432/test",
                 id="postgresql", marks=pytest.mark.services),
    pytest.param(f"mysql+pymysql://no_such_user_x:{CANARY}@127.0.0.1:3306/test",
                 id="mariadb", marks=pytest.mark.services),
]  # fmt: skip


@pytest.mark.parametrize("url", UNREACHABLE + REFUSED)
def test_connection_errors_hide_the_password(url, request):
    if "5432" in url:
        request.getfixturevalue("pg_url")  # skips, or fails under NYMBLE_REQUIRE_SERVICES=1
    if "3306" in url:
        request.getfixturevalue("mysql_url")
    engine = make_engine(url, env_var="ERP_URL")
    try:
        for call in (lambda: list(read_sql(engine, config("orders.sql"))),
                     lambda: sql_columns(engine, config("orders.sql"))):  # fmt: skip
            with pytest.raises(SourceError) as caught:
                call()
            message = str(caught.value)
            assert CANARY not in message
            assert message.startswith(f"{SQL / 'orders.sql'}: cannot connect to ")
            assert ":***@127.0.0.1" in message and "ERP_URL" in message
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://user:{CANARY}@host:badport/db",
        f"not a url {CANARY}",
        f"nosuchdialect://user:{CANARY}@host/db",
    ],
    ids=["bad-port", "not-a-url", "unknown-dialect"],
)
def test_bad_urls_are_config_errors_without_the_password(url):
    with pytest.raises(ConfigError) as caught:
        make_engine(url, env_var="ERP_URL")
    assert CANARY not in str(caught.value)
    assert str(caught.value).startswith("the URL in ERP_URL: ")


def test_missing_sqlite_file_is_not_created(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path}/nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists()


@pytest.mark.parametrize(
    ("sql", "options", "message"),
    [
        pytest.param("SELECT * FROM orders WHERE customer_number = :customer", {},
                     r"uses :customer but params gives no value", id="missing-param"),
        pytest.param("SELECT * FROM orders", {"params": {"customr": "C1"}},
                     r"params customr not used by the query", id="unused-param"),
        pytest.param("SELECT * FROM orders WHERE order_id > :watermark_from",
                     {"params": {"watermark_from": 1}}, r"reserved", id="reserved-param"),
        pytest.param("SELECT * FROM orders", {"watermark_column": "updated_at"},
                     r"needs the query to filter on :watermark_from", id="no-watermark-filter"),
        pytest.param("  -- nothing here\n;", {}, r"the query file is empty", id="empty"),
        pytest.param("SELECT 1", {"chunk_rows": 0}, r"chunk_rows must be from 1 to",
                     id="chunk-rows"),
    ],
)  # fmt: skip
def test_query_file_problems_are_config_errors(tmp_path, sql, options, message):
    path = query_file(tmp_path, sql)
    engine = make_engine(f"sqlite:///{ERP}")
    try:
        with pytest.raises(ConfigError, match=message) as caught:
            read_sql(engine, config(path, **options))  # raised before any connection
        assert str(caught.value).startswith(str(path))
    finally:
        engine.dispose()


def test_params_bind_and_comments_may_mention_them(tmp_path):
    sql = "-- :ignored is only a comment\nSELECT order_id FROM orders WHERE customer_number = :c"
    path = query_file(tmp_path, sql + " /* :also_ignored */ ORDER BY order_id;")
    cfg = SqlSourceConfig("ERP_URL", path, {"c": "CUST-0101"})
    engine = make_engine(f"sqlite:///{ERP}")
    try:
        _, table = read_all(engine, cfg)
    finally:
        engine.dispose()
    expected = erp("SELECT order_id FROM orders WHERE customer_number = 'CUST-0101'")
    assert table["order_id"].to_pylist() == [r[0] for r in expected]


def test_watermark_column_must_be_in_the_result(tmp_path):
    path = query_file(tmp_path, "SELECT order_id FROM orders WHERE updated_at >= :watermark_from"
                                " OR :watermark_from IS NULL")  # fmt: skip
    engine = make_engine(f"sqlite:///{ERP}")
    try:
        with pytest.raises(ConfigError, match="watermark_column 'updated_at' is not a column"):
            list(read_sql(engine, config(path, watermark_column="updated_at")))
    finally:
        engine.dispose()


def test_a_column_mixing_types_names_column_and_rows(tmp_path):
    sql = "SELECT CASE WHEN order_id = 2500 THEN 'n/a' ELSE order_id END AS odd FROM orders"
    engine = make_engine(f"sqlite:///{ERP}")
    try:
        with pytest.raises(
            SourceError, match=r"column .odd.: .*in rows 2001-3000.*CAST the column"
        ):
            list(read_sql(engine, config(query_file(tmp_path, sql), chunk_rows=1_000)))
    finally:
        engine.dispose()


# --- the sample files -------------------------------------------------------------------------


def test_csv_twins_hold_the_first_500_orders_with_their_defects():
    with (ROOT / "sample_data" / "orders.csv").open(encoding="utf-8", newline="") as file:
        orders = list(csv.DictReader(file))
    with (ROOT / "sample_data" / "order_lines.csv").open(encoding="utf-8", newline="") as file:
        lines = list(csv.DictReader(file))
    assert [int(o["order_id"]) for o in orders] == list(range(1, 501))
    expected = erp("SELECT order_number, customer_number FROM orders WHERE order_id <= 500")
    assert [(o["order_number"], o["customer_number"]) for o in orders] == expected
    assert {o["order_id"] for o in orders} - {line["order_id"] for line in lines} == {"142"}
    assert sum(o["order_number"] == "SO-100366" for o in orders) == 2
    assert {"12.345"} <= {line["unit_price"] for line in lines}
    assert "DIS-99999-XX" in {line["sku"] for line in lines}
    assert "0" in {line["qty"] for line in lines}
