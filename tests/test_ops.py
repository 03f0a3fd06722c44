"""Operating nymble-sync: `runs`, `runs show`, `why` and `doctor` through the CLI, after real
syncs against the emulator over loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import API_KEY, run_sync

from pipelines.cli import main
from pipelines.ledger import Ledger
from pipelines.run.resources import default_ledger_url
from pipelines.targets import fingerprint

JOB = Path("mappings/products.yml")
FAILING_SKU = "PWT-10005-SV"  # the emulator refuses it (fault fail_skus)
CREATED_SKU = "FST-10012-SV"
REJECTED_SKU = "FST-11243-GN"  # a negative price in the sample: rejected before sending


@pytest.fixture
def state(tmp_path, emulator, api):
    """Two syncs of the sample: the first creates all but one refused SKU, the second
    sends only that one again. Returns the state directory holding the ledger."""
    api.post("/_emulator/faults", json={"fail_skus": [FAILING_SKU]}).raise_for_status()
    run_sync(JOB, emulator, tmp_path)
    run_sync(JOB, emulator, tmp_path)
    return tmp_path / "state"


def cli(state: Path | None, *args: str, **env: str):
    env = {"NYMBLE_SYNC_HOME": str(state), **env} if state else env
    return CliRunner(env={"NYMBLE_LEDGER_URL": None, **env}).invoke(main, list(args))


def test_runs_lists_the_newest_first_with_counts_and_status(state):
    result = cli(state, "runs", "--json")
    assert result.exit_code == 0, result.output
    second, first = json.loads(result.stdout)
    assert (first["run_id"], second["run_id"]) == (1, 2)
    assert first["counts"] == {
        "read": 2000,
        "rejected": 6,
        "unchanged": 0,
        "created": 1993,
        "updated": 0,
        "failed": 1,
    }
    assert second["counts"]["unchanged"] == 1993 and second["counts"]["failed"] == 1
    assert first["status"] == "partial" and first["target"].startswith("http://127.0.0.1:")
    assert first["duration_s"] > 0

    text = cli(state, "runs").stdout
    assert "recent runs" in text and "1,993" in text and "partial" in text
    assert [
        r["run_id"] for r in json.loads(cli(state, "runs", "--limit", "1", "--json").stdout)
    ] == [2]
    assert json.loads(cli(state, "runs", "--job", "other", "--json").stdout) == []


def test_runs_show_has_the_batches_timings_and_rejects_file(state):
    result = cli(state, "runs", "show", "1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["run"]["rejects_path"].endswith("rejects/products-run1.csv")
    assert shown["run"]["started_at"] and shown["run"]["finished_at"]
    assert sum(b["items"] for b in shown["batches"]) == 1994
    assert {(b["status"], b["http_status"]) for b in shown["batches"]} == {("acked", 200)}
    assert all(b["attempts"] >= 1 and b["seconds"] is not None for b in shown["batches"])

    text = cli(state, "runs", "show", "1").stdout
    assert "rejects file" in text and "products-run1.csv" in text and "attempts" in text

    missing = cli(state, "runs", "show", "99")
    assert missing.exit_code == 2 and "has no run 99" in missing.output


def test_why_tells_a_record_s_story_across_runs(state):
    failed = json.loads(cli(state, "why", FAILING_SKU, "--json").stdout)
    assert [e["run_id"] for e in failed["events"]] == [2, 1]
    assert {e["status"] for e in failed["events"]} == {"failed"}
    assert "Simulated failure" in failed["last_error"]
    assert len(failed["events"][0]["content_hash"]) == 16

    created = json.loads(cli(state, "why", CREATED_SKU, "--json").stdout)
    assert [(e["run_id"], e["status"], e["http_status"]) for e in created["events"]] == [
        (1, "created", 200)
    ]
    text = cli(state, "why", CREATED_SKU).stdout
    assert "last sent" in text and "run 1" in text and "created" in text

    rejected = cli(state, "why", REJECTED_SKU)
    assert rejected.exit_code == 0 and "negative_price" in rejected.stdout
    assert "products-run1.csv" in rejected.stdout

    unknown = cli(state, "why", "NO-SUCH-SKU")
    assert unknown.exit_code == 0 and "never sent" in unknown.stdout


def test_reading_a_ledger_that_does_not_exist_creates_nothing(tmp_path):
    for args in (["runs"], ["runs", "show", "1"], ["why", "X"]):
        result = cli(tmp_path / "nowhere", *args)
        assert result.exit_code == 2 and "does not exist" in result.output, args
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.services
def test_runs_reads_a_postgresql_ledger(tmp_path, emulator, pg_url):
    run_sync(JOB, emulator, tmp_path, ledger_url=pg_url)
    result = cli(tmp_path / "elsewhere", "runs", "--ledger", pg_url, "--json")
    assert result.exit_code == 0, result.output
    assert [r["counts"]["created"] for r in json.loads(result.stdout)] == [1994]
    env_result = cli(tmp_path / "elsewhere", "runs", "--json", NYMBLE_LEDGER_URL=pg_url)
    assert json.loads(env_result.stdout) == json.loads(result.stdout)


# --- the lock, seen from the CLI ------------------------------------------------------------


def test_a_second_run_of_the_same_job_and_target_exits_5_naming_the_holder(tmp_path, emulator):
    state = tmp_path / "state"
    with Ledger.connect(default_ledger_url(state)) as ledger:
        target_id = fingerprint(emulator.base_url, API_KEY)
        with ledger.acquire_lock(job="products", target_id=target_id, holder="4242@elsewhere"):
            result = cli(
                state, "run", str(JOB), "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY
            )
    assert result.exit_code == 5, result.output
    assert "4242@elsewhere" in result.output and "try again later" in result.output
    assert cli(state, "runs", "--json").stdout.strip() == "[]"  # nothing was recorded


# --- doctor -------------------------------------------------------------------------------


def test_doctor_passes_with_a_good_key(tmp_path, emulator):
    result = cli(tmp_path, "doctor", "--target", emulator.base_url, NYMBLE_API_KEY=API_KEY)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["✓", "ledger"],
        ["✓", "target"],
        ["✓", "connect"],
        ["✓", "key"],
        ["✓", "clock"],
    ]
    assert "reachable and writable" in lines[0] and "accepted the key" in lines[3]


def test_doctor_reports_a_refused_key_with_exit_3(tmp_path, emulator):
    result = cli(tmp_path, "doctor", "--target", emulator.base_url, NYMBLE_API_KEY="wrong")
    assert result.exit_code == 3, result.output
    assert "✗ key      the API refused this key (401): check NYMBLE_API_KEY" in result.stdout


def test_doctor_reports_an_unreachable_host_with_exit_6(tmp_path):
    result = cli(tmp_path, "doctor", "--target", "http://127.0.0.1:1", NYMBLE_API_KEY=API_KEY)
    assert result.exit_code == 6, result.output
    assert "✗ connect  cannot connect to 127.0.0.1:1" in result.stdout
    assert "key " not in result.stdout  # nothing to ask an API that cannot be reached


def test_doctor_without_a_key_or_ledger_is_a_config_problem(tmp_path):
    no_key = cli(tmp_path, "doctor", "--target", "sandbox")
    assert no_key.exit_code == 2 and "✗ target   no API key" in no_key.stdout
    bad_ledger = cli(tmp_path, "doctor", "--ledger", "postgresql+psycopg://u@127.0.0.1:1/x")
    assert bad_ledger.exit_code == 2 and bad_ledger.stdout.startswith("✗ ledger")


def test_doctor_on_the_local_target_needs_no_credentials(tmp_path):
    result = cli(tmp_path, "doctor", "--target", "local")
    assert result.exit_code == 0, result.output
    assert "local emulator" in result.stdout
