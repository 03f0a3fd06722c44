"""The run ledger on real SQLite, PostgreSQL and MariaDB databases."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines.errors import LedgerError, LockHeld
from pipelines.ledger import SCHEMA_VERSION, Ledger
from pipelines.ledger.database import display_url
from pipelines.transform.serialize import key_hashes

INT64_MIN = int(np.iinfo(np.int64).min)  # -2**63
INT64_MAX = int(np.iinfo(np.int64).max)  # 2**63 - 1
RUN = dict(
    job="products-nightly",
    target_id="fp-target-a",
    target_label="https://api.example.test",
    entity="product",
    source="erp.csv",
    full=False,
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
        pytest.param("mysql_url", id="mariadb", marks=pytest.mark.services),
    ]
)
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/nested/ledger.db"  # the folder does not exist yet
    return request.getfixturevalue(request.param)


@pytest.fixture
def ledger(ledger_url):
    opened = Ledger.connect(ledger_url)
    yield opened
    opened.close()


def key_of(external_id):
    """The key hash the pipeline gives ``external_id``."""
    return int(key_hashes(pa.array([external_id]))[0])


def record(
    ledger,
    run_id,
    ids,
    statuses,
    *,
    keys=None,
    target_id="fp-target-a",
    contents=None,
    messages=None,
    batch_id="b" * 32,
):
    """Record outcomes for ``ids``; key hashes default to the ids' own, content hashes to 0."""
    ledger.record_outcomes(
        run_id,
        batch_id=batch_id,
        target_id=target_id,
        entity="product",
        external_ids=list(ids),
        key_hashes=np.array([key_of(i) for i in ids] if keys is None else keys, dtype=np.int64),
        content_hashes=np.array([0] * len(ids) if contents is None else contents, np.int64),
        statuses=list(statuses),
        messages=list(messages or [None] * len(ids)),
    )


def acked(ledger, target_id="fp-target-a"):
    keys, contents = ledger.acked_state(target_id=target_id, entity="product")
    return keys.tolist(), contents.tolist()


def assert_utc(value):
    assert value is not None and value.utcoffset().total_seconds() == 0


# --- runs and batches -------------------------------------------------------------------


def test_run_lifecycle(ledger):
    run_id = ledger.begin_run(**RUN)
    started = ledger.run_info(run_id)
    assert (started.status, started.job, started.full, started.counts) == (
        "running",
        RUN["job"],
        False,
        {},
    )
    assert started.pid and started.host
    assert_utc(started.started_at)
    assert started.finished_at is None

    ledger.heartbeat(run_id)
    ledger.batch_pending(
        run_id, batch_id="a" * 32, entity="product", item_count=500, byte_count=123_456
    )
    ledger.batch_pending(run_id, batch_id="c" * 32, entity="product", item_count=7, byte_count=99)
    ledger.batch_done(
        run_id,
        batch_id="a" * 32,
        status="acked",
        http_status=200,
        attempts=2,
        elapsed_ms=12.5,
        error=None,
    )
    ledger.batch_done(
        run_id,
        batch_id="c" * 32,
        status="failed",
        http_status=503,
        attempts=5,
        elapsed_ms=900.25,
        error="HTTP 503 after 5 attempts",
    )
    counts = {"read": 507, "rejected": 0, "created": 500, "failed": 7}
    ledger.finish_run(
        run_id, status="partial", counts=counts, rejects_path="/tmp/r.csv", elapsed_s=1.25
    )

    finished = ledger.run_info(run_id)
    assert (finished.status, finished.counts, finished.rejects_path, finished.elapsed_s) == (
        "partial",
        counts,
        "/tmp/r.csv",
        1.25,
    )
    assert finished.started_at <= finished.heartbeat_at <= finished.finished_at <= datetime.now(UTC)
    batches = ledger.run_batches(run_id)
    assert [(b.batch_id, b.status, b.http_status, b.attempts) for b in batches] == [
        ("a" * 32, "acked", 200, 2),
        ("c" * 32, "failed", 503, 5),
    ]
    assert (batches[0].item_count, batches[0].byte_count, batches[0].elapsed_ms) == (
        500,
        123_456,
        12.5,
    )
    assert batches[1].error == "HTTP 503 after 5 attempts"
    assert_utc(batches[0].done_at)


