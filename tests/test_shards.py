"""`--shard K/N`: N worker processes split one job by key hash, against one emulator and one
shared PostgreSQL ledger; every record lands exactly once, a killed shard reruns alone, shards
never wait for each other's locks, and one rate budget keeps them together under R."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from helpers import API_KEY, all_products, bulk_requests
from orders_helpers import CUSTOMERS, ORDERS_CSV, PRODUCTS, order_count, run_entity

from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig
from pipelines.errors import ConfigError
from pipelines.extract.chunks import Chunk
from pipelines.ledger import Ledger
from pipelines.ledger.rate_budget import RateBudget
from pipelines.run.shards import Shard, base_job, shard_of
from pipelines.transform.rejects import Reject
from pipelines.transform.serialize import key_hashes

PRODUCTS_GOOD, PRODUCT_ROWS = 1994, 2000
ORDERS_GOOD = 491  # as tests/test_orders.py: 500 orders less 9 rejected


# --- the hash: stable, disjoint, complete ---------------------------------------------------


def test_the_shard_of_a_key_is_fixed_by_xxh3_and_never_changes():
    # Pinned values: a change here moves records between shards of a running deployment.
    keys = pa.array(["SKU-1", "10001", "Ä-ö 7", None])
    assert shard_of(key_hashes(keys), 4).tolist() == [0, 0, 2, 0]
    assert shard_of(key_hashes(keys), 7).tolist() == [5, 1, 6, 0]


def test_shards_split_a_chunk_disjointly_and_completely():
    keys = [f"K{i}" for i in range(1000)] + ["  K5 ", None, ""]
    rejects = (
        Reject("f.csv", 9000, "K7", "key", "K7", "unparsable_row", "bad quoting"),
        Reject("f.csv", 9001, None, None, None, "unparsable_row", "bad quoting"),
    )
    chunk = Chunk(pa.table({"key": keys}), np.arange(len(keys)), "f.csv", rejects)
    parts = [Shard(k, 4).take(chunk, "key") for k in range(4)]
    rows = np.concatenate([p.rows for p in parts])
    assert sorted(rows.tolist()) == list(range(len(keys)))  # each row in exactly one shard
    assert all(0.2 < len(p.rows) / len(keys) < 0.3 for p in parts)  # and evenly spread
    where = {k: i for i, p in enumerate(parts) for k in p.table.column("key").to_pylist()}
    assert where["  K5 "] == where["K5"]  # the key as the ledger keys it: trimmed
    assert where[None] == where[""] == 0  # no key: shard 0 reports its reject once
    assert sum(len(p.rejects) for p in parts) == 2 and parts[0].rejects[-1].row == 9001


@pytest.mark.parametrize(
    ("text", "problem"),
    [("4/4", "K must be 0 to N-1"), ("1-4", "write it as K/N"), ("0/0", "N 1 to")],
    ids=["index-past-count", "no-slash", "zero-shards"],
)
def test_a_bad_shard_is_refused_with_the_fix(text, problem):
    with pytest.raises(ConfigError, match=problem):
        Shard.parse(text)


def test_a_shards_ledger_job_carries_its_shard():
    assert Shard.parse(" 2 / 4 ").job_name("products") == "products#2of4"
    assert base_job("products#2of4") == "products" and base_job("a#b") == "a#b"


# --- worker processes against one emulator and one PostgreSQL ledger --------------------------


def _env(tmp_path: Path, ledger_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "NYMBLE_API_KEY": API_KEY,
        "NYMBLE_SYNC_HOME": str(tmp_path / "home"),
        "NYMBLE_LEDGER_URL": ledger_url,
        "ERP_DATABASE_URL": f"sqlite:///{Path('sample_data/erp.sqlite').resolve()}",
    }


def _start(job, k, n, emu, env, *extra) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(job), "--target", emu.base_url]
    cmd += ["--shard", f"{k}/{n}", "--run-group", "g1", "--json", *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _shards(job, emu, env, *extra, n: int = 4) -> list[dict]:
    procs = [_start(job, k, n, emu, env, *extra) for k in range(n)]
    done = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, done, strict=True):
        assert p.returncode in (0, 1), err  # 1: the sample's bad rows, rejected
    return [json.loads(out) for out, _err in done]


def _limited(rate: float) -> Emulator:
    faults = FaultConfig(rate_limit=rate)
    return Emulator.start(EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=faults))


def _api(emu) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"x-api-key": API_KEY})


def test_four_shards_of_products_and_of_orders_land_every_record_once(pg_url, tmp_path):
    env = _env(tmp_path, pg_url)
    with _limited(40) as emu:
        started = time.monotonic()
        products = _shards(PRODUCTS, emu, env, "--rate-limit", "40", "--batch-size", "20")
        elapsed = time.monotonic() - started
        assert [s["shard"] for s in products] == ["0/4", "1/4", "2/4", "3/4"]
        assert all(s["balanced"] and s["run_group"] == "g1" for s in products)
        assert sum(s["rows_read"] for s in products) == PRODUCT_ROWS  # each row read once
        assert sum(s["created"] for s in products) == PRODUCTS_GOOD
        assert emu.stats()["items"]["received"] == PRODUCTS_GOOD  # none sent twice
        stats = emu.stats()["requests"]["POST /api/products/bulk"]
        requests = sum(stats.values())
        assert stats.get("429", 0) < 0.05 * requests, stats
        assert requests / elapsed < 40  # process start-up included: generous, not fragile

        run_entity(CUSTOMERS, emu, tmp_path, ledger_url=pg_url)  # references: shared ledger
        orders = _shards(ORDERS_CSV, emu, env, "--rate-limit", "40")
        assert sum(s["rows_read"] for s in orders) == 500
        assert sum(s["created"] for s in orders) == ORDERS_GOOD
        with _api(emu) as api:
            assert order_count(api) == ORDERS_GOOD and len(all_products(api)) == PRODUCTS_GOOD

        again = _shards(PRODUCTS, emu, env, "--rate-limit", "40")  # per-shard state: no work
        assert sum(s["unchanged"] for s in again) == PRODUCTS_GOOD
        assert sum(s["requests"] for s in again) == 0

    runs = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "runs", "--job", "products", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    lines = json.loads(runs.stdout)
    assert sorted(line["shard"] for line in lines) == sorted(["0/4", "1/4", "2/4", "3/4"] * 2)
    assert {line["run_group"] for line in lines} == {"g1"}


def test_a_killed_shard_reruns_alone_and_completes_its_shard(pg_url, tmp_path):
    env = _env(tmp_path, pg_url)
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(latency_ms=80))
    with Emulator.start(settings) as emu:
        others = [_start(PRODUCTS, k, 4, emu, env, "--batch-size", "20") for k in (0, 1, 3)]
        victim = _start(PRODUCTS, 2, 4, emu, env, "--batch-size", "10", "--concurrency", "1")
        deadline = time.monotonic() + 60
        while bulk_requests(emu) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        for p in others:
            p.communicate(timeout=120)
        with _api(emu) as api:
            assert len(all_products(api)) < PRODUCTS_GOOD  # shard 2 was cut short

        emu.set_faults(FaultConfig())
        rerun = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run", str(PRODUCTS), "--target",
             emu.base_url, "--shard", "2/4", "--json"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        summary = json.loads(rerun.stdout)
        assert summary["balanced"] and summary["shard"] == "2/4", rerun.stderr
        assert "took over the lock" in rerun.stderr  # the killed run's lock, gone stale
        with _api(emu) as api:
            assert len(all_products(api)) == PRODUCTS_GOOD
    with Ledger.connect(pg_url, create=False) as ledger:
        [killed, *_] = [r for r in ledger.recent_runs(limit=20) if r.job == "products#2of4"][1:]
    assert killed.status in ("crashed", "running", "abandoned", "failed"), killed.status


def test_shards_hold_their_own_locks(pg_url, tmp_path):
    env = _env(tmp_path, pg_url)
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(latency_ms=100))
    with Emulator.start(settings) as emu:
        slow = _start(PRODUCTS, 0, 2, emu, env, "--batch-size", "10", "--concurrency", "1")
        while bulk_requests(emu) < 2:
            time.sleep(0.02)
        same = subprocess.run(_cmd(PRODUCTS, emu, "0/2"), env=env, capture_output=True, text=True)
        other = subprocess.run(_cmd(PRODUCTS, emu, "1/2"), env=env, capture_output=True, text=True)
        assert slow.poll() is None  # still running: shard 1 did not wait for it
        slow.send_signal(signal.SIGTERM)
        slow.communicate(timeout=60)
    assert "already running" in same.stderr and same.returncode != 0
    assert other.returncode == 1 and json.loads(other.stdout)["shard"] == "1/2", other.stderr


def _cmd(job, emu, shard: str) -> list[str]:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", str(job), "--target", emu.base_url]
    return [*cmd, "--shard", shard, "--batch-size", "50", "--json"]


def test_the_rate_budget_keeps_four_workers_together_under_the_limit(pg_url, tmp_path):
    env = _env(tmp_path, pg_url)
    with _limited(1000) as emu:  # the server would take far more: the budget is what holds
        started = time.monotonic()
        done = _shards(PRODUCTS, emu, env, "--rate-limit", "25", "--batch-size", "25")
        elapsed = time.monotonic() - started
    requests = sum(s["requests"] for s in done)
    assert requests == sum(-(-s["created"] // 25) for s in done)  # batches of 25, no retry
    assert elapsed >= 0.9 * (requests - 4) / 25  # 4 workers, one rate of 25/s between them


def test_a_budget_spaces_tokens_at_its_rate_on_sqlite(tmp_path):
    with Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        budget = RateBudget(ledger, "t", 50)
        started = time.monotonic()
        for _ in range(26):
            budget.take()
        assert 0.45 < time.monotonic() - started < 2.0  # 25 intervals of 1/50 s
