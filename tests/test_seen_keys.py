"""Duplicate keys in a run, found in bounded memory: keys beyond what memory holds go to
sorted files on disk, and a duplicate is caught however far apart its rows are."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pipelines.admit.seen_keys import KeyFilter, SeenKeys, merge_files
from pipelines.ops.record_files import RecordFile

_PAIR = np.dtype([("key", "<i8"), ("row", "<i8")])


def _check_all(tracker: SeenKeys, keys: np.ndarray, chunk: int) -> dict[int, int]:
    """Feed ``keys`` (row i has keys[i]) chunk by chunk; every flagged row → the row it names."""
    flagged: dict[int, int] = {}
    for start in range(0, len(keys), chunk):
        part = keys[start : start + chunk]
        rows = np.arange(start, start + len(part))
        failure = tracker.check(pa.array(["x"] * len(part)), part, rows, np.ones(len(part), bool))
        if failure is not None:
            assert np.flatnonzero(failure.mask).tolist() == sorted(failure.related)
            flagged.update({start + i: row for i, row in failure.related.items()})
    return flagged


def _first_rows(keys: np.ndarray) -> dict[int, int]:
    """Brute force: every row whose key an earlier row had → that earlier row."""
    first: dict[int, int] = {}
    out = {}
    for row, key in enumerate(keys.tolist()):
        if key in first:
            out[row] = first[key]
        else:
            first[key] = row
    return out


@pytest.mark.parametrize("memory_keys", [1 << 20, 700, 64], ids=["memory", "disk", "many-files"])
def test_every_duplicate_is_caught_naming_its_first_row(tmp_path, memory_keys):
    rng = np.random.default_rng(7)
    keys = rng.integers(-(2**63), 2**63 - 1, 20_000, dtype=np.int64)
    keys[19_999] = keys[0]  # the first and the last row, as far apart as they get
    keys[12_345] = keys[3]
    repeats = rng.choice(20_000, 300, replace=False)
    keys[repeats] = keys[rng.integers(0, 20_000, 300)]
    tracker = SeenKeys("externalId", "sku", tmp_path)
    tracker.MEMORY_KEYS = memory_keys
    tracker.RUN_LIMIT = min(tracker.RUN_LIMIT, memory_keys)
    flagged = _check_all(tracker, keys, 997)
    assert flagged == _first_rows(keys)
    assert flagged[19_999] == 0
    assert np.array_equal(tracker.keys(), np.unique(keys))
    if memory_keys < 20_000:
        assert tracker._files, "keys went to disk"
    tracker.close()


def test_a_key_repeated_within_a_chunk_names_the_first_row(tmp_path):
    tracker = SeenKeys("externalId", "sku", tmp_path)
    tracker.MEMORY_KEYS = 4
    keys = np.array([5, 6, 7, 8, 9, 10, 5, 11, 11, 6], np.int64)
    assert _check_all(tracker, keys, 5) == {6: 0, 8: 7, 9: 1}


def test_the_filter_never_forgets_a_key_and_rarely_claims_one():
    rng = np.random.default_rng(3)
    seen = KeyFilter()
    held = np.sort(rng.integers(-(2**63), 2**63 - 1, 300_000, dtype=np.int64))
    added = 0
    for part in np.array_split(held, 30):  # grows (and refills) several times on the way
        added += len(part)
        seen.add(part, lambda upto=added: [held[:upto]])
    assert seen.may_hold(held).all()
    strangers = rng.integers(-(2**63), 2**63 - 1, 200_000, dtype=np.int64)
    assert seen.may_hold(strangers).mean() < 0.02


def test_sorted_files_find_keys_by_reading_blocks(tmp_path):
    rng = np.random.default_rng(1)
    keys = np.unique(rng.integers(-(2**63), 2**63 - 1, 50_000, dtype=np.int64))
    a, b = RecordFile(_PAIR, tmp_path, sorted=True), RecordFile(_PAIR, tmp_path, sorted=True)
    for file, part in ((a, keys[::2]), (b, keys[1::2])):
        for piece in np.array_split(part, 7):
            records = np.empty(len(piece), _PAIR)
            records["key"], records["row"] = piece, piece // 3
            file.append(records)
    merged = merge_files(a, b, tmp_path)
    assert np.array_equal(np.concatenate([r["key"] for r in merged.blocks(999)]), keys)
    probes = np.sort(np.concatenate([rng.choice(keys, 500), [keys[0], keys[-1]], [-(2**63)]]))
    found, records = merged.find(probes)
    assert found.tolist() == np.isin(probes, keys).tolist()
    assert (records["row"][found] == probes[found] // 3).all()
    with pytest.raises(ValueError, match="ascending"):
        merged.append(np.zeros(1, _PAIR))
