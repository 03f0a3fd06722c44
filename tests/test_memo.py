"""The source-row memo: unchanged rows are recalled instead of re-serialized, and nothing a
memo holds (stale, foreign, corrupt) can make a run skip a changed record."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from helpers import all_products, job_for, run_sync

from pipelines import memo, pipeline
from pipelines.config import load_job
from pipelines.diff import AckedState, tags
from pipelines.extract import Chunk, read_csv
from pipelines.memo import MemoFile, RowFingerprints, file_digest
from pipelines.pipeline import RunOptions, load_price_list
from pipelines.prepare import Recall, prepare_products
from pipelines.price_list import PriceListIndex

SAMPLE = Path("sample_data/products.csv")
JOB = Path("mappings/products.yml")


def _edit(source: Path, column: str, changes: dict[int, str]) -> list[list[str]]:
    """Set ``column`` on the given CSV lines (list index = CSV row - 1); return all lines."""
    with source.open(encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    at = lines[0].index(column)
    for i, value in changes.items():
        lines[i][at] = value
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(lines)
    return lines


def _memo_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "memo").glob("*.bin"))


def test_a_rerun_recalls_rows_and_still_rejects_the_bad_ones(emulator, tmp_path):
    first = run_sync(JOB, emulator, tmp_path)
    (memo,) = _memo_files(tmp_path)
    assert memo.stat().st_size == 16 * first.created  # a (key, tag) pair per record sent
    second = run_sync(JOB, emulator, tmp_path)
    assert (second.unchanged, second.sent, second.rejected) == (1994, 0, first.rejected)
    assert second.balanced


def test_a_mapping_change_resends_every_record(emulator, api, tmp_path):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    run_sync(job_for(tmp_path, source), emulator, tmp_path)
    spec = yaml.safe_load(JOB.read_text())
    before = all_products(api)
    # The same columns, swapped: the rows' bytes are as before, their records are not.
    fields = {**spec["fields"], "name": "category", "category": "name"}
    second = run_sync(job_for(tmp_path, source, fields=fields), emulator, tmp_path)
    assert (second.updated, second.unchanged) == (1994, 0)
    held = all_products(api)
    assert all(p["name"] == before[key]["category"] for key, p in held.items())


def _price_list_job(tmp_path: Path) -> tuple[Path, Path]:
    """The sample job with its prices from a copy of the long price list: (job, list)."""
    prices = tmp_path / "price_list.csv"
    shutil.copy("sample_data/price_list.csv", prices)
    spec = yaml.safe_load(JOB.read_text())
    del spec["prices"]
    spec["price_list"] = {"source": {"type": "csv", "path": str(prices)}, "key": "sku"}
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    return job, prices


def test_a_price_list_change_resends_the_product_it_touches(emulator, api, tmp_path):
    job, prices = _price_list_job(tmp_path)
    first = run_sync(job, emulator, tmp_path)
    lines = _edit(prices, "price", {1: "7.77"})  # the catalog itself is untouched
    second = run_sync(job, emulator, tmp_path)
    assert (second.updated, second.unchanged) == (1, first.created - 1)
    sku = lines[1][lines[0].index("sku")]
    assert 7.77 in [p["price"] for p in all_products(api)[sku]["prices"]]


def test_no_memo_content_hides_a_change(emulator, api, tmp_path):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    run_sync(job, emulator, tmp_path)
    (memo,) = _memo_files(tmp_path)
    pairs = np.fromfile(memo, np.int64).reshape(-1, 2)
    for n, broken in enumerate(
        [
            np.random.default_rng(1).integers(-(2**63), 2**63 - 1, pairs.size),  # noise
            np.column_stack([pairs[:, 0], pairs[::-1, 1]]).ravel(),  # tags of other records
            pairs.ravel()[:-3],  # cut short
        ]
    ):
        price = f"{40 + n}.44"
        lines = _edit(source, "price_retail", {5: price})
        broken.astype(np.int64).tofile(memo)
        run = run_sync(job, emulator, tmp_path)
        assert (run.updated, run.unchanged) == (1, 1993)
        assert all_products(api)[lines[5][0].strip()]["price"] == float(price)


def test_a_parquet_feed_is_recalled_too(emulator, tmp_path):
    """Parquet columns are typed: their values are fingerprinted through their text form."""
    job = job_for(tmp_path, Path("sample_data/products.parquet"))
    first = run_sync(job, emulator, tmp_path)
    assert first.created > 1900
    second = run_sync(job, emulator, tmp_path)
    assert (second.sent, second.unchanged) == (0, first.created)
    table = pq.read_table("sample_data/products.parquet")
    prints = RowFingerprints(load_job(job))(table)
    assert prints is not None and len(np.unique(prints)) == len(table)  # so rows are recalled


def test_a_memo_that_cannot_be_written_never_fails_a_run(emulator, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "memo").write_text("not a folder")
    said: list[str] = []
    first = run_sync(JOB, emulator, tmp_path, log=said.append)
    second = run_sync(JOB, emulator, tmp_path, log=said.append)
    assert (first.created, second.unchanged, second.sent) == (1994, 1994, 0)
    assert any("memo of unchanged rows" in line and "could not be written" in line for line in said)


def test_a_memo_ahead_of_the_ledger_is_not_trusted(emulator, tmp_path):
    """The memo of a later run, with the ledger as it was before that run: the tag of the
    changed row names a content hash the ledger never saw acknowledged."""
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    run_sync(job, emulator, tmp_path)
    ledger = tmp_path / "state" / "ledger.sqlite"
    shutil.copy(ledger, tmp_path / "ledger-before.sqlite")
    _edit(source, "price_retail", {9: "55.55"})
    assert run_sync(job, emulator, tmp_path).updated == 1
    shutil.copy(tmp_path / "ledger-before.sqlite", ledger)  # the memo stays as run 2 left it
    again = run_sync(job, emulator, tmp_path)
    assert (again.updated, again.unchanged) == (1, 1993)


def test_many_small_chunks_give_the_same_outcome(emulator, tmp_path, monkeypatch):
    """Chunks of ~100 rows: most are recalled whole and coalesced; the bad rows and the
    changed ones are mapped among them, and every reject is reported again."""
    monkeypatch.setattr(pipeline, "CSV_BLOCK_BYTES", 16 << 10)
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    first = run_sync(job, emulator, tmp_path, rejects_path=tmp_path / "first.csv")
    _edit(source, "price_retail", {20: "1.01", 1200: "2.02", 1999: "3.03"})
    second = run_sync(job, emulator, tmp_path, rejects_path=tmp_path / "second.csv")
    assert (second.updated, second.unchanged, second.rejected) == (3, 1991, first.rejected)
    assert _reject_rows(tmp_path / "second.csv") == _reject_rows(tmp_path / "first.csv")


def _reject_rows(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(r["row"], r["column"], r["rule"]) for r in csv.DictReader(f)]


def test_a_price_list_that_changes_while_read_turns_the_memo_off(tmp_path, monkeypatch):
    job_path, prices = _price_list_job(tmp_path)
    job = load_job(job_path)
    options = RunOptions(log=lambda _: None)
    index, _ = load_price_list(job, options)
    assert index.digest == file_digest(prices)
    load = PriceListIndex.load

    def load_then_export_again(*args):
        loaded = load(*args)
        with prices.open("a", encoding="utf-8") as f:
            f.write("SKU-NEW,Retail,1,9.99\n")
        return loaded

    monkeypatch.setattr(PriceListIndex, "load", load_then_export_again)
    index, _ = load_price_list(job, options)
    assert index.digest is None


def test_the_code_that_shapes_records_is_in_every_fingerprint(monkeypatch):
    job = load_job(JOB)
    row = pa.table({c: ["x"] for c in sorted(_used(job))})
    before = RowFingerprints(job)(row)
    monkeypatch.setattr(memo, "code_digest", lambda: "another release")
    assert RowFingerprints(job)(row) != before


def test_recalled_rows_are_neither_mapped_nor_serialized():
    job = load_job(JOB)
    whole = next(read_csv(SAMPLE, encoding="utf-8-sig"))
    chunk = Chunk(whole.table.slice(0, 3), whole.rows[:3], whole.source)
    first = prepare_products(chunk, job, None)  # what a first run sends
    assert first.passed.all()
    state = AckedState(first.keys, first.hashes)
    state.attach_tags()
    fingerprints = RowFingerprints(job)
    prints = fingerprints(chunk.table)
    state.remember(state.locate(first.keys[:2]), tags(prints[:2], first.hashes[:2]))
    again = prepare_products(chunk, job, None, Recall(fingerprints, state))
    assert again.bodies[:2] == [None, None] and again.bodies[2] == first.bodies[2]
    assert again.hashes.tolist() == first.hashes.tolist()
    assert again.table.column_names == ["externalId", "sku"]  # the third row was mapped alone
    assert state.unchanged(state.locate(again.keys), again.hashes).all()


def _used(job) -> set[str]:
    return set(job.source_columns_used().values())


def test_fingerprints_tell_rows_apart_only_by_their_values(tmp_path):
    job = load_job(JOB)
    columns = sorted(_used(job))
    first, second = columns[0], columns[1]

    def prints(rows: list[dict], job=job) -> list[int]:
        data = {c: [r.get(c, "x") for r in rows] for c in columns}
        return RowFingerprints(job)(pa.table(data, schema=_strings(columns))).tolist()

    same = prints([{first: "ab", second: "c"}, {first: "ab", second: "c"}])
    assert same[0] == same[1]
    shifted = prints([{first: "ab", second: "c"}, {first: "a", second: "bc"}])
    assert shifted[0] != shifted[1]
    empty = prints([{first: "", second: "c"}, {first: None, second: "c"}])
    assert empty[0] != empty[1]
    other_job = job.model_copy(update={"fields": {**job.fields, "name": "category"}})
    assert prints([{}])[0] != prints([{}], job=other_job)[0]


def _strings(columns: list[str]) -> pa.Schema:
    return pa.schema([(c, pa.string()) for c in columns])


def test_a_memo_keeps_tags_of_keys_a_run_did_not_read(tmp_path):
    state = AckedState(np.array([1, 2, 3], np.int64), np.array([10, 20, 30], np.int64))
    memo = MemoFile(tmp_path / "memo.bin")
    memo.load_into(state)  # no file yet: nothing recalled
    assert not state.recall(state.locate(np.array([1])), np.array([5]))[0].any()
    memo.remember(state, state.locate(np.array([1, 9])), np.array([1, 9]), np.array([11, 99]))
    memo.save(state)
    reloaded = AckedState(np.array([1, 2, 3, 9], np.int64), np.array([10, 20, 30, 90], np.int64))
    MemoFile(tmp_path / "memo.bin").load_into(reloaded)
    assert reloaded.tags.tolist() == [11, 0, 0, 99]
