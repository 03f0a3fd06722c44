"""Unattended runs fail loudly and clearly: a missing database driver is a configuration error
naming what to install, and the commands that only read work on a read-only state directory.

Everything goes through the real CLI. Read-only is made real where this machine allows it:
``chmod`` for an ordinary user, ``chattr +i`` for root (for whom ``chmod`` stops nothing); where
neither stops a write, the tests that need a refused write skip, and SQLite's own read-only mode
(``mode=ro``) is still checked to refuse every write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from pipelines.cli import main
from pipelines.errors import LedgerError
from pipelines.ledger import Ledger
from pipelines.run.resources import default_ledger_url

JOB = "mappings/products.yml"
SQL_JOB = "mappings/orders_sql.yml"
CREATED_SKU = "FST-10012-SV"  # sent and created by the sample's first run
PASSWORD = "secret"
PG_PSYCOPG2 = f"postgresql+psycopg2://u:{PASSWORD}@127.0.0.1/test"
ORACLE = f"oracle://u:{PASSWORD}@127.0.0.1/test"
POSTGRES_ADVICE = (
    "install the PostgreSQL extra: pip install 'nymble-sync[postgres]' "
    "(driver psycopg 3; use a URL starting postgresql+psycopg://)"
)
MYSQL_ADVICE = (
    "install the MySQL extra: pip install 'nymble-sync[mysql]' "
    "(driver PyMySQL; use a URL starting mysql+pymysql://)"
)


def cli(state: Path, *args: str, **env: str) -> Result:
    env = {"NYMBLE_SYNC_HOME": str(state), "NYMBLE_LEDGER_URL": None, **env}
    return CliRunner(env=env).invoke(main, list(args))


def assert_exit(result: Result, code: int) -> str:
    """The command ended with ``code`` by itself, printing no traceback; returns its output."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.output


# --- a missing database driver ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            PG_PSYCOPG2,
            f"driver for postgresql+psycopg2 (No module named 'psycopg2'); {POSTGRES_ADVICE}",
        ),
        (f"mysql://u:{PASSWORD}@127.0.0.1/test", MYSQL_ADVICE),
        (ORACLE, "oracle is not supported for the run ledger; use sqlite:///"),
        (f"mssql+pyodbc://u:{PASSWORD}@h/db", "mssql is not supported for the run ledger"),
    ],
    ids=["postgresql-psycopg2", "mysql-mysqldb", "oracle", "mssql"],
)
@pytest.mark.parametrize(
    "args",
    [("runs",), ("why", CREATED_SKU), ("run", JOB, "--target", "local")],
    ids=["runs", "why", "run"],
)
def test_a_ledger_url_without_its_driver_exits_2_saying_what_to_install(
    tmp_path, url, expected, args
):
    output = assert_exit(cli(tmp_path, *args, NYMBLE_LEDGER_URL=url), 2)
    assert f"run ledger at {url.replace(PASSWORD, '***')}" in output
    assert expected in output
    assert PASSWORD not in output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            PG_PSYCOPG2,
            f"driver for postgresql+psycopg2 (No module named 'psycopg2'); {POSTGRES_ADVICE}",
        ),
        (f"mariadb://u:{PASSWORD}@h/erp", MYSQL_ADVICE.replace("mysql+", "mariadb+")),
        (
            ORACLE,
            "driver for oracle (No module named 'oracledb'); install the SQLAlchemy driver for "
            "oracle (oracledb), or use sqlite, postgresql+psycopg or mysql+pymysql",
        ),
        (f"snowflake://u:{PASSWORD}@h/erp", "install the SQLAlchemy driver for snowflake"),
    ],
    ids=["postgresql-psycopg2", "mariadb-mysqldb", "oracle", "unknown-dialect"],
)
def test_a_sql_source_url_without_its_driver_exits_2_saying_what_to_install(
    tmp_path, url, expected
):
    result = cli(tmp_path, "validate", SQL_JOB, ERP_DATABASE_URL=url)
    output = assert_exit(result, 2)
    assert "the URL in ERP_DATABASE_URL: cannot load the database driver" in output
    assert expected in output
    assert PASSWORD not in output


def test_doctor_reports_a_ledger_url_without_its_driver_as_a_failed_ledger(tmp_path):
    output = assert_exit(cli(tmp_path, "doctor", "--ledger", PG_PSYCOPG2), 2)
    first = output.splitlines()[0]
    assert first.startswith("✗ ledger") and POSTGRES_ADVICE in first
    assert PASSWORD not in output


# --- a read-only state directory ----------------------------------------------------------


