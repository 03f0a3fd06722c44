"""One run per job and target at a time: a ``nymble_locks`` row, taken atomically, kept
alive by a heartbeat, and taken over once its holder has stopped beating (it died).

Taking the lock reads the row and writes it in one transaction that no other acquirer of
the same job and target can interleave with: SQLite's ``BEGIN IMMEDIATE`` takes the
database's write lock first, PostgreSQL a transaction-scoped advisory lock keyed by job and
target, MySQL/MariaDB a named ``GET_LOCK`` held until the transaction has committed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Self

import sqlalchemy as sa

from pipelines.errors import LockHeld, NymbleSyncError
from pipelines.ledger.schema import locks

__all__ = ["Lock", "acquire", "lock_holder"]

Translate = Callable[[], AbstractContextManager[None]]

_MYSQL_WAIT_S = 10  # acquiring takes milliseconds; this only bounds a wedged acquirer


def lock_holder() -> str:
    """``pid@host``: who holds a lock, as its messages show it."""
    return f"{os.getpid()}@{socket.gethostname()}"


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _who(row: Any) -> str:
    return row.holder if row.run_id is None else f"{row.holder} (run {row.run_id})"


class Lock:
    """A held lock on (job, target_id). Use it as a context manager, or call :meth:`release`.

    While held, a daemon thread heartbeats it every ``keepalive_s`` seconds, so a slow run
    keeps it; only a dead process stops beating. If another process took the lock over
    anyway (this one was stalled past ``stale_after_s``), :meth:`heartbeat` and
    :meth:`check` raise :class:`~pipelines.errors.LockHeld`: stop writing.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        translate: Translate,
        job: str,
        target_id: str,
        holder: str,
        token: str,
        acquired_at: datetime,
        took_over_from: str | None,
    ) -> None:
        self._engine, self._translate = engine, translate
        self.job, self.target_id, self.holder = job, target_id, holder
        self.acquired_at = acquired_at
        self.took_over_from = took_over_from  # "pid@host (run N)" of a dead holder, or None
        self._token = token
        self._released = False
        self._error: NymbleSyncError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return not self._released

    def _mine(self) -> tuple[sa.ColumnElement[bool], ...]:
        c = locks.c
        return (c.job == self.job, c.target_id == self.target_id, c.token == self._token)

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self._translate(), self._engine.begin() as conn:
            yield conn

    def heartbeat(self) -> None:
        """Mark the lock alive now; raise LockHeld if another process has taken it over."""
        with self._begin() as conn:
            result = conn.execute(sa.update(locks).where(*self._mine()).values(heartbeat_at=_now()))
        if result.rowcount == 0:
            raise self._lost()

    def attach_run(self, run_id: int) -> None:
        """Name the run holding the lock, so a refused acquirer is told which run it is."""
        with self._begin() as conn:
            conn.execute(sa.update(locks).where(*self._mine()).values(run_id=run_id))

    def check(self) -> None:
        """Raise what stopped the keepalive thread (the lock lost, the ledger unreachable)."""
        if self._error is not None:
            raise self._error

    def release(self) -> None:
        """Stop heartbeating and delete the lock row if it is still this holder's."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._begin() as conn:
            conn.execute(sa.delete(locks).where(*self._mine()))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def keep_alive(self, interval_s: float) -> None:
        """Heartbeat every ``interval_s`` seconds on a daemon thread until released."""
        self._thread = threading.Thread(
            target=self._beat, args=(interval_s,), name=f"lock-{self.job}", daemon=True
        )
        self._thread.start()

    def _beat(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.heartbeat()
            except NymbleSyncError as exc:  # kept for check(); a thread cannot raise to the run
                self._error = exc
                return

    def _lost(self) -> LockHeld:
        c = locks.c
        with self._begin() as conn:
            row = conn.execute(
                sa.select(locks).where(c.job == self.job, c.target_id == self.target_id)
            ).first()
        now_held = "nobody holds it now" if row is None else f"{_who(row)} holds it now"
        return LockHeld(
            f"the lock on job {self.job!r} at this target was lost ({now_held}): this process "
            "stopped heartbeating for too long and another run took over; stop this run"
        )


def acquire(
    engine: sa.Engine,
    translate: Translate,
    *,
    job: str,
    target_id: str,
    holder: str,
    stale_after_s: float,
) -> Lock:
    """Take the lock on (job, target_id), or raise LockHeld naming its holder and since when.

    A lock whose heartbeat is older than ``stale_after_s`` is taken over; the returned
    lock's ``took_over_from`` then names the dead holder. The lock heartbeats itself every
    ``stale_after_s / 4`` seconds until released.
    """
    token = uuid.uuid4().hex
    with translate(), engine.connect() as conn, _serialized(conn, job, target_id), conn.begin():
        _lock_scope(conn, job, target_id)
        now = _now()
        took_over_from = _take(conn, job, target_id, holder, token, now, stale_after_s)
    lock = Lock(
        engine=engine,
        translate=translate,
        job=job,
        target_id=target_id,
        holder=holder,
        token=token,
        acquired_at=now,
        took_over_from=took_over_from,
    )
    if not _in_memory(engine.url):  # another thread would see another, empty database
        lock.keep_alive(stale_after_s / 4)
    return lock


def _lock_scope(conn: sa.Connection, job: str, target_id: str) -> None:
    """Keep other acquirers of this job and target out until this transaction ends."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock, before reading
    elif conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_advisory_key(job, target_id))))