def test_recent_and_last_successful_runs(ledger):
    first = ledger.begin_run(**RUN)
    ledger.finish_run(first, status="succeeded", counts={}, rejects_path=None, elapsed_s=1.0)
    other_job = ledger.begin_run(**{**RUN, "job": "customers"})
    failed = ledger.begin_run(**RUN)
    ledger.finish_run(failed, status="failed", counts={}, rejects_path=None, elapsed_s=1.0)

    assert [r.run_id for r in ledger.recent_runs()] == [failed, other_job, first]
    assert [r.run_id for r in ledger.recent_runs(limit=1)] == [failed]
    assert [r.run_id for r in ledger.recent_runs(job=RUN["job"])] == [failed, first]
    last = ledger.last_successful_run(job=RUN["job"], target_id=RUN["target_id"], entity="product")
    assert last.run_id == first
    assert (
        ledger.last_successful_run(job="customers", target_id=RUN["target_id"], entity="product")
        is None
    )
    assert ledger.run_info(10_000) is None


def test_abandon_unfinished_marks_crashed_and_abandoned(ledger):
    crashed = ledger.begin_run(**RUN)
    ledger.batch_pending(crashed, batch_id="1" * 32, entity="product", item_count=1, byte_count=1)
    ledger.batch_pending(crashed, batch_id="2" * 32, entity="product", item_count=1, byte_count=1)
    ledger.batch_done(
        crashed,
        batch_id="1" * 32,
        status="acked",
        http_status=200,
        attempts=1,
        elapsed_ms=1.0,
        error=None,
    )
    finished = ledger.begin_run(**RUN)
    ledger.finish_run(finished, status="succeeded", counts={}, rejects_path=None, elapsed_s=1.0)
    other_target = ledger.begin_run(**{**RUN, "target_id": "fp-target-b"})

    assert ledger.abandon_unfinished(
        job=RUN["job"], target_id=RUN["target_id"], entity="product"
    ) == [crashed]

    run = ledger.run_info(crashed)
    assert run.status == "crashed"
    assert_utc(run.finished_at)
    assert {b.batch_id: b.status for b in ledger.run_batches(crashed)} == {
        "1" * 32: "acked",
        "2" * 32: "abandoned",
    }
    assert ledger.run_info(finished).status == "succeeded"
    assert ledger.run_info(other_target).status == "running"
    assert (
        ledger.abandon_unfinished(job=RUN["job"], target_id=RUN["target_id"], entity="product")
        == []
    )


def test_batch_pending_again_resets_the_batch(ledger):
    run_id = ledger.begin_run(**RUN)
    ledger.batch_pending(run_id, batch_id="d" * 32, entity="product", item_count=3, byte_count=30)
    ledger.batch_done(
        run_id,
        batch_id="d" * 32,
        status="failed",
        http_status=None,
        attempts=1,
        elapsed_ms=5.0,
        error="timeout",
    )
    ledger.batch_pending(run_id, batch_id="d" * 32, entity="product", item_count=3, byte_count=30)
    [batch] = ledger.run_batches(run_id)
    assert batch.status == "pending"


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda led, r: led.heartbeat(r + 1), id="heartbeat"),
        pytest.param(
            lambda led, r: led.finish_run(
                r + 1, status="failed", counts={}, rejects_path=None, elapsed_s=0.0
            ),
            id="finish_run",
        ),
        pytest.param(
            lambda led, r: led.batch_done(
                r,
                batch_id="nope",
                status="acked",
                http_status=200,
                attempts=1,
                elapsed_ms=1.0,
                error=None,
            ),
            id="batch_done",
        ),
    ],
)
def test_unknown_run_or_batch_is_a_ledger_error(ledger, call):
    run_id = ledger.begin_run(**RUN)
    with pytest.raises(LedgerError, match="has no"):
        call(ledger, run_id)


