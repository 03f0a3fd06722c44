"""SIGTERM and SIGINT stop a real `nymble-sync run` process cleanly: it stops reading, lets
the requests in flight land, records the run as `interrupted` with its counts, releases its
lock and exits 143 / 130; running it again finishes the work exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from helpers import API_KEY, all_products, bulk_requests

from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig
from pipelines.ledger import Ledger
from pipelines.run.resources import default_ledger_url

JOB = "mappings/products.yml"
VALID = 1994  # rows of the sample catalog that pass every check


def start_run(emu, tmp_path, *extra):
    env = {**os.environ, "NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "pipelines.cli", "run", JOB, "--target", emu.base_url]
    cmd += ["--batch-size", "50", "--concurrency", "2", "--log-format", "plain", *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, cmd, env


def wait_for_requests(emu, count: int) -> None:
    deadline = time.monotonic() + 30
    while bulk_requests(emu) < count and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_cleanly_and_a_rerun_finishes_it(signum, code, tmp_path):
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(latency_ms=150))
    with Emulator.start(settings) as emu:
        proc, cmd, env = start_run(emu, tmp_path, "--json")
        wait_for_requests(emu, 4)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        summary = json.loads(out)
        assert summary["status"] == "interrupted" and summary["exit_code"] == code
        assert "run the same command again" in summary["error"]
        assert summary["balanced"], summary
        assert 0 < summary["created"] < VALID and summary["skipped"] > 0
        assert "Traceback" not in err
        with Ledger.connect(default_ledger_url(tmp_path), create=False) as ledger:
            [run] = ledger.recent_runs(limit=5)
        assert run.status == "interrupted" and run.finished_at is not None
        assert run.counts["created"] == summary["created"]
        with _api(emu) as api:
            assert len(all_products(api)) >= summary["created"]  # acknowledged: in the ledger

        emu.set_faults(FaultConfig())
        rerun = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True)
        assert rerun.returncode == 1, rerun.stderr  # finished; the sample's bad rows rejected
        second = json.loads(rerun.stdout)
        assert second["created"] + summary["created"] == VALID  # none twice, none lost
        assert second["unchanged"] == summary["created"]
        with _api(emu) as api:
            assert len(all_products(api)) == VALID


def test_the_lock_is_released_when_a_signal_stops_the_run(tmp_path):
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(latency_ms=150))
    with Emulator.start(settings) as emu:
        proc, cmd, env = start_run(emu, tmp_path)
        wait_for_requests(emu, 2)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 143
        # Another run starts at once: it is not told the previous one still holds the lock.
        again = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert again.returncode == 1, again.stderr
        assert "holds the lock" not in again.stderr


def _api(emu) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"x-api-key": API_KEY})
