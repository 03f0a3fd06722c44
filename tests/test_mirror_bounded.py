"""Mirror mode in bounded memory: the keys a job owns, read from the ledger bucket by bucket,
joined in key order with the feed's keys read back from disk, decide exactly what the whole
computation held in memory decided (the cap's denominator and the vanished products, with
their ids), on random ledgers with buckets and spill thresholds forced tiny."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
from test_mirror import test_vanished_products_are_deactivated_and_others_kept as whole_story

from pipelines.admit import acked_build
from pipelines.admit.acked_state import AckedState
from pipelines.admit.admission import Admission
from pipelines.admit.ledger_state import LedgerState
from pipelines.admit.seen_keys import SeenKeys
from pipelines.entities.products.mirror import deactivated_hashes, find_vanished
from pipelines.ledger import Ledger
from pipelines.ledger.ownership import keys_synced_by_job
from pipelines.ops.sorted_keys import SpilledKeys, merged, sorted_blocks

SCOPE = {"target_id": "t-1", "entity": "products"}
JOB = SimpleNamespace(job="products", entity="products")


@pytest.fixture
def tiny(monkeypatch):
    """Buckets of a few dozen outcomes, on disk; keys spilled to files every few hundred."""
    monkeypatch.setattr(acked_build, "BUCKET_ENTRIES", 64)
    monkeypatch.setattr(acked_build, "IN_MEMORY_ENTRIES", 0)
    monkeypatch.setattr(SpilledKeys, "MEMORY_KEYS", 300)
    monkeypatch.setattr(SeenKeys, "MEMORY_KEYS", 200)
    monkeypatch.setattr(SeenKeys, "RUN_LIMIT", 64)


def _random_ledger(ledger: Ledger, rng: np.random.Generator, pool: np.ndarray) -> None:
    """Runs of this job (some as shards), of another job, sending random parts of ``pool``:
    some outcomes failed, some deactivations (the content hash of the deactivation record),
    later runs re-sending some of those; then, sometimes, compaction."""
    for n in range(int(rng.integers(4, 9))):
        job = rng.choice(["products", "products#2of3", "other"], p=[0.5, 0.2, 0.3])
        run_id = ledger.begin_run(job=str(job), target_label="t", source="f", full=False, **SCOPE)
        sent = rng.permutation(pool)[: int(rng.integers(1, len(pool)))]
        for b, part in enumerate(np.array_split(sent, int(rng.integers(1, 6)))):
            ids = [f"K{k}" for k in part.tolist()]
            hashes = rng.integers(1, 2**62, len(part))
            retire = rng.random(len(part)) < 0.3  # deactivated by this run
            hashes[retire] = deactivated_hashes([i for i, r in zip(ids, retire, strict=True) if r])
            statuses = rng.choice(["created", "updated", "failed"], len(part), p=[0.4, 0.4, 0.2])
            ledger.record_outcomes(
                run_id,
                batch_id=f"r{n}b{b}",
                external_ids=ids,
                key_hashes=part,
                content_hashes=hashes,
                statuses=statuses.tolist(),
                messages=[None] * len(part),
                **SCOPE,
            )
        ledger.finish_run(run_id, status="succeeded", counts={}, rejects_path=None, elapsed_s=1)
    if rng.random() < 0.5:
        ledger.compact(keep_runs=int(rng.integers(1, 3)), **SCOPE)


def _edges() -> np.ndarray:
    """The first and last keys of buckets (of up to 2**6), where a join may slip."""
    starts = [t << (64 - b) for b in range(1, 7) for t in range(-(1 << (b - 1)), 1 << (b - 1))]
    return np.array([k for s in starts for k in (s, s - 1) if k >= -(2**63)], np.int64)


def _whole_in_memory(ledger: Ledger, feed: np.ndarray) -> tuple[int, list[int], list[str]]:
    """The computation mirror mode made before, every array whole."""
    keys, ids = keys_synced_by_job(ledger, job="products", **SCOPE)
    acked = AckedState(*ledger.acked_state(**SCOPE))
    live = ~acked.unchanged(acked.locate(keys), deactivated_hashes(ids))
    absent = ~np.isin(keys, feed, assume_unique=True)
    pick = np.flatnonzero(live & absent)
    return int(live.sum()), keys[pick].tolist(), [ids[i] for i in pick]


@pytest.mark.parametrize("seed", range(8))
def test_owned_and_vanished_match_the_whole_computation(tmp_path, tiny, seed):
    rng = np.random.default_rng(seed)
    pool = np.unique(np.concatenate([rng.integers(-(2**63), 2**63 - 1, 1500), _edges()]))
    with Ledger.connect(f"sqlite:///{tmp_path}/ledger.db") as ledger:
        _random_ledger(ledger, rng, pool)
        # The feed: most of the pool, and keys the ledger never saw.
        feed = np.concatenate(
            [rng.permutation(pool)[: int(len(pool) * 0.8)], rng.integers(1, 2**40, 200)]
        )
        expected = _whole_in_memory(ledger, np.unique(feed))
        assert expected[0] > 20 and expected[1]  # a test that can fail
        spilled = SpilledKeys(tmp_path)
        for part in np.array_split(np.concatenate([feed, feed[:50]]), 13):  # repeats too
            spilled.add(part)
        for keys in (np.unique(feed), spilled):
            found = find_vanished(ledger, JOB, target_id=SCOPE["target_id"], feed_keys=keys)
            assert (found.owned, found.key_hashes.tolist(), found.external_ids) == expected
        spilled.close()


def test_an_empty_ledger_or_feed(tmp_path, tiny):
    with Ledger.connect(f"sqlite:///{tmp_path}/ledger.db") as ledger:
        found = find_vanished(ledger, JOB, target_id="t-1", feed_keys=np.empty(0, np.int64))
        assert (found.owned, len(found)) == (0, 0)
        _random_ledger(ledger, np.random.default_rng(99), np.arange(1, 400, dtype=np.int64))
        expected = _whole_in_memory(ledger, np.empty(0, np.int64))
        found = find_vanished(ledger, JOB, target_id="t-1", feed_keys=iter([]))
        assert (found.owned, found.key_hashes.tolist(), found.external_ids) == expected


def test_merged_blocks_are_sorted_and_distinct():
    rng = np.random.default_rng(5)
    sources = [np.unique(rng.integers(0, 5000, int(n))) for n in rng.integers(0, 900, 6)]
    blocks = list(merged(sorted_blocks(s, int(rng.integers(1, 50))) for s in sources))
    every = np.concatenate(blocks)
    assert every.tolist() == np.unique(np.concatenate(sources)).tolist()


def test_admission_feed_key_blocks_match_feed_keys(tmp_path, tiny):
    """Keys read (in memory and spilled to files) merged with rejected rows' keys."""
    rng = np.random.default_rng(3)
    admission = Admission(
        key_column="sku", state=AckedState.empty(), rejects=None, summary=None, workdir=tmp_path
    )
    row = 0
    for _ in range(40):
        keys = rng.integers(-5000, 5000, 100, dtype=np.int64)
        values = pa.array([str(k) for k in keys.tolist()])
        rows = np.arange(row, row + len(keys))
        row += len(keys)
        admission.ids.check(values, keys, rows, np.ones(len(keys), dtype=bool))
        admission._rejected_keys.append(rng.integers(-6000, 6000, 5, dtype=np.int64))
    assert admission.ids._files  # spilled: the files are merged in
    blocks = list(admission.feed_key_blocks())
    assert np.concatenate(blocks).tolist() == admission.feed_keys().tolist()
    admission.close()


def test_runs_and_plans_decide_alike_with_everything_on_disk(
    emulator, api, tmp_path, tiny, monkeypatch
):
    """Mirror mode's whole story through `run` and `plan` (the feed's keys read back from
    files, the owned keys from buckets on disk), as with everything in memory."""
    monkeypatch.setattr(LedgerState, "MEMORY_OUTCOMES", 0)
    whole_story(emulator, api, tmp_path)
