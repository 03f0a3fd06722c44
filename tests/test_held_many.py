"""`record_held` in batches: randomized runs against what the ledger must hold afterwards
(held again, held anew, given up, read and cleared, not read), on every ledger dialect, with
batches of a few rows so that every batch boundary is crossed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines.ledger import Ledger
from pipelines.ledger import held_records as module
from pipelines.ledger.held_columns import HeldColumns
from pipelines.ledger.held_records import held_key_hashes, record_held
from pipelines.ledger.schema import held

JOB, TARGET = "orders", "t1"
PAST = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
NOW = "now"  # stands for the time of the call in expected rows


@pytest.fixture(autouse=True)
def tiny_batches(monkeypatch):
    monkeypatch.setattr(module, "_ROWS", 3)
    monkeypatch.setattr(module, "_FETCH", 4)


def test_randomized_runs_on_sqlite(tmp_path):
    _check_seeds(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


@pytest.mark.services
def test_randomized_runs_on_postgresql(pg_url):
    _check_seeds(pg_url)


@pytest.mark.services
def test_randomized_runs_on_mariadb(mysql_url):
    _check_seeds(mysql_url)


def test_the_keys_held_and_those_past_the_policy_on_sqlite(tmp_path):
    _check_policy(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


@pytest.mark.services
def test_the_keys_held_and_those_past_the_policy_on_servers(pg_url, mysql_url):
    _check_policy(pg_url)
    _check_policy(mysql_url)


def _check_policy(url: str) -> None:
    """The keys a run starts from, and those its job's hold policy no longer waits for (as
    ``HoldPolicy.expired`` says: runs >= max_runs, or held for max_age or longer)."""
    with Ledger.connect(url) as ledger:
        old = PAST
        recent = datetime.now(UTC) - timedelta(hours=1)
        _seed(ledger, {1: _row(1, 1, first=recent), 2: _row(2, 3, first=recent),
                       3: _row(3, 1, first=old), 4: _row(4, 1, first=recent, given_up=recent),
                       5: _row(5, 9, job="other")})  # fmt: skip
        every, expired = held_key_hashes(ledger, job=JOB, target_id=TARGET)
        assert every.tolist() == [1, 2, 3, 4] and expired.tolist() == [4]
        _, expired = held_key_hashes(ledger, job=JOB, target_id=TARGET, max_runs=3)
        assert expired.tolist() == [2, 4]
        _, expired = held_key_hashes(
            ledger, job=JOB, target_id=TARGET, max_runs=5, max_age=timedelta(days=1)
        )
        assert expired.tolist() == [3, 4]


def _check_seeds(url: str) -> None:
    with Ledger.connect(url) as ledger:
        for seed in range(6):
            _check_one(ledger, random.Random(seed), run_id=seed + 10)


def _check_one(ledger: Ledger, rnd: random.Random, run_id: int) -> None:
    """One run over a random ledger: every kind of record, one record held twice, texts
    longer than their columns, a record of another job that must not move."""
    _clear(ledger)
    keys = list({rnd.randint(-(2**62), 2**62) for _ in range(60)})
    rnd.shuffle(keys)
    before = {k: _row(k, rnd.randint(1, 4)) for k in keys[:36]}
    for k in keys[30:36]:
        before[k]["given_up_at"] = PAST  # given up by an earlier run
    other = _row(keys[0], 7, job="other job")
    _seed(ledger, before, extra=[other])
    pool = list(before)
    held_again = rnd.sample(pool, 14)
    new = keys[36:50]
    given_up = rnd.sample(pool, 8) + keys[50:53]  # three the ledger never held
    read = pool[:24] + held_again + keys[53:]  # some read and neither held nor given up
    waiting = [*held_again, *new]
    rnd.shuffle(waiting)
    waiting.append(waiting[0])  # held twice in one run: the last hold counts
    holds = [_hold(rnd, k, i) for i, k in enumerate(waiting)]
    columns = HeldColumns()
    start = 0
    while start < len(holds):
        size = rnd.randint(1, 7)
        _append(columns, holds[start : start + size])
        start += size

    expected = _expected(before, holds, set(given_up), set(read), run_id)
    record_held(
        ledger,
        job=JOB,
        target_id=TARGET,
        run_id=run_id,
        waiting=columns,
        given_up=np.array(given_up, np.int64),
        read=np.array(read, np.int64),
    )
    columns.close()
    assert _table(ledger, JOB) == expected
    assert _table(ledger, "other job") == {other["key_hash"]: other}


def _expected(before, holds, given_up, read, run_id) -> dict[int, dict]:
    """The table after the run, as record_held's contract says it."""
    rows = {k: dict(v) for k, v in before.items()}
    last = {h["key_hash"]: h for h in holds}
    for key in set(before) & read:
        if key not in last and key not in given_up:
            del rows[key]
    for key in set(before) & given_up:
        if rows[key]["given_up_at"] is None:
            rows[key].update(given_up_at=NOW, last_run_id=run_id)
    for key, h in last.items():
        texts = {
            "external_id": h["external_id"][:255],
            "rule": h["rule"],
            "value": None if h["value"] is None else h["value"][:1024],
            "watermark": h["watermark"],
            "last_held_at": NOW,
            "last_run_id": run_id,
        }
        if key in before:
            rows[key].update(texts, runs=rows[key]["runs"] + 1)
        else:
            rows[key] = {"job": JOB, "target_id": TARGET, "key_hash": key, "first_held_at": NOW,
                         "runs": 1, "given_up_at": None, **texts}  # fmt: skip
    return rows


