"""The acknowledged state a run reads, kept on disk: it answers exactly as the whole state
held in memory does, for keys near their place in the memo or far from it, for a small
feed that reads only its own keys, and through whole runs whose feed changed order."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import job_for, run_sync

from pipelines.admit import acked_build
from pipelines.admit.acked_state import AckedState
from pipelines.admit.ledger_state import LedgerState
from pipelines.admit.memo import ENTRY, SUFFIX, MemoFile
from pipelines.entities.products import product_prepare as prepare
from pipelines.extract import feed as pipeline
from pipelines.ledger import Ledger
from pipelines.run import engine

SAMPLE = Path("sample_data/products.csv")
SCOPE = {"target_id": "fp-target-a", "entity": "products"}


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
    ]
)
def ledger(request, tmp_path, monkeypatch):
    monkeypatch.setattr(LedgerState, "MEMORY_OUTCOMES", 0)  # the state on disk is compared
    url = f"sqlite:///{tmp_path}/ledger.db"
    if request.param != "sqlite":
        url = request.getfixturevalue(request.param)
    opened = Ledger.connect(url)
    yield opened
    opened.close()


def _history(ledger: Ledger, rng: np.random.Generator, keys: np.ndarray, runs: int) -> None:
    """``runs`` finished runs, each sending a random half of ``keys`` in batches, some
    outcomes failed; then compaction folds all but the last run into snapshot rows."""
    for _ in range(runs):
        run_id = ledger.begin_run(
            job="nightly", target_label="t", source="f.csv", full=False, **SCOPE
        )
        sent = rng.permutation(keys)[: len(keys) // 2]
        for n, part in enumerate(np.array_split(sent, 7)):
            statuses = rng.choice(["created", "updated", "failed"], len(part), p=[0.4, 0.4, 0.2])
            ledger.record_outcomes(
                run_id,
                batch_id=f"b{n}",
                external_ids=[f"K{k}" for k in part.tolist()],
                key_hashes=part,
                content_hashes=rng.integers(1, 2**62, len(part)),
                statuses=statuses.tolist(),
                messages=[None] * len(part),
                **SCOPE,
            )
        ledger.finish_run(run_id, status="succeeded", counts={}, rejects_path=None, elapsed_s=1)
    ledger.compact(keep_runs=1, **SCOPE)


def _memo(path: Path, keys: np.ndarray, tags: np.ndarray, hashes: np.ndarray) -> None:
    entries = np.empty(len(keys), ENTRY)
    entries["key"], entries["tag"], entries["hash"] = keys, tags, hashes
    entries.tofile(path)


def _both(ledger: Ledger, memo_path: Path, tmp_path: Path) -> tuple[AckedState, LedgerState]:
    memory = AckedState(*ledger.acked_state(**SCOPE))
    MemoFile(memo_path).load_into(memory)
    disk = LedgerState(ledger, **SCOPE)
    MemoFile(memo_path).load_into(disk)
    disk.open(directory=tmp_path / "work")
    return memory, disk


def _same_answers(memory: AckedState, disk: LedgerState, keys: np.ndarray) -> None:
    want, got = memory.locate(keys), disk.locate(keys)
    assert got.found.tolist() == want.found.tolist()
    assert got.hashes.tolist() == want.hashes.tolist()
    assert got.tags[got.found].tolist() == want.tags[want.found].tolist()
    assert got.memo[got.found].tolist() == want.memo[want.found].tolist()


def _hashes_as_acked(ledger: Ledger, keys: np.ndarray) -> np.ndarray:
    """The content hash the ledger holds acknowledged for each key (1 where none)."""
    acked = dict(zip(*(a.tolist() for a in ledger.acked_state(**SCOPE)), strict=True))
    return np.array([acked.get(k, 1) for k in keys.tolist()], np.int64)


def test_the_state_on_disk_answers_as_the_whole_state_in_memory(ledger, tmp_path, monkeypatch):
    monkeypatch.setattr(acked_build, "BUCKET_ENTRIES", 300)  # dozens of buckets
    rng = np.random.default_rng(11)
    keys = rng.integers(-(2**63), 2**63 - 1, 6_000, dtype=np.int64)
    _history(ledger, rng, keys, runs=3)
    # A memo in the order of a feed: most keys, some twice (the first entry counts), keys
    # the target never acknowledged, and entries whose content the ledger does not hold.
    strangers = rng.integers(-(2**63), 2**63 - 1, 200, dtype=np.int64)
    order = np.concatenate([rng.permutation(keys)[:5_000], strangers, keys[:50]])
    hashes = _hashes_as_acked(ledger, order)
    hashes[rng.random(len(order)) < 0.05] += 1
    path = tmp_path / "memo.rows"
    _memo(path, order, rng.integers(1, 2**62, len(order)), hashes)
    memory, disk = _both(ledger, path, tmp_path)
    assert len(disk) == len(memory) > 0
    for chunk in np.array_split(order, 40):  # in memo order: found in the window
        _same_answers(memory, disk, chunk)
    assert disk.from_memo > 3_000  # the entries the ledger backs (~2/3: the rest by key)
    for chunk in np.array_split(rng.permutation(np.concatenate([keys, strangers])), 9):
        _same_answers(memory, disk, chunk)  # any order: found by key
    _same_answers(memory, disk, np.array([0, keys[0], keys[0]], np.int64))
    _same_answers(memory, disk, np.empty(0, np.int64))


def test_a_key_far_from_its_place_in_the_memo_is_found_with_its_state(ledger, tmp_path):
    rng = np.random.default_rng(5)
    keys = rng.integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64)
    _history(ledger, rng, keys, runs=1)
    path = tmp_path / "memo.rows"
    _memo(path, keys, rng.integers(1, 2**62, len(keys)), _hashes_as_acked(ledger, keys))
    memory, disk = _both(ledger, path, tmp_path)
    # The feed's first chunk holds the memo's last rows, then its first ones: the window
    # is at the start for the first, far from the second.
    _same_answers(memory, disk, keys[-500:])
    assert disk.from_memo == 0
    _same_answers(memory, disk, keys[:500])
    _same_answers(memory, disk, keys[10_000:10_100][::-1])


def test_a_small_feed_reads_only_its_own_keys(ledger, tmp_path):
    rng = np.random.default_rng(8)
    keys = rng.integers(-(2**63), 2**63 - 1, 30_000, dtype=np.int64)
    _history(ledger, rng, keys, runs=2)
    memory = AckedState(*ledger.acked_state(**SCOPE))
    feed = np.sort(keys[:100])
    disk = LedgerState(ledger, **SCOPE)
    disk.open(directory=tmp_path, only=feed)
    assert disk.entries <= 100  # what it holds: the feed's keys the target knows
    _same_answers(memory, disk, feed[::-1])
    # A key the feed did not name (a row the peek missed) reads the whole state: right still.
    _same_answers(memory, disk, keys[-3:])
    assert disk.entries == len(memory)


# --- whole runs ------------------------------------------------------------------------------


def _rows(source: Path) -> list[list[str]]:
    with source.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _write(source: Path, rows: list[list[str]]) -> None:
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


def test_a_feed_in_another_order_sends_exactly_the_changed_rows(
    emulator, tmp_path, monkeypatch, state_on
):
    """Small chunks, so the memo's window is a small part of the feed: with its halves
    swapped, every row is found far from its place, and nothing changed is missed, nothing
    unchanged sent (the rows of a repeated key keep their order, so the same one wins)."""
    monkeypatch.setattr(pipeline, "CSV_BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(prepare.RecallRate, "ROWS", 200)
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    first = run_sync(job, emulator, tmp_path)
    header, *rows = _rows(source)
    price = header.index("price_retail")
    rows = rows[1000:] + rows[:1000]
    rows[3][price], rows[-3][price] = "1.11", "2.22"  # near the start and the end
    _write(source, [header, *rows])
    second = run_sync(job, emulator, tmp_path)
    assert (second.updated, second.unchanged) == (2, first.created - 2)
    assert second.rejected == first.rejected and second.balanced
    third = run_sync(job, emulator, tmp_path)  # and the memo follows the new order
    assert (third.sent, third.unchanged) == (0, first.created)


def test_a_small_feed_against_a_big_ledger_sends_only_its_change(
    emulator, tmp_path, monkeypatch, state_on
):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    run_sync(job_for(tmp_path, source), emulator, tmp_path)
    monkeypatch.setattr(engine, "SMALL_FEED_ROWS", 20_000)  # this feed reads only its keys
    header, *rows = _rows(source)
    small = tmp_path / "few.csv"
    picked = [rows[10], rows[500], rows[1500]]
    picked[1][header.index("price_retail")] = "3.33"
    _write(small, [header, *picked])
    few = job_for(tmp_path, small, job="few-products")
    result = run_sync(few, emulator, tmp_path, partial=True)
    assert (result.updated, result.unchanged, result.created) == (1, 2, 0)


def test_the_memo_keeps_tags_of_rows_a_run_did_not_read(emulator, tmp_path, state_on):
    """A run that reads part of the feed (--partial) keeps the memo of the rest: the next
    whole run recalls every unchanged row."""
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    first = run_sync(job, emulator, tmp_path)
    header, *rows = _rows(source)
    part = tmp_path / "part.csv"
    _write(part, [header, *rows[:50]])
    run_sync(job, emulator, tmp_path, source=part, partial=True)
    memo = next((tmp_path / "state" / "memo").glob(f"*{SUFFIX}"))
    entries = np.fromfile(memo, ENTRY)
    assert len(np.unique(entries["key"])) == len(entries) == first.created
    assert (run_sync(job, emulator, tmp_path).unchanged, first.created) == (first.created,) * 2
