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
import xxhash
from helpers import API_KEY, all_products, bulk_requests
from orders_helpers import CUSTOMERS, ORDERS_CSV, PRODUCTS, order_count, run_entity
from request_log import Logged, RequestLog

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
    """The test's own reads, which wait out the emulator's rate limit (the workers are what
    the limit is for: a read of the catalog right after them may meet an empty bucket)."""
    return httpx.Client(
        base_url=emu.base_url, headers={"x-api-key": API_KEY}, transport=_WaitingOut429()
    )


class _WaitingOut429(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        while True:
            response = super().handle_request(request)
            if response.status_code != 429:
                return response
            response.read()
            response.close()
            time.sleep(float(response.headers.get("retry-after") or 0.1))


def _by_shard(requests: list[Logged], n: int) -> dict[int, list[float]]:
    """When each of ``n`` shard workers' requests arrived: a request is the shard's of its
    first item (those the server refused before reading them are in none)."""
    spans: dict[int, list[float]] = {}
    for r in requests:
        if r.first_key is not None:
            shard = xxhash.xxh3_64_intdigest(r.first_key.strip().encode()) % n
            spans.setdefault(shard, []).append(r.arrived)
    assert len(spans) == n, sorted(spans)
    return spans


def _combined_rate(requests: list[Logged], n: int) -> tuple[float, float]:
    """(requests/s, seconds) at the emulator while all ``n`` workers were sending: from the
    moment the last of them sent its first request to the moment the first of them sent its
    last. Process start-up (workers start seconds apart on a busy machine) is left out, and
    so is the tail, when the shards that finished first have left the budget to the others."""
    spans = _by_shard(requests, n).values()
    start, end = max(min(t) for t in spans), min(max(t) for t in spans)
    inside = [r.arrived for r in requests if start <= r.arrived <= end]
    return (len(inside) - 1) / (end - start), end - start


def test_four_shards_of_products_and_of_orders_land_every_record_once(pg_url, tmp_path):
    env = _env(tmp_path, pg_url)
    with _limited(40) as emu:
        log = RequestLog(emu)
        # batches of 5: 10 s of requests at 40/s, long beside the workers' start-up stagger
        # (seconds apart on a busy machine: each imports, opens the ledger, reads its share)
        products = _shards(PRODUCTS, emu, env, "--rate-limit", "40", "--batch-size", "5")
        assert [s["shard"] for s in products] == ["0/4", "1/4", "2/4", "3/4"]
        assert all(s["balanced"] and s["run_group"] == "g1" for s in products)
        assert sum(s["rows_read"] for s in products) == PRODUCT_ROWS  # each row read once
        assert sum(s["created"] for s in products) == PRODUCTS_GOOD
        assert emu.stats()["items"]["received"] == PRODUCTS_GOOD  # none sent twice
        stats = emu.stats()["requests"]["POST /api/products/bulk"]
        requests = sum(stats.values())
        assert stats.get("429", 0) < 0.05 * requests, stats
        rate, window = _combined_rate(log.of("POST /api/products/bulk"), 4)
        assert window > 3.0  # long enough to measure a rate by
        assert 0.9 * 40 <= rate <= 1.1 * 40, f"{rate:.1f} requests/s over {window:.2f} s"

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


def test_a_429_pauses_every_worker_until_its_retry_after(pg_url, tmp_path):
    """The server refuses one request in twenty at random with 429 and Retry-After: 1 (a
    limit the workers cannot see coming). The worker that gets it reports it to the ledger,
    and every worker waits: no request reaches the server until the pause ends, but those
    already on their way or started before the others heard of it (a worker reads the budget
    at least every 0.1 s; on a busy machine the report itself takes a while too). Without a
    shared pause only that worker waits; the others go on through the whole second.

    Judged from the first 429 of each overload once every worker is sending: refusals of
    requests already in flight then extend the pause only once their own workers report
    them, and a worker still starting (its imports hold the interpreter) reports late."""
    env = _env(tmp_path, pg_url)
    faults = FaultConfig(throttle_rate=0.05, seed=7)
    with Emulator.start(EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=faults)) as emu:
        log = RequestLog(emu)
        done = _shards(PRODUCTS, emu, env, "--rate-limit", "40", "--batch-size", "20")
        assert emu.stats()["items"]["received"] == PRODUCTS_GOOD  # every record, once
    requests = log.of("POST /api/products/bulk")
    assert sum(s["created"] for s in done) == PRODUCTS_GOOD
    steady = max(min(t) for t in _by_shard(requests, 4).values())
    overloads: list[float] = []  # when each overload's first 429 was answered
    for r in sorted((r for r in requests if r.status == "429"), key=lambda r: r.answered):
        if not overloads or r.answered > overloads[-1] + 1.0:
            overloads.append(r.answered)
    judged = [first for first in overloads if first >= steady]
    assert judged, (overloads, steady)
    for first in judged:
        during = [
            round(e.arrived - first, 3)
            for e in requests
            if first + 0.5 < e.arrived < first + 1.0 - 0.02
        ]
        assert not during, f"429 answered at {first:.3f}: requests {during} s after it"


def test_a_pushback_pauses_and_slows_every_worker_of_the_ledger(tmp_path):
    with Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        mine, other = RateBudget(ledger, "t", 50), RateBudget(ledger, "t", 50)
        mine.lease = other.lease = 1  # no tokens leased ahead: the pause shows at once
        for _ in range(5):
            other.take()
        mine.pushback(0.4)  # this worker's 429, Retry-After 0.4 s
        started = time.monotonic()
        other.take()  # another worker of the same ledger
        assert time.monotonic() - started >= 0.38
        started = time.monotonic()
        for _ in range(15):
            other.take()
        # cut to 70% of 50/s (recovering 5% of it a second): 15 intervals take ≥ 15/40 s
        assert time.monotonic() - started >= 15 / 40
        mine.pushback(None)  # a 429 without Retry-After pauses nobody
        started = time.monotonic()
        mine.take()
        assert time.monotonic() - started < 0.2


def test_a_budget_spaces_tokens_at_its_rate_on_sqlite(tmp_path):
    with Ledger.connect(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        budget = RateBudget(ledger, "t", 50)
        started = time.monotonic()
        for _ in range(26):
            budget.take()
        assert 0.45 < time.monotonic() - started < 2.0  # 25 intervals of 1/50 s
