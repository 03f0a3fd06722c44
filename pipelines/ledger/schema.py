"""The ledger's tables, and creating them in an empty (or older) database.

Every table is prefixed ``nymble_`` so the ledger can share a database with other tools.
Timestamps are stored as naive UTC and handed back UTC-aware on every dialect.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = [
    "SCHEMA_VERSION",
    "UTCDateTime",
    "batches",
    "ensure_schema",
    "meta",
    "metadata",
    "record_events",
    "record_state",
    "runs",
    "watermarks",
]

SCHEMA_VERSION = 1


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A datetime that must be UTC-aware going in and is UTC-aware coming out.

    SQLite and MySQL DATETIME keep no zone, so storing naive UTC everywhere keeps one
    behaviour on all three dialects.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[datetime]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))  # default keeps no fractions
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"the ledger stores UTC-aware datetimes only, got naive {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STATUS = sa.String(16)

metadata = sa.MetaData()

meta = sa.Table(
    "nymble_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

runs = sa.Table(
    "nymble_runs",
    metadata,
    sa.Column("run_id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(200), nullable=False),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("target_label", sa.String(1024), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("full", sa.Boolean(), nullable=False),
    sa.Column("status", _STATUS, nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("heartbeat_at", UTCDateTime()),
    sa.Column("counts", sa.Text()),
    sa.Column("rejects_path", sa.String(1024)),
    sa.Column("elapsed_s", sa.Float()),
    sa.Column("pid", sa.Integer()),
    sa.Column("host", sa.String(255)),
    sa.Index("ix_nymble_runs_scope", "job", "target_id", "entity", "status"),
)

batches = sa.Table(
    "nymble_batches",
    metadata,
    sa.Column("run_id", sa.BigInteger(), sa.ForeignKey(runs.c.run_id), primary_key=True),
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("item_count", sa.Integer(), nullable=False),
    sa.Column("byte_count", sa.BigInteger(), nullable=False),
    sa.Column("status", _STATUS, nullable=False),
    sa.Column("http_status", sa.Integer()),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("elapsed_ms", sa.Float()),
    sa.Column("error", sa.Text()),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("done_at", UTCDateTime()),
)

record_state = sa.Table(
    "nymble_record_state",
    metadata,
    sa.Column("target_id", sa.String(128), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("external_id", sa.String(255), primary_key=True),
    sa.Column("key_hash", sa.BigInteger(), nullable=False),
    sa.Column("content_hash", sa.BigInteger(), nullable=False),
    sa.Column("status", _STATUS, nullable=False),
    sa.Column("last_error", sa.Text()),
    sa.Column("last_run_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_nymble_record_state_status", "target_id", "entity", "status"),
)

record_events = sa.Table(
    "nymble_record_events",
    metadata,
    # A serial id orders events of one batch, which all share the same ``at``.
    sa.Column("event_id", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.BigInteger(), sa.ForeignKey(runs.c.run_id), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("content_hash", sa.BigInteger(), nullable=False),
    sa.Column("status", _STATUS, nullable=False),
    sa.Column("message", sa.Text()),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_nymble_record_events_external_id", "external_id"),
)

watermarks = sa.Table(
    "nymble_watermarks",
    metadata,
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("target_id", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(1024), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)


def ensure_schema(conn: sa.Connection) -> int:
    """Create missing tables; return the schema version the database records."""
    metadata.create_all(conn, checkfirst=True)
    found = conn.scalar(sa.select(meta.c.value).where(meta.c.name == "schema_version"))
    if found is None:
        conn.execute(sa.insert(meta).values(name="schema_version", value=str(SCHEMA_VERSION)))
        return SCHEMA_VERSION
    return int(found)
