"""Every documented exit code of `nymble-sync run`, driven through the CLI, each with the
JSON summary a monitor reads on stdout (`--json` on every exit): its status, its exit code
and the error, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers import API_KEY

from pipelines.cli import main
from pipelines.ledger import Ledger
from pipelines.run.resources import default_ledger_url
from pipelines.targets import fingerprint

JOB = Path("mappings/products.yml")
SAMPLE = Path("sample_data/products.csv")


def run_json(state: Path, *args: str, **env: str):
    env = {"NYMBLE_SYNC_HOME": str(state), "NYMBLE_LEDGER_URL": None, **env}
    result = CliRunner(env=env).invoke(main, ["run", *args, "--json"])
    assert "Traceback" not in result.output
    return result, json.loads(result.stdout)


def sync_sample(state: Path, emulator, job: Path = JOB):
    return run_json(state, str(job), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY)


def clean_job(tmp_path: Path) -> Path:
    """The sample job over the sample catalog without its deliberately bad rows."""
    lines = SAMPLE.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    source = tmp_path / "clean.csv"
    source.write_text("".join(lines[:1] + lines[1:1500:7]), encoding="utf-8")
    spec = yaml.safe_load(JOB.read_text())
    spec["source"]["path"] = str(source)
    job = tmp_path / "clean.yml"
    job.write_text(yaml.safe_dump(spec))
    return job


def test_0_every_row_sent(tmp_path, emulator):
    result, out = run_json(
        tmp_path, str(clean_job(tmp_path)), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
    )
    assert (result.exit_code, out["status"], out["exit_code"], out["error"]) == (
        0, "succeeded", 0, None
    )  # fmt: skip
    assert out["created"] == out["rows_read"] > 0


def test_1_finished_with_rows_rejected(tmp_path, emulator):
    result, out = run_json(
        tmp_path, str(JOB), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
    )
    assert (result.exit_code, out["status"], out["exit_code"]) == (1, "partial", 1)
    assert out["rejected"] == 6 and out["balanced"]


def test_2_configuration_error_before_anything_is_read(tmp_path):
    result, out = run_json(tmp_path, str(tmp_path / "missing.yml"))
    assert (result.exit_code, out["status"], out["exit_code"]) == (2, "config_error", 2)
    assert "cannot read" in out["error"] and out["run_id"] is None


def test_3_the_key_is_refused(tmp_path, emulator):
    result, out = run_json(tmp_path, str(JOB), "--target", emulator.base_url, NYMBLE_API_KEY="no")
    assert (result.exit_code, out["status"], out["exit_code"]) == (3, "auth_failed", 3)
    assert "NYMBLE_API_KEY" in out["error"] and out["run_id"] is not None
    assert out["balanced"] and out["skipped"] > 0


def test_4_a_gate_fails(tmp_path, emulator):
    job = tmp_path / "gated.yml"
    spec = yaml.safe_load(JOB.read_text())
    spec["gates"] = {"max_reject_pct": 0.1}  # 6 of 2,000 rejected is 0.3%
    job.write_text(yaml.safe_dump(spec))
    result, out = run_json(
        tmp_path, str(job), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
    )
    assert (result.exit_code, out["status"], out["exit_code"]) == (4, "gated", 4)
    assert "reject_rate" in out["error"] and out["created"] == 0


def test_4_mirror_mode_refuses_and_the_refusal_is_a_recorded_run(tmp_path, emulator):
    source = tmp_path / "catalog.csv"
    shutil.copy(SAMPLE, source)
    spec = yaml.safe_load(JOB.read_text())
    spec |= {"missing": "deactivate", "source": {"type": "csv", "path": str(source)}}
    job = tmp_path / "mirror.yml"
    job.write_text(yaml.safe_dump(spec))
    sync_sample(tmp_path, emulator, job)
    lines = source.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    source.write_text("".join(lines[:1] + lines[1:1800]), encoding="utf-8")  # 10% gone
    result, out = run_json(
        tmp_path, str(job), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
    )
    assert (result.exit_code, out["status"], out["exit_code"]) == (4, "refused", 4)
    with Ledger.connect(default_ledger_url(tmp_path), create=False) as ledger:
        assert ledger.recent_runs(limit=1)[0].status == "refused"
    # On a terminal the refusal is said once: as the error, not also as a note above it.
    env = {"NYMBLE_SYNC_HOME": str(tmp_path), "NYMBLE_LEDGER_URL": None, "NYMBLE_API_KEY": API_KEY}
    text = CliRunner(env=env).invoke(main, ["run", str(job), "--target", emulator.base_url])
    assert text.exit_code == 4 and f"error: {out['error']}" in text.output
    assert text.output.count("mirror mode would deactivate") == 1


def test_5_the_lock_is_held(tmp_path, emulator):
    with Ledger.connect(default_ledger_url(tmp_path)) as ledger:
        target_id = fingerprint(emulator.base_url, API_KEY)
        with ledger.acquire_lock(job="products", target_id=target_id, holder="4242@elsewhere"):
            result, out = run_json(
                tmp_path, str(JOB), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
            )
    assert (result.exit_code, out["status"], out["exit_code"]) == (5, "locked", 5)
    assert "4242@elsewhere" in out["error"]


def test_6_the_api_stays_unreachable(tmp_path, monkeypatch):
    from pipelines.run.stopping import StopRequest

    monkeypatch.setattr(StopRequest, "sleep", lambda self, seconds: None)  # no backoff waits
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    result, out = run_json(tmp_path, str(JOB), "--target", closed, NYMBLE_API_KEY=API_KEY)
    assert (result.exit_code, out["status"], out["exit_code"]) == (6, "unreachable", 6)
    assert "unreachable" in out["error"] and out["balanced"]


def test_70_an_unexpected_error_is_one_line_and_a_crash_report(tmp_path, emulator, monkeypatch):
    from pipelines.run import sync_run

    def broken(*args, **kwargs):
        raise RuntimeError(f"a bug, near postgresql://u:secret-pw@db/erp and {API_KEY}")

    monkeypatch.setattr(sync_run, "admitted", broken)
    result, out = run_json(
        tmp_path, str(JOB), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
    )
    assert (result.exit_code, out["status"], out["exit_code"]) == (70, "crashed", 70)
    report = Path(out["crash_report"])
    assert report.is_file() and "Traceback" in report.read_text()
    assert "RuntimeError" in out["error"]
    for text in (result.output, report.read_text()):
        assert "secret-pw" not in text and API_KEY not in text
    with Ledger.connect(default_ledger_url(tmp_path), create=False) as ledger:
        assert ledger.recent_runs(limit=1)[0].status == "crashed"


@pytest.mark.parametrize("status", ["interrupted"])
def test_130_and_143_are_covered_by_real_signals(status):
    """SIGINT and SIGTERM need a real process: see test_signals.py."""
    assert status in Path("tests/test_signals.py").read_text()
