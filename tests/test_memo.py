"""The source-row memo: unchanged rows are recalled instead of re-serialized, and nothing a
memo holds (stale, foreign, corrupt) can make a run skip a changed record."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import API_KEY, all_products, job_for, run_sync

from pipelines.admit import memo
from pipelines.admit.acked_state import AckedState, tags
from pipelines.admit.memo import MemoFile, RowFingerprints, file_digest
from pipelines.entities.products import product_prepare as prepare
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_entity import load_price_list
from pipelines.entities.products.product_prepare import Recall, prepare_products
from pipelines.extract import feed as pipeline
from pipelines.extract.chunks import Chunk
from pipelines.extract.feed import SourceOpener
from pipelines.extract.files import read_csv
from pipelines.jobs.job_file import load_job
from pipelines.run.commands import PlanSettings, SyncSettings, plan, validate
from pipelines.transform.serialize import serialize

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


@pytest.fixture
def serialized(monkeypatch) -> list[int]:
    """How many records each call serialized: a recalled row is never among them."""
    counts: list[int] = []

    def counting(table):
        counts.append(len(table))
        return serialize(table)

    monkeypatch.setattr(prepare, "serialize", counting)
    return counts


def _memo_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "memo").glob(f"*{memo.SUFFIX}"))


def test_a_rerun_recalls_rows_and_still_rejects_the_bad_ones(
    emulator, tmp_path, serialized, state_on
):
    first = run_sync(JOB, emulator, tmp_path)
    # One serialized row more than created: row 988 repeats a key, found after serializing.
    assert sum(serialized) == first.created + 1
    (memo,) = _memo_files(tmp_path)
    assert memo.stat().st_size == 24 * first.created  # (key, tag, content hash) per record
    serialized.clear()
    second = run_sync(JOB, emulator, tmp_path)
    assert (second.unchanged, second.sent, second.rejected) == (1994, 0, first.rejected)
    assert second.balanced and sum(serialized) == 1  # row 988: never remembered


def test_plan_and_validate_leave_the_memo_as_the_last_run_wrote_it(
    emulator, tmp_path, serialized, state_on
):
    """They read the feed like a run but record nothing: the next run still recalls every
    unchanged row, and its memo is the one the first run wrote."""
    first = run_sync(JOB, emulator, tmp_path)
    (memo_file,) = _memo_files(tmp_path)
    written = memo_file.read_bytes()
    common = {
        "job_path": JOB,
        "target": emulator.base_url,
        "state_dir": tmp_path / "state",
        "environ": {"NYMBLE_API_KEY": API_KEY},
        "log": lambda _: None,
    }
    assert plan(PlanSettings(**common)).update == 0
    validate(SyncSettings(**common))
    assert memo_file.read_bytes() == written
    assert not list((tmp_path / "state" / "memo").glob("*.partial"))
    serialized.clear()
    second = run_sync(JOB, emulator, tmp_path)
    assert (second.unchanged, second.sent) == (first.created, 0)
    assert sum(serialized) == 1  # row 988 (a repeated key): never remembered


def test_a_mapping_change_resends_every_record(emulator, api, tmp_path, state_on):
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


def test_a_number_format_change_maps_every_row_again(emulator, api, tmp_path, serialized, state_on):
    """The rows' bytes stay, what they say changes: ``1.234`` is 1.234 written plainly and
    1234 written German style. No memo may recall such a row as unchanged."""
    with SAMPLE.open(encoding="utf-8-sig", newline="") as f:
        head = list(csv.reader(f))[:4]
    source = tmp_path / "products.csv"
    with source.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(head)
    lines = _edit(source, "price_retail", {1: "1.234", 2: "2.500", 3: "7"})
    skus = [line[0].strip() for line in lines[1:]]
    assert run_sync(job_for(tmp_path, source), emulator, tmp_path).created == 3
    german = {"columns": {"price_retail": {"decimal": ",", "thousands": "."}}}
    serialized.clear()
    second = run_sync(job_for(tmp_path, source, number=german), emulator, tmp_path)
    assert (second.updated, second.unchanged, sum(serialized)) == (2, 1, 3)
    held = all_products(api)
    assert [held[sku]["price"] for sku in skus] == [1234.0, 2500.0, 7.0]
    assert [held[sku]["prices"][0]["price"] for sku in skus] == [1234.0, 2500.0, 7.0]
    serialized.clear()
    third = run_sync(job_for(tmp_path, source, number=german), emulator, tmp_path)
    assert (third.unchanged, sum(serialized)) == (3, 0)  # the memo serves again


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


def test_a_price_list_change_resends_the_product_it_touches(emulator, api, tmp_path, state_on):
    job, prices = _price_list_job(tmp_path)
    first = run_sync(job, emulator, tmp_path)
    lines = _edit(prices, "price", {1: "7.77"})  # the catalog itself is untouched
    second = run_sync(job, emulator, tmp_path)
    assert (second.updated, second.unchanged) == (1, first.created - 1)
    sku = lines[1][lines[0].index("sku")]
    assert 7.77 in [p["price"] for p in all_products(api)[sku]["prices"]]


def test_no_memo_content_hides_a_change(emulator, api, tmp_path, state_on):
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    run_sync(job, emulator, tmp_path)
    (memo,) = _memo_files(tmp_path)
    entries = np.fromfile(memo, np.int64).reshape(-1, 3)  # key, tag, content hash
    keys, tags_, hashes = entries.T
    for n, broken in enumerate(
        [
            np.random.default_rng(1).integers(-(2**63), 2**63 - 1, entries.size),  # noise
            np.column_stack([keys, tags_[::-1], hashes]).ravel(),  # tags of other records
            np.column_stack([keys, tags_, hashes[::-1]]).ravel(),  # contents of others
            np.column_stack([keys, tags_[::-1], hashes[::-1]]).ravel(),  # both
            entries.ravel()[:-4],  # cut short
        ]
    ):
        price = f"{40 + n}.44"
        lines = _edit(source, "price_retail", {5: price})
        broken.astype(np.int64).tofile(memo)
        run = run_sync(job, emulator, tmp_path)
        assert (run.updated, run.unchanged) == (1, 1993)
        assert all_products(api)[lines[5][0].strip()]["price"] == float(price)


@pytest.mark.parametrize("large", [False, True], ids=["string", "large_string+double"])
def test_a_parquet_feed_is_recalled_too(emulator, tmp_path, serialized, large):
    """Parquet columns are typed (pandas writes large strings and doubles): their values are
    fingerprinted through one text form."""
    table = pq.read_table("sample_data/products.parquet")
    if large:
        table = table.cast(
            pa.schema(
                (f.name, pa.float64() if f.name == "weight" else pa.large_string())
                for f in table.schema
            ),
            safe=False,
        )
    feed = tmp_path / "products.parquet"
    pq.write_table(table, feed)
    job = job_for(tmp_path, feed)
    first = run_sync(job, emulator, tmp_path)
    assert first.created > 1900
    serialized.clear()
    second = run_sync(job, emulator, tmp_path)
    assert (second.sent, second.unchanged, sum(serialized)) == (0, first.created, 1)  # row 988


def test_a_memo_that_cannot_be_written_never_fails_a_run(emulator, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "memo").write_text("not a folder")
    said: list[str] = []
    first = run_sync(JOB, emulator, tmp_path, log=said.append)
    second = run_sync(JOB, emulator, tmp_path, log=said.append)
    assert (first.created, second.unchanged, second.sent) == (1994, 1994, 0)
    assert any("memo of unchanged rows" in line and "could not be written" in line for line in said)


def test_a_memo_ahead_of_the_ledger_is_not_trusted(emulator, tmp_path, state_on):
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


def test_many_small_chunks_give_the_same_outcome(
    emulator, tmp_path, monkeypatch, serialized, state_on
):
    """Chunks of ~100 rows: most are recalled whole and coalesced; the bad rows and the
    changed ones are mapped among them, a few at a time, and every reject is reported
    again."""
    monkeypatch.setattr(pipeline, "CSV_BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(prepare.RecallRate, "ROWS", 500)
    monkeypatch.setattr(prepare, "SLICE_ROWS", 2)
    source = tmp_path / "products.csv"
    shutil.copy(SAMPLE, source)
    job = job_for(tmp_path, source)
    first = run_sync(job, emulator, tmp_path, rejects_path=tmp_path / "first.csv")
    _edit(source, "price_retail", {20: "1.01", 21: "1.02", 22: "1.03", 1999: "3.03"})
    serialized.clear()
    second = run_sync(job, emulator, tmp_path, rejects_path=tmp_path / "second.csv")
    assert (second.updated, second.unchanged, second.rejected) == (4, 1990, first.rejected)
    assert sum(serialized) == 4 + 1  # and row 988, whose key an earlier row has
    assert _reject_rows(tmp_path / "second.csv") == _reject_rows(tmp_path / "first.csv")


def _reject_rows(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [(r["row"], r["column"], r["rule"]) for r in csv.DictReader(f)]


def test_a_price_list_that_changes_while_read_turns_the_memo_off(tmp_path, monkeypatch):
    job_path, prices = _price_list_job(tmp_path)
    job = load_job(job_path)
    opener = SourceOpener(log=lambda _: None)
    index, _ = load_price_list(job, opener)
    assert index.digest == file_digest(prices)
    load = PriceListIndex.load

    def load_then_export_again(*args):
        loaded = load(*args)
        with prices.open("a", encoding="utf-8") as f:
            f.write("SKU-NEW,Retail,1,9.99\n")
        return loaded

    monkeypatch.setattr(PriceListIndex, "load", load_then_export_again)
    index, _ = load_price_list(job, opener)
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
    fingerprints = RowFingerprints(job)
    prints = fingerprints(chunk.table)
    state.remember(first.keys[:2], tags(prints[:2], first.hashes[:2]))
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
    def run(state: AckedState, keys: list[int], new_tags: list[int]) -> None:
        memo = MemoFile(tmp_path / "memo.rows")
        memo.load_into(state)
        at = state.locate(np.array(keys))
        memo.remember(at, np.array(keys), np.array(new_tags), at.hashes)
        memo.save()

    state = AckedState(np.array([1, 2, 3], np.int64), np.array([10, 20, 30], np.int64))
    run(state, [1, 2], [11, 22])
    again = AckedState(np.array([1, 2, 3, 9], np.int64), np.array([10, 20, 30, 90], np.int64))
    run(again, [1, 9], [111, 99])  # a run that reads key 1 again and a new key, not key 2
    last = AckedState(np.array([1, 2, 3, 9], np.int64), np.array([10, 20, 30, 90], np.int64))
    MemoFile(tmp_path / "memo.rows").load_into(last)
    assert last.tags.tolist() == [111, 22, 0, 99]


def test_a_change_in_any_module_at_any_depth_voids_the_code_digest(tmp_path):
    """The digest reads the package recursively: a mapping module moved into a subfolder
    still voids every memo tag when its code changes."""
    package = tmp_path / "pipelines"
    shutil.copytree(memo.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = memo.digest_code(package)
    assert before == memo.digest_code(package)  # repeatable
    deep = package / "entities" / "orders" / "order_mapping.py"
    deep.write_text(deep.read_text() + "\n# a change\n")
    assert memo.digest_code(package) != before
    deep.rename(package / "entities" / "orders" / "order_mapping2.py")  # a rename counts too
    assert memo.digest_code(package) not in (before, None)
