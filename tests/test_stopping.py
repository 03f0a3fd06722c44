"""A run stopped part-way (a signal between chunks, a gate, a short grace period) still
accounts for every row it read, records itself at once, and leaves a shared stop request
ready for the next run."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml
from helpers import API_KEY

from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig
from pipelines.errors import GateFailed, Interrupted
from pipelines.extract import feed
from pipelines.ledger import Ledger
from pipelines.run.commands import PlanSettings, SyncSettings, plan, sync
from pipelines.run.resources import default_ledger_url
from pipelines.run.stopping import StopRequest

JOB = Path("mappings/products.yml")


def settings(job: Path, url: str, state: Path, **options) -> SyncSettings:
    return SyncSettings(
        job_path=job,
        target=url,
        state_dir=state,
        environ={"NYMBLE_API_KEY": API_KEY},
        log=lambda _: None,
        **options,
    )


def test_a_stop_between_chunks_balances_every_row_read(emulator, tmp_path, monkeypatch):
    monkeypatch.setattr(feed, "CSV_BLOCK_BYTES", 16 << 10)  # ~80 rows a chunk
    stop = StopRequest()
    chunks = []

    def progress(summary):
        chunks.append(summary.rows_read)
        if len(chunks) == 3:
            stop.request(signal.SIGTERM)

    with pytest.raises(Interrupted) as err:
        sync(settings(JOB, emulator.base_url, tmp_path, stop=stop, progress=progress))
    summary = err.value.summary
    assert 0 < summary.rows_read < 2000 and summary.status == "interrupted"
    assert summary.balanced, summary  # the rows the first window held: skipped
    assert summary.skipped == summary.rows_read - summary.rejected
    with Ledger.connect(default_ledger_url(tmp_path), create=False) as ledger:
        [run] = ledger.recent_runs(limit=1)
    assert run.status == "interrupted" and run.counts["skipped"] == summary.skipped


def test_a_failed_gate_balances_and_a_shared_stop_request_is_ready_again(emulator, tmp_path):
    gated = tmp_path / "gated.yml"
    spec = yaml.safe_load(JOB.read_text())
    gated.write_text(yaml.safe_dump({**spec, "gates": {"max_reject_pct": 0.1}}))
    stop = StopRequest()
    with pytest.raises(GateFailed) as err:
        sync(settings(gated, emulator.base_url, tmp_path, stop=stop))
    summary = err.value.summary
    assert summary.status == "gated" and summary.balanced
    assert (summary.rejected, summary.skipped) == (6, 1994)
    again = sync(settings(JOB, emulator.base_url, tmp_path, stop=stop))
    assert (again.status, again.created) == ("partial", 1994)


def test_a_stopped_run_records_itself_within_its_grace_period(tmp_path):
    slow = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(latency_ms=4000))
    with Emulator.start(slow) as emu:
        stop = StopRequest(grace_s=0.5)
        sent = []

        def progress(summary):
            sent.append(summary.rows_read)

        options = {"stop": stop, "progress": progress, "batch_items": 200}
        started = time.monotonic()

        def request_stop_soon():
            time.sleep(1.0)  # batches are out, each waiting 4 s for its answer
            stop.request(signal.SIGTERM)

        import threading

        threading.Thread(target=request_stop_soon, daemon=True).start()
        with pytest.raises(Interrupted) as err:
            sync(settings(JOB, emu.base_url, tmp_path, **options))
        took = time.monotonic() - started
    assert took < 3.5, f"the run waited {took:.1f} s for requests on the wire"
    assert err.value.summary.balanced


def test_plan_and_validate_create_no_ledger(emulator, tmp_path):
    state = tmp_path / "fresh"
    result = plan(PlanSettings(**vars(settings(JOB, emulator.base_url, state))))
    assert result.create == 1994
    assert not (state / "ledger.sqlite").exists()