def test_outcomes_of_an_unknown_run_are_a_ledger_error_and_roll_back(ledger):
    run_id = ledger.begin_run(**RUN)
    with pytest.raises(LedgerError, match="run ledger at .*: "):
        record(ledger, run_id + 1, ["A"], ["created"])
    assert ledger.record_state("A") == []
    assert acked(ledger) == ([], [])


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda led, r: led.finish_run(
                r, status="done", counts={}, rejects_path=None, elapsed_s=0.0
            ),
            id="run-status",
        ),
        pytest.param(
            lambda led, r: led.batch_done(
                r,
                batch_id="x",
                status="ok",
                http_status=200,
                attempts=1,
                elapsed_ms=1.0,
                error=None,
            ),
            id="batch-status",
        ),
        pytest.param(lambda led, r: record(led, r, ["A"], ["acked"]), id="record-status"),
        pytest.param(
            lambda led, r: record(led, r, ["A", "B"], ["created"], keys=[1]), id="record-lengths"
        ),
    ],
)
def test_caller_mistakes_are_value_errors(ledger, call):
    run_id = ledger.begin_run(**RUN)
    with pytest.raises(ValueError):
        call(ledger, run_id)


# --- record outcomes and the state derived from them ------------------------------------


def finish(ledger, run_id):
    ledger.finish_run(run_id, status="succeeded", counts={}, rejects_path=None, elapsed_s=1.0)


def outcome_rows(ledger_url):
    """(batch rows, snapshot rows) in the outcome table."""
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT batch_id FROM nymble_batch_outcomes")).scalars()
            batch_ids = list(rows)
    finally:
        engine.dispose()
    snapshots = batch_ids.count("snapshot")
    return len(batch_ids) - snapshots, snapshots


def test_acked_state_is_sorted_aligned_and_excludes_failed(ledger):
    run_id = ledger.begin_run(**RUN)
    record(
        ledger,
        run_id,
        ["C", "A", "F", "B"],
        ["created", "updated", "failed", "created"],
        keys=[30, -10, 5, 20],
        contents=[3, -1, 99, 2],
        messages=[None, None, "price must be positive", None],
    )
    assert acked(ledger) == ([-10, 20, 30], [-1, 2, 3])


def test_acked_state_of_an_empty_ledger(ledger):
    keys, contents = ledger.acked_state(target_id="nobody", entity="product")
    assert (keys.dtype, contents.dtype, keys.size, contents.size) == (np.int64, np.int64, 0, 0)


def test_an_empty_batch_records_nothing(ledger, ledger_url):
    record(ledger, ledger.begin_run(**RUN), [], [])
    assert outcome_rows(ledger_url) == (0, 0)


def test_last_outcome_wins_across_batches_and_runs(ledger):
    ids = ["A", "B", "C", "D"]
    first = ledger.begin_run(**RUN)
    record(ledger, first, ids, ["created", "created", "failed", "created"], contents=[1, 2, 3, 4])
    record(ledger, first, ["A"], ["updated"], contents=[11], batch_id="2" * 32)
    keys = sorted(key_of(i) for i in ids)
    by_key = {key_of(i): i for i in ids}

    def acked_ids():
        found, contents = acked(ledger)
        assert found == sorted(found)
        return {by_key[k]: c for k, c in zip(found, contents, strict=True)}

    assert acked_ids() == {"A": 11, "B": 2, "D": 4}
    second = ledger.begin_run(**RUN)
    record(ledger, second, ["B", "C", "A"], ["failed", "created", "failed"], contents=[22, 33, 12])
    assert acked_ids() == {"C": 33, "D": 4}
    third = ledger.begin_run(**RUN)
    # A record sent twice in one batch: the later position wins.
    record(ledger, third, ["B", "A", "A"], ["updated", "failed", "updated"], contents=[23, 0, 13])
    assert acked_ids() == {"A": 13, "B": 23, "C": 33, "D": 4}
    assert sorted(acked(ledger)[0]) == keys


