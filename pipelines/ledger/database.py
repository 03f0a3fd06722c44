"""Building the ledger's engine from a URL, showing that URL safely, and the one place
where SQLAlchemy and driver errors become :class:`~pipelines.errors.LedgerError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.errors import LedgerError

__all__ = ["SUPPORTED_DIALECTS", "build_engine", "display_url", "translate_errors"]

SUPPORTED_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb")

# user:password@ inside any URL-looking text, e.g. a driver message quoting its DSN.
_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.IGNORECASE)
_SQLITE_BUSY_MS = 30_000
_NOT_A_URL = "not a valid database URL (expected e.g. sqlite:///path/to/ledger.db)"


def display_url(url: sa.URL) -> str:
    """The URL with its password replaced by ``***``: safe for logs and messages."""
    return url.render_as_string(hide_password=True)


@contextmanager
def translate_errors(
    where: str,
    secret: str | None = None,
    *,
    reason: str | None = None,
    also: tuple[type[Exception], ...] = (),
) -> Iterator[None]:
    """Re-raise SQLAlchemy, driver and file-system errors as LedgerError naming ``where``.

    ``secret`` (the URL's password) is scrubbed from the message as well as anything
    shaped like ``scheme://user:password@``, since drivers sometimes echo their DSN.
    ``reason`` replaces the error's own text where that text cannot be trusted; ``also``
    names further exception types to translate.
    """
    try:
        yield
    except (sa.exc.SQLAlchemyError, *also) as exc:
        text = reason or _reason(exc, secret)
        raise LedgerError(f"run ledger at {where}: {text}") from exc
    except OSError as exc:  # e.g. the SQLite file's folder cannot be created
        raise LedgerError(f"run ledger at {where}: {exc}") from exc


def _reason(exc: Exception, secret: str | None) -> str:
    # The driver's own first line says what went wrong; SQLAlchemy's wrapper appends the
    # statement and its parameters, which are long and may hold record data.
    source = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    text = (str(source).strip().splitlines() or [type(source).__name__])[0]
    text = _CREDENTIALS.sub(r"\1***@", text)
    return text.replace(secret, "***") if secret else text


def build_engine(url: str, *, create: bool = True) -> sa.Engine:
    """An engine tuned for the ledger: SQLite files get WAL and a 30 s busy timeout,
    servers get pre-pinged pool connections. Raises LedgerError on a bad URL, and for a
    SQLite file that does not exist unless ``create``."""
    # make_url() quotes the whole unparseable string in its error, password and all.
    # A bad port is a plain ValueError.
    with translate_errors("<the given URL>", reason=_NOT_A_URL, also=(ValueError,)):
        parsed = sa.make_url(url)
    with translate_errors(display_url(parsed), parsed.password):
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, create)
        return sa.create_engine(parsed, pool_pre_ping=True)


def _sqlite_engine(url: sa.URL, create: bool) -> sa.Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file:")
    if not in_memory and not create and not Path(database).expanduser().exists():
        raise LedgerError(
            f"run ledger at {display_url(url)}: the file does not exist, so no run has been "
            "recorded there (is this the directory, NYMBLE_SYNC_HOME or ledger URL the runs use?)"
        )
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": _SQLITE_BUSY_MS / 1000})
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


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