def _make_read_only(*paths: Path) -> Callable[[], None]:
    """Make ``paths`` read-only as far as this machine allows; return how to undo it."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in paths}
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        return lambda: [path.chmod(mode) for path, mode in modes.items()]
    chattr = shutil.which("chattr")
    if chattr is None:
        return lambda: None
    names = [str(path) for path in paths]
    subprocess.run([chattr, "+i", *names], capture_output=True, check=False)
    # Undone whatever happened, or pytest could never remove its temporary directory.
    return lambda: subprocess.run([chattr, "-i", *names], capture_output=True, check=False)


def _writes_fail(directory: Path) -> bool:
    probe = directory / "probe"
    try:
        probe.touch()
    except OSError:
        return True
    probe.unlink()
    return False


def _snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Each file in ``directory`` (not below it): its content's digest and its mtime."""
    return {
        path.name: (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in directory.iterdir()
        if path.is_file()
    }


@pytest.fixture
def state(tmp_path) -> Path:
    """The state directory after one real run of the sample products job (6 rows rejected)."""
    home = tmp_path / "state"
    result = cli(home, "run", JOB, "--target", "local")
    assert_exit(result, 1)
    assert (home / "ledger.sqlite").is_file()
    assert not any((home / f"ledger.sqlite{suffix}").exists() for suffix in ("-wal", "-shm"))
    return home


@pytest.fixture
def read_only_state(state) -> Iterator[tuple[Path, bool]]:
    """The state directory and its ledger made read-only; the flag says whether writes there
    really fail on this machine."""
    undo = _make_read_only(state / "ledger.sqlite", state)
    try:
        yield state, _writes_fail(state)
    finally:
        undo()


def test_runs_show_and_why_read_a_read_only_ledger_without_changing_it(read_only_state):
    state, really_read_only = read_only_state
    before = _snapshot(state)

    listed = json.loads(assert_exit(cli(state, "runs", "--json"), 0))
    assert [(r["run_id"], r["counts"]["created"], r["status"]) for r in listed] == [
        (1, 1994, "partial")
    ]
    assert "1,994" in assert_exit(cli(state, "runs"), 0)
    shown = json.loads(assert_exit(cli(state, "runs", "show", "1", "--json"), 0))
    assert sum(b["items"] for b in shown["batches"]) == 1994
    assert "rejects file" in assert_exit(cli(state, "runs", "show", "1"), 0)
    story = json.loads(assert_exit(cli(state, "why", CREATED_SKU, "--json"), 0))
    assert [(e["run_id"], e["status"]) for e in story["events"]] == [(1, "created")]
    assert "last sent" in assert_exit(cli(state, "why", CREATED_SKU), 0)

    after = _snapshot(state)
    assert after["ledger.sqlite"] == before["ledger.sqlite"]  # same bytes, same mtime
    if really_read_only:
        assert after == before  # nothing else either: no -wal or -shm file left beside it


def test_a_ledger_opened_for_reading_refuses_every_write(state):
    # SQLite's own read-only mode: a real guarantee even where root could write the file.
    ledger_file = state / "ledger.sqlite"
    before = _snapshot(state)["ledger.sqlite"]
    with Ledger.connect(default_ledger_url(state), create=False) as ledger:
        assert ledger.read_only
        assert [run.run_id for run in ledger.recent_runs()] == [1]
        with pytest.raises(LedgerError, match="readonly database.*opened the ledger read-only"):
            ledger.set_watermark(job="products", target_id="t", value="2024-01-01")
        with pytest.raises(LedgerError, match="readonly database"):
            ledger.acquire_lock(job="products", target_id="t", holder="test")
    assert _snapshot(state)["ledger.sqlite"] == before
    assert ledger_file.stat().st_size > 0


def test_reading_a_database_without_a_ledger_creates_nothing(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    output = assert_exit(cli(tmp_path, "runs", "--ledger", f"sqlite:///{empty}"), 2)
    assert "there is no ledger in this database" in output
    assert empty.stat().st_size == 0


def _needs_real_read_only(really_read_only: bool) -> None:
    if not really_read_only:
        pytest.skip("neither chmod nor chattr stops a write here (root without chattr)")


def test_a_run_on_a_read_only_ledger_exits_2_naming_the_path(read_only_state):
    state, really_read_only = read_only_state
    _needs_real_read_only(really_read_only)
    before = _snapshot(state)
    output = assert_exit(cli(state, "run", JOB, "--target", "local"), 2)
    ledger_file = state / "ledger.sqlite"
    assert f"run ledger at sqlite:///{ledger_file}" in output
    assert "is read-only" in output and "runs cannot record their work" in output
    assert f"make {ledger_file} and the directory it is in writable" in output
    assert _snapshot(state) == before


def test_a_run_whose_state_directory_cannot_be_created_exits_2(read_only_state):
    state, really_read_only = read_only_state
    _needs_real_read_only(really_read_only)
    output = assert_exit(cli(state / "below", "run", JOB, "--target", "local"), 2)
    assert f"{state} is read-only" in output and "runs cannot record their work" in output


def test_doctor_on_a_read_only_state_directory_reports_it_with_exit_2(read_only_state):
    state, really_read_only = read_only_state
    _needs_real_read_only(really_read_only)
    output = assert_exit(cli(state, "doctor"), 2)
    lines = output.splitlines()
    assert lines[0].startswith("✗ ledger") and "is read-only" in lines[0]
    assert f"make {state / 'ledger.sqlite'} and the directory it is in writable" in lines[0]
    # The local target's emulator keeps its data there too.
    assert lines[1].startswith("✗ target") and f"cannot keep its data in {state}" in lines[1]


# --- servers: reading creates nothing -----------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("server", ["pg_url", "mysql_url"], ids=["postgresql", "mariadb"])
def test_reading_an_empty_server_database_creates_no_ledger(tmp_path, request, server):
    url = request.getfixturevalue(server)
    output = assert_exit(cli(tmp_path, "runs", "--ledger", url), 2)
    assert "there is no ledger in this database" in output
    engine = sa.create_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