def test_failed_record_later_acked_and_acked_record_later_failed(ledger):
    first = ledger.begin_run(**RUN)
    record(
        ledger,
        first,
        ["A", "B"],
        ["failed", "created"],
        contents=[10, 20],
        messages=["sku missing", None],
    )
    [state_a] = ledger.record_state("A")
    assert (state_a.status, state_a.last_error, state_a.last_run_id) == (
        "failed",
        "sku missing",
        first,
    )
    assert state_a.content_hash == 10  # never acknowledged: the content attempted
    assert acked(ledger) == ([key_of("B")], [20])

    second = ledger.begin_run(**RUN)
    record(
        ledger,
        second,
        ["A", "B"],
        ["created", "failed"],
        contents=[11, 21],
        messages=[None, "HTTP 422: bad price"],
    )
    assert acked(ledger) == ([key_of("A")], [11])
    [state_a] = ledger.record_state("A")
    assert (state_a.status, state_a.content_hash, state_a.last_error) == ("created", 11, None)
    assert state_a.key_hash == key_of("A")
    [state_b] = ledger.record_state("B")
    assert (state_b.status, state_b.last_error, state_b.last_run_id) == (
        "failed",
        "HTTP 422: bad price",
        second,
    )
    assert state_b.content_hash == 20  # what the API still holds
    assert_utc(state_b.updated_at)

    third = ledger.begin_run(**RUN)
    record(ledger, third, ["B"], ["updated"], contents=[22])
    assert acked(ledger) == sorted_pairs({key_of("A"): 11, key_of("B"): 22})


def sorted_pairs(content_by_key):
    keys = sorted(content_by_key)
    return keys, [content_by_key[k] for k in keys]


def test_int64_extremes_round_trip(ledger):
    keys = [INT64_MIN, -(2**62) - 12345, -1, 0, 1, 2**62 + 6789, INT64_MAX]
    contents = [INT64_MAX, INT64_MIN, 7, -7, INT64_MIN + 1, INT64_MAX - 1, -(2**40)]
    ids = [f"SKU-{i}" for i in range(len(keys))]
    run_id = ledger.begin_run(**RUN)
    # Shuffled on the way in, so sorting and alignment are both exercised.
    order = [3, 6, 0, 5, 1, 4, 2]
    record(
        ledger,
        run_id,
        [ids[i] for i in order],
        ["created"] * 7,
        keys=[keys[i] for i in order],
        contents=[contents[i] for i in order],
    )
    assert acked(ledger) == (keys, contents)
    record(ledger, run_id, ["SKU-0", "SKU-6"], ["failed", "updated"], keys=[INT64_MIN, INT64_MAX])
    assert acked(ledger) == (keys[1:], [*contents[1:-1], 0])
    record(ledger, run_id, ["X"], ["created"], contents=[INT64_MIN])
    [state] = ledger.record_state("X")
    assert (state.key_hash, state.content_hash) == (key_of("X"), INT64_MIN)


def test_state_is_scoped_per_target(ledger):
    run_a = ledger.begin_run(**RUN)
    record(ledger, run_a, ["A"], ["created"], target_id="fp-target-a")
    run_b = ledger.begin_run(**{**RUN, "target_id": "fp-target-b"})
    record(ledger, run_b, ["A"], ["failed"], target_id="fp-target-b", messages=["boom"])

    assert acked(ledger, "fp-target-a") == ([key_of("A")], [0])
    assert acked(ledger, "fp-target-b") == ([], [])
    assert [(s.target_id, s.status, s.last_error) for s in ledger.record_state("A")] == [
        ("fp-target-a", "created", None),
        ("fp-target-b", "failed", "boom"),
    ]
    assert [s.status for s in ledger.record_state("A", target_id="fp-target-b")] == ["failed"]
    assert ledger.record_state("A", target_id="nowhere") == []