def _hold(rnd: random.Random, key: int, i: int) -> dict:
    long = rnd.random() < 0.2
    return {
        "key_hash": key,
        "external_id": f"ORD-{i}-" + ("x" * 300 if long else ""),
        "rule": rnd.choice(["unknown_customer", "unknown_sku"]),
        "value": None if rnd.random() < 0.2 else f"line 1: SKU-{i}" + ("é" * 1100 if long else ""),
        "watermark": None if rnd.random() < 0.2 else f"2024-01-{1 + i % 28:02d} 10:00:00",
    }


def _append(columns: HeldColumns, holds: list[dict]) -> None:
    """One chunk's holds, a rule at a time as References gives them."""
    for rule in ("unknown_customer", "unknown_sku"):
        part = [h for h in holds if h["rule"] == rule]
        columns.append(
            np.array([h["key_hash"] for h in part], np.int64),
            pa.array([h["external_id"] for h in part], pa.string()),
            rule,
            pa.array([h["value"] for h in part], pa.string()),
            pa.array([h["watermark"] for h in part], pa.string()),
        )


def _row(key: int, runs: int, *, job=JOB, first=PAST, given_up=None) -> dict:
    return {"job": job, "target_id": TARGET, "key_hash": key, "external_id": f"E{key}",
            "rule": "unknown_customer", "value": f"C{key % 97}", "watermark": "2023-05-06",
            "first_held_at": first, "last_held_at": first, "runs": runs, "last_run_id": 3,
            "given_up_at": given_up}  # fmt: skip


def _seed(ledger: Ledger, rows: dict[int, dict], extra: list[dict] = ()) -> None:
    with ledger._begin() as conn:
        conn.execute(sa.insert(held), [*rows.values(), *extra])


def _clear(ledger: Ledger) -> None:
    with ledger._begin() as conn:
        conn.execute(sa.delete(held))


def _table(ledger: Ledger, job: str) -> dict[int, dict]:
    """The job's rows, each time the call wrote shown as NOW (seeded times are long past;
    the call writes one time)."""
    with ledger._begin() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.select(held).where(held.c.job == job))]
    stamps = {"first_held_at", "last_held_at", "given_up_at"}
    written = {r[c] for r in rows for c in stamps if r[c] is not None and r[c] > PAST}
    assert len(written) <= 1, written
    for r in rows:
        for c in stamps:
            if r[c] is not None and r[c] > PAST:
                r[c] = NOW
    return {r["key_hash"]: r for r in rows}
