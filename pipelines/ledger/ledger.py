"""The run ledger: every run, batch and record outcome of nymble-sync, in one database."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Self

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from pipelines.errors import LedgerError, NoLedger
from pipelines.ledger.bulk import DriverStatements
from pipelines.ledger.compaction import compact_scope
from pipelines.ledger.creation import ensure_schema, read_version, recorded_version
from pipelines.ledger.database import (
    SUPPORTED_DIALECTS,
    build_engine,
    display_url,
    opened_read_only,
    sqlite_file,
    translate_errors,
)
from pipelines.ledger.history import find_events, latest_states
from pipelines.ledger.locks import Lock, acquire
from pipelines.ledger.models import (
    BATCH_STATUSES,
    RUN_STATUSES,
    BatchInfo,
    BatchStatus,
    RecordEvent,
    RecordState,
    RecordStatus,
    RunInfo,
    RunStatus,
    check_status,
)
from pipelines.ledger.records import (
    encode_outcomes,
    load_acked_state,
    outcome_blocks,
    outcome_total,
    write_outcomes,
)
from pipelines.ledger.schema import SCHEMA_VERSION, batches, runs, watermarks
from pipelines.ledger.upsert import upsert

__all__ = ["KEEP_RUNS", "Ledger"]

# Runs whose outcomes compaction leaves as they are: a month of nightly runs.
KEEP_RUNS = 30


def _now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """Records runs, batches and per-record outcomes; creates its tables on first use,
    unless ``create`` is False (for commands that only read: nothing is created, and a
    database without a ledger is a LedgerError).

    Every database failure surfaces as :class:`~pipelines.errors.LedgerError` naming the
    ledger URL with its password hidden.
    """

    def __init__(self, engine: sa.Engine, *, create: bool = True) -> None:
        self._engine = engine
        self._locks: list[Lock] = []
        self._statements = DriverStatements(engine.dialect)
        self._sqlite_path = sqlite_file(engine.url)
        self._read_only = opened_read_only(engine)
        if engine.dialect.name not in SUPPORTED_DIALECTS:
            raise LedgerError(
                f"run ledger at {self.url_for_display}: {engine.dialect.name} is not supported; "
                "use SQLite, PostgreSQL or MySQL/MariaDB"
            )
        with self._translate():
            version = ensure_schema(engine) if create else self._recorded_version()
        if version > SCHEMA_VERSION:
            # Writing with an older layout could break what a newer nymble-sync relies on.
            raise LedgerError(
                f"run ledger at {self.url_for_display} has schema version {version}; this "
                f"nymble-sync understands up to {SCHEMA_VERSION}: upgrade nymble-sync"
            )
        if version < SCHEMA_VERSION:
            raise LedgerError(
                f"run ledger at {self.url_for_display} has schema version {version} from an "
                f"earlier nymble-sync, which cannot be converted to version {SCHEMA_VERSION}: "
                "move the old ledger aside (rename its SQLite file, or point the ledger URL "
                "at a fresh database) and run again; the first run then sends every record"
            )

    @classmethod
    def connect(cls, url: str, *, create: bool = True) -> Ledger:
        """Open (and if needed create) the ledger at ``url``; the ledger owns the engine.

        With ``create=False``, for commands that only read, a SQLite file is opened
        read-only (every write then raises LedgerError) and one that does not exist is a
        LedgerError, not a new empty ledger; on a server nothing is created.
        """
        engine = build_engine(url, create=create)
        try:
            return cls(engine, create=create)
        except BaseException:
            engine.dispose()
            raise

    def close(self) -> None:
        """Release the locks still held, close pooled connections. The engine stays usable,
        so closing twice is harmless."""
        try:
            for lock in self._held_locks():
                lock.release()
        finally:
            self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def url_for_display(self) -> str:
        return display_url(self._engine.url)

    @property
    def read_only(self) -> bool:
        """Whether SQLite opened this ledger read-only (``connect(url, create=False)``)."""
        return self._read_only

    def _translate(self) -> AbstractContextManager[None]:
        # Arrow errors here can only come from reading a damaged outcome blob.
        return translate_errors(
            self.url_for_display,
            self._engine.url.password,
            also=(pa.ArrowException,),
            sqlite_path=self._sqlite_path,
            read_only=self._read_only,
        )

    def _recorded_version(self) -> int:
        """The schema version the database records, read without creating anything."""
        found = read_version(self._engine)
        if found is None:
            with self._engine.connect() as conn:
                found = recorded_version(conn)
        if found is None:
            raise NoLedger(
                f"run ledger at {self.url_for_display}: there is no ledger in this database, "
                "so no run has been recorded there (is this the directory, NYMBLE_SYNC_HOME "
                "or ledger URL the runs use?)"
            )
        return found

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """A connection in a transaction that commits on success."""
        with self._translate(), self._engine.begin() as conn:
            yield conn

    # --- locks: one run per job and target at a time ------------------------------------

    def acquire_lock(
        self, *, job: str, target_id: str, holder: str, stale_after_s: float = 120
    ) -> Lock:
        """Take the lock on (job, target_id) or raise LockHeld naming its holder and since
        when; see :func:`pipelines.ledger.locks.acquire`. Runs begun on this ledger for the
        same job and target are named in the lock, :meth:`heartbeat` raises LockHeld if it
        was lost, and :meth:`close` releases what is still held.
        """
        lock = acquire(
            self._engine,
            self._translate,
            job=job,
            target_id=target_id,
            holder=holder,
            stale_after_s=stale_after_s,
        )
        self._locks.append(lock)
        return lock

    def _held_locks(self, job: str | None = None, target_id: str | None = None) -> list[Lock]:
        self._locks = [lock for lock in self._locks if lock.held]
        return [
            lock
            for lock in self._locks
            if job in (None, lock.job) and target_id in (None, lock.target_id)
        ]

    # --- runs ---------------------------------------------------------------------------

    def begin_run(
        self, *, job: str, target_id: str, target_label: str, entity: str, source: str, full: bool
    ) -> int:
        """Record a new run as 'running'; return its id."""
        now = _now()
        values = {
            "job": job,
            "target_id": target_id,
            "target_label": target_label,
            "entity": entity,
            "source": source,
            "full": full,
            "status": "running",
            "started_at": now,
            "heartbeat_at": now,
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        with self._begin() as conn:
            result = conn.execute(sa.insert(runs).values(values))
        run_id = int(result.inserted_primary_key[0])
        for lock in self._held_locks(job, target_id):
            lock.attach_run(run_id)
        return run_id

    def heartbeat(self, run_id: int, counts: dict[str, int] | None = None) -> None:
        """Mark the run alive now, so a stale heartbeat can tell a crash from a slow run;
        with ``counts``, keep them too, so a run that dies shows what it had done.

        Raises LockHeld if a lock this ledger holds was lost to another process.
        """
        for lock in self._held_locks():
            lock.check()
        values: dict[str, Any] = {"heartbeat_at": _now()}
        if counts is not None:
            values["counts"] = json.dumps(counts, sort_keys=True)
        self._update_run(run_id, **values)

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        counts: dict[str, int],
        rejects_path: str | None,
        elapsed_s: float,
    ) -> None:
        """Record how the run ended, then :meth:`compact` its target and entity."""
        check_status(status, RUN_STATUSES, "run")
        now = _now()
        self._update_run(
            run_id,
            status=status,
            finished_at=now,
            heartbeat_at=now,
            counts=json.dumps(counts, sort_keys=True),
            rejects_path=rejects_path,
            elapsed_s=elapsed_s,
        )
        with self._begin() as conn:
            scope = conn.execute(
                sa.select(runs.c.target_id, runs.c.entity).where(runs.c.run_id == run_id)
            ).one()
        self.compact(target_id=scope.target_id, entity=scope.entity)

    def _update_run(self, run_id: int, **values: object) -> None:
        with self._begin() as conn:
            result = conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(values))
        if result.rowcount == 0:
            raise LedgerError(f"run ledger at {self.url_for_display} has no run {run_id}")

    def abandon_unfinished(self, *, job: str, target_id: str, entity: str) -> list[int]:
        """Mark runs of this job, target and entity still 'running' as 'crashed' and their
        pending batches 'abandoned'; return those run ids, oldest first.

        Call it while holding the job's lock: a run that is still 'running' then died.
        """
        scope = (runs.c.job == job, runs.c.target_id == target_id, runs.c.entity == entity)
        now = _now()
        with self._begin() as conn:
            query = sa.select(runs.c.run_id).where(*scope, runs.c.status == "running")
            run_ids = list(conn.scalars(query.order_by(runs.c.run_id)))
            if run_ids:
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.run_id.in_(run_ids))
                    .values(status="crashed", finished_at=now)
                )
                conn.execute(
                    sa.update(batches)
                    .where(batches.c.run_id.in_(run_ids), batches.c.status == "pending")
                    .values(status="abandoned", done_at=now)
                )
        return run_ids

    def recent_runs(self, *, limit: int = 20, job: str | None = None) -> list[RunInfo]:
        """The newest runs first, optionally of one job only."""
        query = sa.select(runs).order_by(runs.c.run_id.desc()).limit(limit)
        if job is not None:
            query = query.where(runs.c.job == job)
        with self._begin() as conn:
            return [RunInfo.from_row(row) for row in conn.execute(query)]

    def run_info(self, run_id: int) -> RunInfo | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        return None if row is None else RunInfo.from_row(row)

    def run_batches(self, run_id: int) -> list[BatchInfo]:
        """The run's batches in the order they were sent."""
        query = (
            sa.select(batches)
            .where(batches.c.run_id == run_id)
            .order_by(batches.c.sent_at, batches.c.batch_id)
        )
        with self._begin() as conn:
            return [BatchInfo.from_row(row) for row in conn.execute(query)]

    def last_successful_run(self, *, job: str, target_id: str, entity: str) -> RunInfo | None:
        """The newest run of this job, target and entity that read its whole feed: ended
        'succeeded', or 'partial' (finished, with some rows rejected or failed)."""
        query = (
            sa.select(runs)
            .where(runs.c.job == job, runs.c.target_id == target_id, runs.c.entity == entity)
            .where(runs.c.status.in_(("succeeded", "partial")))
            .order_by(runs.c.run_id.desc())
            .limit(1)
        )
        with self._begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else RunInfo.from_row(row)

    # --- batches: recorded before sending, acknowledged after ------------------------------

    def batch_pending(
        self, run_id: int, *, batch_id: str, entity: str, item_count: int, byte_count: int
    ) -> None:
        """Record a batch about to be sent; recording the same batch again resets it."""
        values = {
            "run_id": run_id,
            "batch_id": batch_id,
            "entity": entity,
            "item_count": item_count,
            "byte_count": byte_count,
            "status": "pending",
            "attempts": 0,
            "sent_at": _now(),
        }
        reset = ("entity", "item_count", "byte_count", "status", "sent_at")
        with self._begin() as conn:
            conn.execute(upsert(conn.dialect, batches, reset).values(values))

    def batch_done(
        self,
        run_id: int,
        *,
        batch_id: str,
        status: BatchStatus,
        http_status: int | None,
        attempts: int,
        elapsed_ms: float,
        error: str | None,
    ) -> None:
        check_status(status, BATCH_STATUSES, "batch")
        values = {
            "status": status,
            "http_status": http_status,
            "attempts": attempts,
            "elapsed_ms": elapsed_ms,
            "error": error,
            "done_at": _now(),
        }
        key = (batches.c.run_id == run_id, batches.c.batch_id == batch_id)
        with self._begin() as conn:
            result = conn.execute(sa.update(batches).where(*key).values(values))
        if result.rowcount == 0:
            raise LedgerError(
                f"run ledger at {self.url_for_display} has no batch {batch_id} in run {run_id}"
            )

    # --- record outcomes: one row of columns per batch -----------------------------------

    def acked_state(self, *, target_id: str, entity: str) -> tuple[np.ndarray, np.ndarray]:
        """(key_hash sorted ascending, content_hash aligned), int64 arrays, of the records
        whose last outcome at the target was created/updated. A record whose last outcome
        failed is absent, so the next run resends it."""
        with self._begin() as conn:
            return load_acked_state(conn, target_id=target_id, entity=entity)

    def outcome_blocks(
        self, *, target_id: str, entity: str
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(key hashes, content hashes, status codes) of every outcome row at the target, in
        the order they apply, one row at a time (see :meth:`acked_state`): for readers that
        must not hold a big scope whole. Codes index ``RECORD_STATUSES``."""
        with self._begin() as conn:
            yield from outcome_blocks(conn, target_id=target_id, entity=entity)

    def outcome_total(self, *, target_id: str, entity: str) -> int:
        """How many record outcomes the ledger holds at the target (repeats included)."""
        with self._begin() as conn:
            return outcome_total(conn, target_id=target_id, entity=entity)

    def record_outcomes(
        self,
        run_id: int,
        *,
        batch_id: str,
        target_id: str,
        entity: str,
        external_ids: list[str],
        key_hashes: np.ndarray,
        content_hashes: np.ndarray,
        statuses: list[RecordStatus],
        messages: list[str | None],
    ) -> None:
        """Store one batch's record outcomes, as one row, after everything recorded before.

        created/updated make the content hash the record's acknowledged state; failed
        keeps the record out of :meth:`acked_state` until a later success, so the next run
        resends it. Raises ValueError for columns of different lengths or an unknown status.
        """
        columns = encode_outcomes(
            external_ids=external_ids,
            key_hashes=key_hashes,
            content_hashes=content_hashes,
            statuses=statuses,
            messages=messages,
        )
        if columns is None:
            return
        with self._begin() as conn:
            write_outcomes(
                conn,
                self._statements,
                columns,
                run_id=run_id,
                batch_id=batch_id,
                target_id=target_id,
                entity=entity,
                now=_now(),
            )

    def record_history(
        self, external_id: str, *, target_id: str | None = None, limit: int = 50
    ) -> list[RecordEvent]:
        """The record's outcomes, newest first, each with its run's job and target label.

        Outcomes of runs that :meth:`compact` folded appear as one snapshot event.
        """
        with self._begin() as conn:
            events = find_events(conn, external_id, target_id)
        return events[::-1][:limit]

    def record_state(self, external_id: str, *, target_id: str | None = None) -> list[RecordState]:
        """The record's latest state at each target and entity it was sent to."""
        with self._begin() as conn:
            return latest_states(find_events(conn, external_id, target_id))

    def compact(self, *, target_id: str, entity: str, keep_runs: int = KEEP_RUNS) -> int:
        """Fold the outcomes of all but the newest ``keep_runs`` runs at this target and
        entity into snapshot rows, once they hold more than twice as many outcomes as
        distinct records; return the number of outcome rows folded (0: nothing to do).

        :meth:`acked_state` and :meth:`record_state` are unchanged by it, but
        :meth:`record_history` then shows those older outcomes only as the snapshot's
        entry per record. Called by :meth:`finish_run`; cheap when there is nothing to do.
        """
        with self._begin() as conn:
            return compact_scope(conn, target_id=target_id, entity=entity, keep_runs=keep_runs)

    # --- watermarks for incremental reads ----------------------------------------------

    def get_watermark(self, *, job: str, target_id: str) -> str | None:
        w = watermarks
        query = sa.select(w.c.value).where(w.c.job == job, w.c.target_id == target_id)
        with self._begin() as conn:
            return conn.scalar(query)

    def set_watermark(self, *, job: str, target_id: str, value: str) -> None:
        values = {"job": job, "target_id": target_id, "value": value, "updated_at": _now()}
        with self._begin() as conn:
            conn.execute(upsert(conn.dialect, watermarks, ("value", "updated_at")).values(values))