def test_history_is_newest_first_with_run_details(ledger):
    first = ledger.begin_run(**RUN)
    record(
        ledger,
        first,
        ["A", "B"],
        ["failed", "created"],
        contents=[1, 2],
        messages=["bad sku", None],
        batch_id="1" * 32,
    )
    second = ledger.begin_run(
        **{**RUN, "job": "products-fix", "target_label": "https://other.test"}
    )
    record(ledger, second, ["A"], ["updated"], contents=[5], batch_id="2" * 32)
    other = ledger.begin_run(**{**RUN, "target_id": "fp-target-b"})
    record(ledger, other, ["A"], ["created"], target_id="fp-target-b", batch_id="3" * 32)

    history = ledger.record_history("A", target_id="fp-target-a")
    assert [(e.run_id, e.batch_id, e.status, e.message, e.content_hash) for e in history] == [
        (second, "2" * 32, "updated", None, 5),
        (first, "1" * 32, "failed", "bad sku", 1),
    ]
    assert (history[0].job, history[0].target_label) == ("products-fix", "https://other.test")
    assert (history[1].job, history[1].external_id, history[1].entity) == (
        RUN["job"],
        "A",
        "product",
    )
    assert_utc(history[0].at)
    assert history[0].event_id > history[1].event_id
    assert [e.run_id for e in ledger.record_history("A")] == [other, second, first]
    assert [e.run_id for e in ledger.record_history("A", limit=1)] == [other]
    assert ledger.record_history("nobody") == []


def test_another_id_with_the_same_key_hash_is_not_the_record(ledger):
    run_id = ledger.begin_run(**RUN)
    record(ledger, run_id, ["A", "imposter"], ["created", "failed"], keys=[key_of("A")] * 2)
    assert [(e.external_id, e.status) for e in ledger.record_history("A")] == [("A", "created")]
    assert [s.status for s in ledger.record_state("A")] == ["created"]


# --- compaction -----------------------------------------------------------------------------


def full_runs(ledger, outcomes_per_run):
    """One finished run per item of ``outcomes_per_run``: {id: (status, content)}; run ids."""
    run_ids = []
    for outcomes in outcomes_per_run:
        run_id = ledger.begin_run(**RUN)
        ids = list(outcomes)
        for lo in range(0, len(ids), 2):  # two records per batch
            part = ids[lo : lo + 2]
            record(
                ledger,
                run_id,
                part,
                [outcomes[i][0] for i in part],
                contents=[outcomes[i][1] for i in part],
                messages=[
                    f"{i} failed in run {run_id}" if outcomes[i][0] == "failed" else None
                    for i in part
                ],
                batch_id=f"{lo:032d}",
            )
        finish(ledger, run_id)
        run_ids.append(run_id)
    return run_ids


def test_compaction_keeps_state_and_folds_old_history(ledger, ledger_url):
    runs = full_runs(
        ledger,
        [
            {"A": ("created", 1), "B": ("created", 2), "C": ("failed", 3), "D": ("created", 4)},
            {"A": ("updated", 11), "B": ("failed", 12), "C": ("failed", 13), "D": ("failed", 14)},
            {"A": ("updated", 21), "B": ("failed", 22), "C": ("created", 23)},
            {"A": ("updated", 31), "C": ("updated", 33)},
        ],
    )
    before = acked(ledger)
    states = {i: ledger.record_state(i) for i in "ABCD"}
    assert ledger.compact(target_id="fp-target-a", entity="product", keep_runs=2) == 4
    assert acked(ledger) == before
    assert {i: ledger.record_state(i) for i in "ABCD"} == states
    assert states["D"][0].content_hash == 4  # the failure in run 2 kept run 1's content
    assert outcome_rows(ledger_url) == (3, 2)  # one snapshot row per origin run

    history = ledger.record_history("A")
    assert [(e.run_id, e.batch_id, e.content_hash) for e in history] == [
        (runs[3], "0" * 32, 31),
        (runs[2], "0" * 32, 21),
        (runs[1], "snapshot", 11),  # runs 1 and 2 folded: only the last outcome is left
    ]
    # A failure after an acknowledged outcome keeps both, so the content is not forgotten.
    assert [(e.status, e.content_hash, e.message) for e in ledger.record_history("D")] == [
        ("failed", 14, f"D failed in run {runs[1]}"),
        ("created", 4, None),
    ]
    assert {e.batch_id for e in ledger.record_history("D")} == {"snapshot"}

    # Compacting again folds the snapshot with the next run; a second time, nothing is left.
    full_runs(ledger, [{"A": ("updated", 41), "B": ("updated", 42)}])
    assert ledger.compact(target_id="fp-target-a", entity="product", keep_runs=1) == 5
    assert outcome_rows(ledger_url) == (1, 4)
    assert acked(ledger) == sorted_pairs({key_of("A"): 41, key_of("B"): 42, key_of("C"): 33})
    assert ledger.record_state("D") == states["D"]
    assert ledger.compact(target_id="fp-target-a", entity="product", keep_runs=1) == 0


