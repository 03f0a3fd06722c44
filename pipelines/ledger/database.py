"""Building the ledger's engine from a URL, showing that URL safely, and the one place
where SQLAlchemy and driver errors become :class:`~pipelines.errors.LedgerError`.

A SQLite ledger opened with ``create=False`` (the commands that only read: ``runs``, ``why``)
is opened read-only by SQLite itself (``mode=ro``), so those commands work on a state
directory nobody may write, and cannot change the ledger even by mistake.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.drivers import extra_advice
from pipelines.errors import LedgerError, NoLedger
from pipelines.redact import scrub

__all__ = [
    "SUPPORTED_DIALECTS",
    "build_engine",
    "display_url",
    "opened_read_only",
    "sqlite_file",
    "translate_errors",
]

SUPPORTED_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")

_SQLITE_BUSY_MS = 30_000
_NOT_A_URL = "not a valid database URL (expected e.g. sqlite:///path/to/ledger.db)"
_LEDGER_SCHEMES = "sqlite:///path/to/ledger.db, postgresql+psycopg:// or mysql+pymysql://"
# What SQLite says when it may not write the file, or create its -wal/-shm beside it.
_SQLITE_REFUSALS = ("readonly", "read-only", "unable to open database file")
_NO_WRITE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def display_url(url: sa.URL) -> str:
    """The URL with its password replaced by ``***``: safe for logs and messages."""
    return url.render_as_string(hide_password=True)


def sqlite_file(url: sa.URL) -> Path | None:
    """The file of a SQLite URL, as SQLAlchemy opens it; None for servers, for an in-memory
    database and for a ``file:`` URI (whose own options are the user's to choose)."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else Path(os.path.abspath(database))


def opened_read_only(engine: sa.Engine) -> bool:
    """Whether ``engine`` is a SQLite engine that :func:`build_engine` opened read-only."""
    return sa.event.contains(engine, "do_connect", _open_read_only)


@contextmanager
def translate_errors(
    where: str,
    secret: str | None = None,
    *,
    reason: str | None = None,
    also: tuple[type[Exception], ...] = (),
    sqlite_path: Path | None = None,
    read_only: bool = False,
) -> Iterator[None]:
    """Re-raise SQLAlchemy, driver and file-system errors as LedgerError naming ``where``.

    ``secret`` (the URL's password) is scrubbed from the message as well as anything
    shaped like ``scheme://user:password@``, since drivers sometimes echo their DSN.
    ``reason`` replaces the error's own text where that text cannot be trusted; ``also``
    names further exception types to translate. ``sqlite_path`` (the ledger's SQLite file)
    lets a refused write say which file is read-only; ``read_only`` says the ledger was
    opened read-only on purpose, so a refusal is not the file's fault.
    """
    try:
        yield
    except (sa.exc.SQLAlchemyError, *also) as exc:
        text = reason or _reason(exc, secret)
        if sqlite_path is not None and _sqlite_refused(exc):
            text = _refusal_reason(sqlite_path, text, read_only)
        raise LedgerError(f"run ledger at {where}: {text}") from exc
    except OSError as exc:  # e.g. the SQLite file's folder cannot be created
        text = str(exc)
        if exc.errno in _NO_WRITE_ERRNOS and exc.filename:
            text = _read_only_reason(Path(exc.filename), exc.strerror or text)
        raise LedgerError(f"run ledger at {where}: {text}") from exc


def _reason(exc: Exception, secret: str | None) -> str:
    # The driver's own first line says what went wrong; SQLAlchemy's wrapper appends the
    # statement and its parameters, which are long and may hold record data.
    source = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    text = (str(source).strip().splitlines() or [type(source).__name__])[0]
    text = scrub(text, {})  # any URL's password the driver quoted
    return text.replace(secret, "***") if secret else text


def _sqlite_refused(exc: Exception) -> bool:
    if not isinstance(exc, sa.exc.OperationalError):
        return False
    text = str(exc.orig).lower()
    return any(refusal in text for refusal in _SQLITE_REFUSALS)


def _refusal_reason(path: Path, text: str, read_only: bool) -> str:
    cannot_open = "unable to open" in text
    if read_only and cannot_open:
        # A reader of a WAL file needs its -shm file, and may be unable to create it.
        return (
            f"{path} cannot be opened for reading ({text}): run this as the user that runs "
            f"the syncs (SQLite must read the file and create {path.name}-shm beside it)"
        )
    if read_only:
        return f"{text} (this command opened the ledger read-only)"
    if cannot_open and _refusing(path) is None:
        return text  # not a permission problem: SQLite's own words are all there is
    return _read_only_reason(path, text)


def _read_only_reason(path: Path, text: str) -> str:
    return (
        f"{_refusing(path) or path} is read-only ({text}): runs cannot record their work; "
        f"make {path} and the directory it is in writable (SQLite keeps its -wal and -shm "
        "files beside it), or point NYMBLE_SYNC_HOME or --ledger somewhere writable"
    )


def _refusing(path: Path) -> Path | None:
    """What refuses a write: the file if it is read-only, else its directory if that is."""
    if path.exists() and not os.access(path, os.W_OK):
        return path
    if path.parent.exists() and not os.access(path.parent, os.W_OK):
        return path.parent
    return None


def build_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine tuned for the ledger: SQLite files get WAL and a 30 s busy timeout,
    servers get pre-pinged pool connections. Raises LedgerError on a bad URL, an
    unsupported database or a driver that is not installed, and for a SQLite file that
    does not exist unless ``create``.

    Without ``create`` a SQLite file is opened read-only (see :func:`opened_read_only`);
    a server is opened as usual, and the caller simply creates nothing there.
    """
    # make_url() quotes the whole unparseable string in its error, password and all.
    # A bad port is a plain ValueError.
    with translate_errors("<the given URL>", reason=_NOT_A_URL, also=(ValueError,)):
        parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_DIALECTS:  # refused before loading a driver it would not use
        raise LedgerError(
            f"run ledger at {display_url(parsed)}: {backend} is not supported for the run "
            f"ledger; use {_LEDGER_SCHEMES}"
        )
    with translate_errors(display_url(parsed), parsed.password):
        if backend == "sqlite":
            return _sqlite_engine(parsed, create)
        engine = _create_engine(parsed, pool_pre_ping=True)
        if backend == "postgresql":
            sa.event.listen(engine, "connect", _postgresql_session)
        return engine


def _postgresql_session(dbapi_connection: Any, _record: Any) -> None:
    # As SQLite's synchronous=NORMAL: a commit outlives nymble-sync's crash; the server's own
    # crash may lose its last moments of ledger writes, which only makes the next run resend
    # those records (idempotent by externalId), never skip one. A batch costs three commits:
    # with an fsync each, one worker managed ~25 requests/s on a busy disk, ~65 without.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET synchronous_commit = off")
    finally:
        cursor.close()
    dbapi_connection.commit()


def _create_engine(url: sa.URL, **options: Any) -> sa.Engine:
    # SQLAlchemy imports the URL's driver here: a missing one is a setup problem to explain.
    try:
        return sa.create_engine(url, **options)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise LedgerError(f"run ledger at {display_url(url)}: {_driver_advice(url, exc)}") from exc


def _driver_advice(url: sa.URL, exc: Exception) -> str:
    # None: SQLite through a driver other than Python's own sqlite3
    advice = extra_advice(url.get_backend_name()) or f"use {_LEDGER_SCHEMES}"
    return f"cannot load the database driver for {url.drivername} ({_reason(exc, None)}); {advice}"


def _sqlite_engine(url: sa.URL, create: bool) -> sa.Engine:
    path = sqlite_file(url)
    if path is not None and not create and not path.exists():
        raise NoLedger(
            f"run ledger at {display_url(url)}: the file does not exist, so no run has been "
            "recorded there (is this the directory, NYMBLE_SYNC_HOME or ledger URL the runs use?)"
        )
    if path is not None and create:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = _create_engine(url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000})
    if path is not None and not create:
        # Read-only: no pragma either, since switching to WAL is a write.
        sa.event.listen(engine, "do_connect", _open_read_only)
    else:
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _open_read_only(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict) -> None:
    # Same file, same sqlite3 arguments, but through a URI that opens it read-only.
    cargs[0] = _read_only_uri(Path(cargs[0]))
    cparams["uri"] = True


def _read_only_uri(path: Path) -> str:
    uri = f"{path.as_uri()}?mode=ro"
    # A reader of a WAL database needs its -shm file, which it cannot create in a directory
    # it may not write. When nobody can write there and no writer left a -wal or journal,
    # the file cannot change while we read: SQLite may then skip locks and shared memory.
    return f"{uri}&immutable=1" if _unchangeable(path) else uri


def _unchangeable(path: Path) -> bool:
    if any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-journal")):
        return False
    directory = path.parent
    if os.access(directory, os.W_OK):
        return False
    # Refused even to root (immutable, or a read-only mount), or no write bit for anyone:
    # not merely refused to this user while the syncs' own user may still write.
    refused_to_root = getattr(os, "geteuid", lambda: -1)() == 0
    return refused_to_root or _read_only_mount(directory) or not directory.stat().st_mode & 0o222


def _read_only_mount(directory: Path) -> bool:
    statvfs = getattr(os, "statvfs", None)
    return bool(statvfs and statvfs(directory).f_flag & os.ST_RDONLY)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets `nymble-sync runs` read while a sync writes; NORMAL is durable enough
    # under WAL and makes each batch's commit cheap; foreign keys match the servers.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()
