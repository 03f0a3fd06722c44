"""Opening a ledger: workers that start at the same instant on a fresh database all succeed,
an existing ledger costs one statement, and a ledger from before a table existed is upgraded."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from pipelines.ledger import SCHEMA_VERSION, Ledger
from pipelines.ledger.schema import metadata

WORKERS = 8
RUN = dict(job="j", target_id="t", target_label="x", entity="product", source="s", full=False)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
        pytest.param("mysql_url", id="mariadb", marks=pytest.mark.services),
    ]
)
def fresh_url(request, tmp_path):
    """A database (PostgreSQL: a schema) with no ledger in it yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return request.getfixturevalue(request.param)


def tables_and_meta(url: str) -> tuple[set[str], list[tuple]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            rows = [tuple(r) for r in conn.execute(sa.text("SELECT name, value FROM nymble_meta"))]
    finally:
        engine.dispose()
    return names, rows


# Each worker loads everything first, then waits: "go" releases all of them at once.
WORKER = """
import sys
from pipelines.ledger import Ledger

print("ready", flush=True)
sys.stdin.readline()
with Ledger.connect(sys.argv[1]) as ledger:
    run_id = ledger.begin_run(job=f"job-{sys.argv[2]}", target_id="t", target_label="x",
                              entity="product", source="s", full=False)
print("opened", run_id, flush=True)
"""


def test_workers_started_at_the_same_instant_on_a_fresh_database_all_succeed(fresh_url):
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, fresh_url, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    try:
        assert [w.stdout.readline().strip() for w in workers] == ["ready"] * WORKERS
        for w in workers:  # released together, as close as pipe writes are
            w.stdin.write("go\n")
            w.stdin.flush()
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            w.kill()
    errors = [err for w, (_, err) in zip(workers, results, strict=True) if w.returncode]
    assert errors == []
    run_ids = sorted(int(out.split()[1]) for out, _ in results)
    assert run_ids == sorted(set(run_ids)) and len(run_ids) == WORKERS  # one run each
    names, rows = tables_and_meta(fresh_url)
    assert {t.name for t in metadata.sorted_tables} <= names
    assert rows == [("schema_version", str(SCHEMA_VERSION))]


def statements_of(engine: sa.Engine, action) -> list[str]:
    """The SQL ``action`` sends through ``engine``."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return sent


def test_an_existing_ledger_opens_with_one_statement_and_no_ddl(fresh_url):
    engine = sa.create_engine(fresh_url)
    try:
        Ledger(engine).begin_run(**RUN)  # creates it
        sent = statements_of(engine, lambda: Ledger(engine))
    finally:
        engine.dispose()
    assert len(sent) == 1
    assert sent[0].lstrip().upper().startswith("SELECT")
    assert "nymble_meta" in sent[0] and "nymble_held" in sent[0]  # every table is named


def test_a_ledger_from_before_the_lock_and_held_tables_is_upgraded(fresh_url):
    with Ledger.connect(fresh_url) as ledger:
        run_id = ledger.begin_run(**RUN)
        ledger.set_watermark(job="j", target_id="t", value="2024-05-01")
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:  # as a version-2 ledger made before these tables was
            conn.execute(sa.text("DROP TABLE nymble_held"))
            conn.execute(sa.text("DROP TABLE nymble_locks"))
    finally:
        engine.dispose()
    with Ledger.connect(fresh_url) as upgraded:
        assert upgraded.run_info(run_id).job == "j"
        assert upgraded.get_watermark(job="j", target_id="t") == "2024-05-01"
        upgraded.acquire_lock(job="j", target_id="t", holder="1@host").release()
    names, rows = tables_and_meta(fresh_url)
    assert {"nymble_held", "nymble_locks"} <= names
    assert rows == [("schema_version", str(SCHEMA_VERSION))]


def test_reading_commands_create_nothing_in_a_database_from_before_a_table(fresh_url):
    Ledger.connect(fresh_url).close()
    engine = sa.create_engine(fresh_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE nymble_held"))
    finally:
        engine.dispose()
    with Ledger.connect(fresh_url, create=False) as reader:
        assert reader.recent_runs() == []
    names, _ = tables_and_meta(fresh_url)
    assert "nymble_held" not in names