def test_compaction_waits_for_old_runs_and_redundant_outcomes(ledger, ledger_url):
    # Every run sends other records: nothing is redundant, nothing is folded.
    full_runs(ledger, [{"A": ("created", 1)}, {"B": ("created", 2)}, {"C": ("created", 3)}])
    assert ledger.compact(target_id="fp-target-a", entity="product", keep_runs=1) == 0
    assert ledger.compact(target_id="nowhere", entity="product", keep_runs=1) == 0
    with pytest.raises(ValueError, match="keep_runs"):
        ledger.compact(target_id="fp-target-a", entity="product", keep_runs=0)
    assert outcome_rows(ledger_url) == (3, 0)


def test_finish_run_compacts_beyond_a_month_of_runs(ledger, ledger_url):
    full_runs(ledger, [{"A": ("updated", n), "B": ("created", 1)} for n in range(30)])
    assert outcome_rows(ledger_url) == (30, 0)
    [last] = full_runs(ledger, [{"A": ("updated", 30), "B": ("created", 1)}])
    assert outcome_rows(ledger_url) == (30, 1)
    assert acked(ledger) == sorted_pairs({key_of("A"): 30, key_of("B"): 1})
    assert len(ledger.record_history("A", limit=100)) == 31
    assert ledger.record_history("A")[0].run_id == last


# --- locks: one run per job and target at a time ---------------------------------------------

LOCK = dict(job="products-nightly", target_id="fp-target-a")


@contextmanager
def raw(url):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def test_a_second_acquire_is_refused_naming_the_holder_and_since_when(ledger):
    first = ledger.acquire_lock(**LOCK, holder="111@host-a")
    assert first.took_over_from is None
    with pytest.raises(LockHeld) as refused:
        ledger.acquire_lock(**LOCK, holder="222@host-b")
    assert refused.value.exit_code == 5
    message = str(refused.value)
    assert "111@host-a" in message and "products-nightly" in message
    assert f"since {first.acquired_at:%Y-%m-%dT%H:%M}" in message and "try again later" in message

    run_id = ledger.begin_run(**RUN)  # the run is named in the lock once it has an id
    with pytest.raises(LockHeld, match=rf"111@host-a \(run {run_id}\)"):
        ledger.acquire_lock(**LOCK, holder="222@host-b")
    other = ledger.acquire_lock(job=LOCK["job"], target_id="fp-target-b", holder="222@host-b")
    other.release()
    first.release()


def test_release_then_acquire_again_and_close_releases(ledger, ledger_url):
    with ledger.acquire_lock(**LOCK, holder="111@host-a") as lock:
        lock.heartbeat()
    lock.release()  # twice is harmless
    ledger.acquire_lock(**LOCK, holder="222@host-b")
    ledger.close()
    with Ledger.connect(ledger_url) as reopened:
        reopened.acquire_lock(**LOCK, holder="333@host-c").release()


