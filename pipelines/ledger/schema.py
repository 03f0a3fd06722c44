"""The ledger's tables (:mod:`pipelines.ledger.creation` creates them).

Every table is prefixed ``nymble_`` so the ledger can share a database with other tools.
Timestamps are stored as naive UTC and handed back UTC-aware on every dialect.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = [
    "BATCH_TIER",
    "SCHEMA_VERSION",
    "SNAPSHOT_TIER",
    "UTCDateTime",
    "batch_outcomes",
    "batches",
    "held",
    "locks",
    "meta",
    "metadata",
    "runs",
    "watermarks",
]

# 2: per-record state and events gave way to columnar batch outcomes.
SCHEMA_VERSION = 2


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A datetime that must be UTC-aware going in and is UTC-aware coming out.

    SQLite and MySQL DATETIME keep no zone, so storing naive UTC everywhere keeps one
    behaviour on all three dialects.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[datetime]:
        if dialect.name in ("mysql", "mariadb"):  # its module is loaded: it is the dialect's
            from sqlalchemy.dialects.mysql import DATETIME

            return dialect.type_descriptor(DATETIME(fsp=6))  # default keeps no fractions
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
    sa.Column("elapsed_s", sa.Double()),
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
    sa.Column("elapsed_ms", sa.Double()),
    sa.Column("error", sa.Text()),
    sa.Column("sent_at", UTCDateTime(), nullable=False),
    sa.Column("done_at", UTCDateTime()),
)


class _Blob(sa.TypeDecorator[bytes]):
    """A blob of up to 4 GB on MySQL/MariaDB, whose plain BLOB stops at 64 KB. (Not a
    ``with_variant``: that needs the MySQL type, and so its dialect, loaded on every run.)"""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[bytes]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGBLOB

            return dialect.type_descriptor(LONGBLOB())
        return dialect.type_descriptor(sa.LargeBinary())


_BLOB = _Blob()

# One row per acknowledged batch: its record outcomes as columns, never one row per record.
# ``keys`` and ``hashes`` are int64 arrays (``ndarray.tobytes()``, native byte order),
# ``statuses`` int8 codes (the index in RECORD_STATUSES: 0 created, 1 updated, 2 failed,
# 3 adopted; codes are only ever added, so older ledgers need no upgrade),
# ``detail`` an LZ4-compressed Arrow IPC stream of (external_id, message) per record.
# ``tier`` orders rows before ``seq``: compaction's snapshot rows (tier 0) are inserted
# after the rows they replace, yet must read as older than every batch row (tier 1).
# The blobs come last so SQLite reads keys, hashes and statuses without walking ``detail``.
batch_outcomes = sa.Table(
    "nymble_batch_outcomes",
    metadata,
    sa.Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.BigInteger(), sa.ForeignKey(runs.c.run_id), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("entity", sa.String(64), nullable=False),
    sa.Column("tier", sa.SmallInteger(), nullable=False),
    sa.Column("record_count", sa.Integer(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("keys", _BLOB, nullable=False),
    sa.Column("hashes", _BLOB, nullable=False),
    sa.Column("statuses", _BLOB, nullable=False),
    sa.Column("detail", _BLOB, nullable=False),
    sa.Index("ix_nymble_batch_outcomes_scope", "target_id", "entity", "tier", "seq"),
)
SNAPSHOT_TIER = 0
BATCH_TIER = 1

watermarks = sa.Table(
    "nymble_watermarks",
    metadata,
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("target_id", sa.String(128), primary_key=True),
    sa.Column("value", sa.String(1024), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# One row per (job, target) while a run holds it; ``token`` tells this holder's row from a
# later one after a takeover, since ``holder`` (pid@host) can repeat.
locks = sa.Table(
    "nymble_locks",
    metadata,
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("target_id", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("token", sa.String(32), nullable=False),
    sa.Column("run_id", sa.BigInteger()),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
)


# Records a job could not send yet because the target lacks something they reference (an
# order's customer or SKU): since when, over how many runs, and what they wait for. A job's
# ``hold`` policy gives up on them after a while; ``nymble-sync held JOB`` lists them.
held = sa.Table(
    "nymble_held",
    metadata,
    sa.Column("job", sa.String(200), primary_key=True),
    sa.Column("target_id", sa.String(128), primary_key=True),
    sa.Column("key_hash", sa.BigInteger(), primary_key=True),
    sa.Column("external_id", sa.String(255), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("value", sa.String(1024)),
    sa.Column("watermark", sa.String(1024)),
    sa.Column("first_held_at", UTCDateTime(), nullable=False),
    sa.Column("last_held_at", UTCDateTime(), nullable=False),
    sa.Column("runs", sa.Integer(), nullable=False),
    sa.Column("last_run_id", sa.BigInteger()),
    # Set once the job's hold policy gave up on it: read again, it is not held again.
    sa.Column("given_up_at", UTCDateTime()),
)
