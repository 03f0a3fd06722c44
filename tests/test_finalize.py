"""`run --finalize --run-group G`: mirror mode for a sharded run. The shards of a mirror-mode
job record the keys they read and deactivate nothing; the finalize step, without reading the
feed, checks in the ledger that every shard of the group finished, then deactivates exactly
the products the job owns that no shard read. Against the emulator over real HTTP, with
real ledgers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from helpers import API_KEY, all_products, bulk_requests, run_sync
from test_mirror import drop_rows, mirror_job

from pipelines.errors import EXIT_CONFIG, EXIT_GATE, ConfigError, GateFailed, Refused
from pipelines.ledger import Ledger
from pipelines.ledger.run_groups import ShardRun, record_shard_run
from pipelines.run.commands import SyncSettings
from pipelines.run.finalize import finalize
from pipelines.run.shards import Shard

GOOD = 1994  # the sample's products less its 6 bad rows


def _shard(job, emulator, tmp_path, k, group, ledger, n=4, **options):
    return run_sync(
        job, emulator, tmp_path, shard=Shard(k, n), run_group=group, ledger_url=ledger, **options
    )


def _finalize(job, emulator, tmp_path, group, ledger, **options):
    settings = SyncSettings(
        job_path=job,
        target=emulator.base_url,
        state_dir=tmp_path / "state",
        environ={"NYMBLE_API_KEY": API_KEY},
        log=lambda _: None,
        run_group=group,
        ledger_url=ledger,
        **options,
    )
    return finalize(settings)


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")


def test_four_shards_then_finalize_deactivates_exactly_what_left_the_feed(
    emulator, api, tmp_path, ledger_url
):
    source, job = mirror_job(tmp_path)
    first = [_shard(job, emulator, tmp_path, k, "night-1", ledger_url) for k in range(4)]
    assert sum(s.created for s in first) == GOOD and not any(s.deactivated for s in first)
    assert all("--finalize --run-group night-1" in " ".join(s.notes) for s in first)
    nothing = _finalize(job, emulator, tmp_path, "night-1", ledger_url)
    assert (nothing.status, nothing.deactivated, nothing.rows_read) == ("succeeded", 0, 0)

    gone = drop_rows(source, lambda i: i not in (0, 1, 500, 1200, 1999))
    second = [_shard(job, emulator, tmp_path, k, "night-2", ledger_url) for k in range(4)]
    assert sum(s.deactivated for s in second) == 0  # no shard can tell what vanished
    assert sum(s.unchanged for s in second) == GOOD - len(gone)
    inactive = {k for k, p in all_products(api).items() if not p["active"]}  # status I rows
    requests = bulk_requests(emulator)

    done = _finalize(job, emulator, tmp_path, "night-2", ledger_url)
    assert (done.status, done.deactivated, done.run_group) == ("succeeded", len(gone), "night-2")
    assert done.rows_read == 0 and done.balanced  # it read no feed
    assert bulk_requests(emulator) == requests + 1  # one batch: the deactivations only
    held = all_products(api)
    assert len(held) == GOOD  # deactivated, never deleted
    assert {k for k, p in held.items() if not p["active"]} == inactive | set(gone)

    again = _finalize(job, emulator, tmp_path, "night-2", ledger_url)  # nothing left to do
    assert (again.status, again.deactivated) == ("succeeded", 0)


def test_finalize_is_refused_while_a_shard_is_missing_failed_or_partial(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    url = _sqlite(tmp_path)
    for k in range(4):
        _shard(job, emulator, tmp_path, k, "night-1", url)
    drop_rows(source, lambda i: i not in (7, 8))

    for k in (0, 1, 3):  # shard 2 never runs
        _shard(job, emulator, tmp_path, k, "night-2", url)
    before = {k: p["active"] for k, p in all_products(api).items()}
    with pytest.raises(Refused) as refused:
        _finalize(job, emulator, tmp_path, "night-2", url)
    message = str(refused.value)
    assert "shard 2/4: never ran in this group" in message
    assert f"nymble-sync run {job} --shard 2/4 --run-group night-2" in message
    assert "shard 0/4" not in message and "shard 1/4" not in message
    assert refused.value.summary.status == "refused"  # recorded as a run of the group

    truncated = tmp_path / "truncated.csv"  # the row-count gate stops shard 2
    truncated.write_text("".join(source.read_text().splitlines(keepends=True)[:100]))
    with pytest.raises(GateFailed):
        _shard(job, emulator, tmp_path, 2, "night-2", url, source=truncated)
    with pytest.raises(Refused, match=r"shard 2/4: gated \(run \d+\)"):
        _finalize(job, emulator, tmp_path, "night-2", url)

    _shard(job, emulator, tmp_path, 2, "night-2", url, partial=True)
    with pytest.raises(Refused, match=r"shard 2/4: read part of the feed on purpose \(--partial"):
        _finalize(job, emulator, tmp_path, "night-2", url)
    assert {k: p["active"] for k, p in all_products(api).items()} == before  # none sent

    rerun = _shard(job, emulator, tmp_path, 2, "night-2", url)  # the rerun of shard 2 alone
    assert rerun.status in ("succeeded", "partial")
    done = _finalize(job, emulator, tmp_path, "night-2", url)
    assert (done.status, done.deactivated) == ("succeeded", 2)


def test_a_running_or_crashed_shard_blocks_finalize(emulator, tmp_path):
    _source, job = mirror_job(tmp_path)
    url = _sqlite(tmp_path)
    for k in range(3):
        _shard(job, emulator, tmp_path, k, "night-1", url)
    with Ledger.connect(url) as ledger:  # shard 3's worker: started, never finished
        target = next(r.target_id for r in ledger.recent_runs(limit=1))
        run_id = ledger.begin_run(
            job="products#3of4",
            target_id=target,
            target_label=emulator.base_url,
            entity="products",
            source="products.csv",
            full=False,
        )
        record_shard_run(ledger, ShardRun(run_id, "night-1", "products", 3, 4))
    with pytest.raises(Refused, match=rf"shard 3/4: still running \(run {run_id}, last heart"):
        _finalize(job, emulator, tmp_path, "night-1", url)
    with Ledger.connect(url) as ledger:
        ledger.finish_run(run_id, status="crashed", counts={}, rejects_path=None, elapsed_s=1.0)
    with pytest.raises(Refused, match=rf"shard 3/4: crashed \(run {run_id}\)"):
        _finalize(job, emulator, tmp_path, "night-1", url)


def test_the_mirror_cap_holds_at_finalize(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    url = _sqlite(tmp_path)
    for k in range(2):
        _shard(job, emulator, tmp_path, k, "night-1", url, n=2)
    dropped = drop_rows(source, lambda i: i % 10 != 3)  # 10% of the feed: over the 5% cap
    held = all_products(api)
    gone = [sku for sku in dropped if sku in held]  # not the sample's bad rows
    for k in range(2):
        _shard(job, emulator, tmp_path, k, "night-2", url, n=2)
    before = {k: p["active"] for k, p in all_products(api).items()}
    with pytest.raises(Refused, match="max_deactivate_pct"):
        _finalize(job, emulator, tmp_path, "night-2", url)
    assert {k: p["active"] for k, p in all_products(api).items()} == before
    done = _finalize(job, emulator, tmp_path, "night-2", url, allow_mass_deactivate=True)
    assert done.deactivated == len(gone)


def test_finalize_without_a_group_or_with_shard_options_is_refused(emulator, tmp_path):
    _source, job = mirror_job(tmp_path)
    url = _sqlite(tmp_path)
    with pytest.raises(ConfigError, match="--run-group G \\(or NYMBLE_RUN_GROUP\\)"):
        _finalize(job, emulator, tmp_path, None, url)
    with pytest.raises(ConfigError, match="--finalize with --shard"):
        _finalize(job, emulator, tmp_path, "g", url, shard=Shard(0, 4))
    with pytest.raises(ConfigError, match="--finalize with --partial"):
        _finalize(job, emulator, tmp_path, "g", url, partial=True)
    _shard(job, emulator, tmp_path, 0, "night-1", url)
    with pytest.raises(ConfigError, match="holds no shard run.*recent groups of products: night-1"):
        _finalize(job, emulator, tmp_path, "nightly-1", url)


def test_the_cli_finalizes_and_runs_shows_it_in_the_group(emulator, tmp_path):
    source, job = mirror_job(tmp_path)
    url = _sqlite(tmp_path)
    for k in range(4):
        _shard(job, emulator, tmp_path, k, "night-1", url)
    drop_rows(source, lambda i: i != 42)
    for k in range(4):
        _shard(job, emulator, tmp_path, k, "night-2", url)

    def cli(*args: str, group: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path / "state")}
        env.pop("NYMBLE_RUN_GROUP", None)
        if group is not None:
            env["NYMBLE_RUN_GROUP"] = group
        cmd = [sys.executable, "-m", "pipelines.cli", *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)

    base = ["run", str(job), "--target", emulator.base_url, "--finalize", "--json"]
    none = cli(*base)
    assert none.returncode == EXIT_CONFIG and "--run-group" in none.stderr
    assert json.loads(none.stdout)["status"] == "config_error"
    stale = cli(*base, group="night-1")  # night-2's shards came after night-1's
    assert stale.returncode == EXIT_GATE and "out of date" in stale.stderr
    done = cli(*base, group="night-2")
    summary = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert (summary["deactivated"], summary["run_group"], summary["shard"]) == (1, "night-2", None)

    runs = cli("runs", "--job", "products")
    assert runs.returncode == 0, runs.stderr
    lines = json.loads(cli("runs", "--job", "products", "--json").stdout)
    finals = [line for line in lines if line["shard"] == "finalize"]
    assert sorted(f["status"] for f in finals) == ["refused", "succeeded"]
    night2 = next(line for line in runs.stdout.splitlines() if line.strip().startswith("night-2"))
    assert "4/4" in night2 and f"succeeded (run {summary['run_id']})" in night2


def test_a_plain_unsharded_run_is_unaffected(emulator, api, tmp_path):
    source, job = mirror_job(tmp_path)
    url = _sqlite(tmp_path)
    run_sync(job, emulator, tmp_path, ledger_url=url)
    gone = drop_rows(source, lambda i: i != 3)
    plain = run_sync(job, emulator, tmp_path, ledger_url=url)  # mirror mode as ever
    assert plain.deactivated == len(gone) == 1 and plain.shard is plain.run_group is None
    assert all_products(api)[gone[0]]["active"] is False
    with Ledger.connect(url) as ledger, ledger._engine.connect() as conn:  # noqa: SLF001
        tables = set(sa.inspect(conn).get_table_names())
    assert not tables & {"nymble_seen_feeds", "nymble_seen_keys", "run_groups"}


def test_a_job_without_mirror_mode_finalizes_as_a_completeness_check(emulator, tmp_path):
    _source, job = mirror_job(tmp_path, missing="keep")
    url = _sqlite(tmp_path)
    for k in (0, 1):
        _shard(job, emulator, tmp_path, k, "night-1", url, n=3)
    with pytest.raises(Refused, match="shard 2/3: never ran"):
        _finalize(job, emulator, tmp_path, "night-1", url)
    _shard(job, emulator, tmp_path, 2, "night-1", url, n=3)
    done = _finalize(job, emulator, tmp_path, "night-1", url)
    assert done.status == "succeeded" and done.deactivated == 0
    assert any("has no mirror mode" in note for note in done.notes)
    with Ledger.connect(url) as ledger, ledger._engine.connect() as conn:  # noqa: SLF001
        assert "nymble_seen_keys" not in sa.inspect(conn).get_table_names()  # none kept