def test_a_stale_lock_is_taken_over_and_its_old_holder_told(ledger, ledger_url):
    dead = ledger.acquire_lock(**LOCK, holder="111@host-a")
    ledger.begin_run(**RUN)
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    with raw(ledger_url) as conn:
        conn.execute(sa.text("UPDATE nymble_locks SET heartbeat_at = :t"), {"t": long_ago})

    taker = ledger.acquire_lock(**LOCK, holder="222@host-b", stale_after_s=120)
    assert taker.took_over_from is not None and taker.took_over_from.startswith("111@host-a")

    with pytest.raises(LockHeld, match="was lost .*222@host-b holds it now"):
        dead.heartbeat()
    dead.release()  # deletes nothing: the row is the taker's now
    with pytest.raises(LockHeld, match="222@host-b"):
        ledger.acquire_lock(**LOCK, holder="333@host-c")
    taker.release()


def test_a_lock_lost_while_running_stops_the_run_at_its_next_heartbeat(ledger, ledger_url):
    lock = ledger.acquire_lock(**LOCK, holder="111@host-a", stale_after_s=0.4)
    run_id = ledger.begin_run(**RUN)
    with raw(ledger_url) as conn:  # as a takeover would leave it
        conn.execute(sa.text("UPDATE nymble_locks SET token = 'someone-else', holder = 'x@y'"))
    deadline = time.monotonic() + 10
    with pytest.raises(LockHeld, match="lost .x@y .*holds it now"):  # the keepalive thread noticed
        while time.monotonic() < deadline:
            ledger.heartbeat(run_id)
            time.sleep(0.05)
    lock.release()


def test_the_keepalive_thread_keeps_a_slow_run_s_lock(ledger):
    lock = ledger.acquire_lock(**LOCK, holder="111@host-a", stale_after_s=0.4)
    time.sleep(1.0)  # longer than stale_after_s, with no heartbeat from the run itself
    with pytest.raises(LockHeld):
        ledger.acquire_lock(**LOCK, holder="222@host-b", stale_after_s=0.4)
    lock.release()


def test_a_ledger_from_before_locks_gets_the_lock_table(ledger, ledger_url):
    ledger.close()
    with raw(ledger_url) as conn:
        conn.execute(sa.text("DROP TABLE nymble_locks"))
    with Ledger.connect(ledger_url) as reopened:
        reopened.acquire_lock(**LOCK, holder="111@host-a").release()


RACER = """
import sys
from pipelines.errors import LockHeld
from pipelines.ledger import Ledger

with Ledger.connect(sys.argv[1]) as ledger:
    print("ready", flush=True)
    sys.stdin.readline()  # every racer is connected: go
    try:
        lock = ledger.acquire_lock(job="race", target_id="t", holder=f"racer-{sys.argv[2]}")
    except LockHeld:
        print("refused", flush=True)
    else:
        print("won", flush=True)
        sys.stdin.readline()  # hold it until every racer has tried
        lock.release()
"""


def test_processes_racing_for_one_lock_exactly_one_wins(ledger, ledger_url):
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, ledger_url, str(i)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        assert [racer.stdout.readline().strip() for racer in racers] == ["ready"] * 4
        for racer in racers:  # released together, as close as two pipe writes are
            racer.stdin.write("go\n")
            racer.stdin.flush()
        answers = sorted(racer.stdout.readline().strip() for racer in racers)
        assert answers == ["refused", "refused", "refused", "won"]
    finally:
        for racer in racers:
            racer.communicate("done\n", timeout=60)
    assert [racer.returncode for racer in racers] == [0] * 4


# --- watermarks, schema, errors -------------------------------------------------------------


def test_watermark_get_and_set(ledger):
    assert ledger.get_watermark(job="j", target_id="t1") is None
    ledger.set_watermark(job="j", target_id="t1", value="2024-05-01T00:00:00Z")
    ledger.set_watermark(job="j", target_id="t2", value="other")
    ledger.set_watermark(job="j", target_id="t1", value="2024-06-01T00:00:00Z")
    assert ledger.get_watermark(job="j", target_id="t1") == "2024-06-01T00:00:00Z"
    assert ledger.get_watermark(job="j", target_id="t2") == "other"
    assert ledger.get_watermark(job="k", target_id="t1") is None


