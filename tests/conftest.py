"""Fixtures shared by every test module: real database servers, when this machine has them.

PostgreSQL and MariaDB tests skip on a machine without the servers, but fail when
``NYMBLE_REQUIRE_SERVICES=1`` (set by ``.ci/run``) says CI promises them.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("NYMBLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("NYMBLE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _services_required() -> bool:
    return os.environ.get("NYMBLE_REQUIRE_SERVICES") == "1"


def _reachable_or_skip(url: str, name: str) -> sa.Engine:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver or network failure means "server not here"
        engine.dispose()
        if _services_required():
            pytest.fail(f"{name} is required (NYMBLE_REQUIRE_SERVICES=1) but unreachable: {exc}")
        pytest.skip(f"{name} not reachable at {url}: {exc}")
    return engine


@pytest.fixture
def pg_url():
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    engine = _reachable_or_skip(PG_URL, "PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def mysql_url():
    """A MariaDB/MySQL URL on a fresh database, dropped afterwards."""
    engine = _reachable_or_skip(MYSQL_URL, "MariaDB")
    db = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{db}`"))
    yield MYSQL_URL.rsplit("/", 1)[0] + f"/{db}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE `{db}`"))
    engine.dispose()


API_KEY = "test-key-0123456789"


@pytest.fixture
def emulator():
    """A fresh emulator on a free loopback port, one organization, no faults."""
    from pipelines.emulator import Emulator, EmulatorSettings

    with Emulator.start(EmulatorSettings(api_keys={API_KEY: "org_test"})) as emu:
        yield emu


@pytest.fixture
def api(emulator):
    """An HTTP client for reading the emulator's state in assertions."""
    import httpx

    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": API_KEY}) as client:
        yield client


@pytest.fixture(params=["disk", "memory"])
def state_on(request, monkeypatch) -> str:
    """Where a run's acknowledged state is held: on disk (as beyond ~2,000,000 outcomes in
    the ledger), found through the memo's windows and by key, or in memory (a smaller
    ledger). Both must answer alike. On disk, no feed counts as small (a small feed reads
    only its own keys, never the memo: test_ledger_state covers that way)."""
    if request.param == "disk":
        from pipelines.admit.ledger_state import LedgerState
        from pipelines.run import engine

        monkeypatch.setattr(LedgerState, "MEMORY_OUTCOMES", 0)
        monkeypatch.setattr(engine, "SMALL_FEED_ROWS", 0)
    return request.param