def _in_memory(url: sa.URL) -> bool:
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and (
        database in ("", ":memory:") or "mode=memory" in database
    )


def _take(
    conn: sa.Connection,
    job: str,
    target_id: str,
    holder: str,
    token: str,
    now: datetime,
    stale_after_s: float,
) -> str | None:
    """Insert or take over the row inside the caller's serialized transaction."""
    key = (locks.c.job == job, locks.c.target_id == target_id)
    row = conn.execute(sa.select(locks).where(*key).with_for_update()).first()
    values = {"holder": holder, "token": token, "run_id": None}
    values |= {"acquired_at": now, "heartbeat_at": now}
    if row is None:
        conn.execute(sa.insert(locks).values(job=job, target_id=target_id, **values))
        return None
    age = (now - row.heartbeat_at).total_seconds()
    if age <= stale_after_s and not _dead_here(row.holder):
        raise LockHeld(
            f"job {job!r} is already running at this target: locked by {_who(row)} since "
            f"{_stamp(row.acquired_at)}, last heartbeat {age:.0f} s ago; try again later "
            f"(a lock whose holder died is taken over: at once if it ran on this host, "
            f"otherwise once its heartbeat is {stale_after_s:.0f} s old)"
        )
    # Guarded by the old token too, though the serialization above already excludes a race.
    conn.execute(sa.update(locks).where(*key, locks.c.token == row.token).values(values))
    return _who(row)


def _dead_here(holder: str) -> bool:
    """Whether the holder ran on this host and its process is gone (killed, crashed): then
    its lock is taken over at once instead of after ``stale_after_s`` without heartbeats."""
    pid, _, host = holder.partition("@")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, but someone else's
        return False
    return False


@contextmanager
def _serialized(conn: sa.Connection, job: str, target_id: str) -> Iterator[None]:
    """On MySQL/MariaDB, hold a named lock across the acquiring transaction and its commit."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    name = f"nymble-lock-{_digest(job, target_id).hex()[:40]}"
    got = conn.scalar(sa.select(sa.func.get_lock(name, _MYSQL_WAIT_S)))
    conn.commit()
    if got != 1:
        raise LockHeld(f"job {job!r} at this target: another process is taking its lock")
    try:
        yield
    finally:
        conn.scalar(sa.select(sa.func.release_lock(name)))
        conn.commit()


def _digest(job: str, target_id: str) -> bytes:
    return hashlib.sha256(f"{job}\n{target_id}".encode()).digest()


def _advisory_key(job: str, target_id: str) -> int:
    return int.from_bytes(_digest(job, target_id)[:8], "big", signed=True)