def test_reopening_keeps_data_and_one_schema_version(ledger, ledger_url):
    run_id = ledger.begin_run(**RUN)
    with Ledger.connect(ledger_url) as again:
        assert again.run_info(run_id).run_id == run_id
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT name, value FROM nymble_meta")).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [("schema_version", str(SCHEMA_VERSION))]


@pytest.mark.parametrize(
    ("version", "advice"),
    [("999", "upgrade nymble-sync"), ("1", "move the old ledger aside")],
    ids=["newer", "older"],
)
def test_other_schema_version_is_refused(ledger, ledger_url, version, advice):
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE nymble_meta SET value = :v WHERE name = 'schema_version'"),
                {"v": version},
            )
        with pytest.raises(LedgerError, match=f"schema version {version}\\b.*{advice}"):
            Ledger(engine)
    finally:
        engine.dispose()


def test_version_1_ledger_is_refused_and_left_untouched(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:  # what the first nymble-sync left behind, in short
            conn.exec_driver_sql("CREATE TABLE nymble_meta (name TEXT PRIMARY KEY, value TEXT)")
            conn.exec_driver_sql("INSERT INTO nymble_meta VALUES ('schema_version', '1')")
            conn.exec_driver_sql("CREATE TABLE nymble_record_state (external_id TEXT)")
        with pytest.raises(LedgerError, match="version 1 .* move the old ledger aside"):
            Ledger.connect(url)
        assert sorted(sa.inspect(engine).get_table_names()) == [
            "nymble_meta",
            "nymble_record_state",
        ]
    finally:
        engine.dispose()


def test_injected_engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/injected.db")
    try:
        ledger = Ledger(engine)
        run_id = ledger.begin_run(**RUN)
        assert ledger.run_info(run_id).status == "running"
        assert ledger.url_for_display == f"sqlite:///{tmp_path}/injected.db"
        ledger.close()
    finally:
        engine.dispose()


def test_sqlite_file_uses_wal(tmp_path):
    url = f"sqlite:///{tmp_path}/wal.db"
    with Ledger.connect(url) as ledger:
        assert ledger.url_for_display == url
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        finally:
            engine.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:s3cret@h/db", "postgresql+psycopg://u:***@h/db"),
        (
            "mysql+pymysql://root:s3cret@127.0.0.1:3306/ledger",
            "mysql+pymysql://root:***@127.0.0.1:3306/ledger",
        ),
        ("sqlite:////var/lib/nymble/ledger.db", "sqlite:////var/lib/nymble/ledger.db"),
    ],
    ids=["postgresql", "mysql", "sqlite-no-password"],
)
def test_display_url_hides_the_password(url, shown):
    assert display_url(sa.make_url(url)) == shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://u:s3cret@127.0.0.1:1/db",
            "postgresql+psycopg://u:***@127.0.0.1:1/db",
        ),
        ("mysql+pymysql://u:s3cret@127.0.0.1:1/db", "mysql+pymysql://u:***@127.0.0.1:1/db"),
        ("nosuchdb://u:s3cret@host/db", "nosuchdb://u:***@host/db"),
        ("postgresql+psycopg://u:s3cret@host:notaport/db", "not a valid database URL"),
        ("not a url u:s3cret@", "not a valid database URL"),
    ],
    ids=["postgresql-unreachable", "mysql-unreachable", "unknown-dialect", "bad-port", "garbage"],
)
def test_unusable_url_is_a_ledger_error_without_the_password(url, expected):
    with pytest.raises(LedgerError) as caught:
        Ledger.connect(url)
    assert expected in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_uncreatable_sqlite_folder_is_a_ledger_error(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(LedgerError, match="run ledger at sqlite"):
        Ledger.connect(f"sqlite:///{tmp_path}/taken/ledger.db")
