"""The command line: help, exit codes and messages, through click's runner and a real process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from helpers import API_KEY

from pipelines.cli import main

README = Path("README.md").read_text(encoding="utf-8")


def commands(group=main, prefix="nymble-sync"):
    """Every command, subcommands of groups included, with the words that invoke it."""
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")


@pytest.mark.parametrize(("name", "command"), list(commands()), ids=lambda x: str(x))
def test_every_command_has_help_and_is_in_the_readme(name, command):
    result = CliRunner().invoke(main, [*name.split()[1:], "--help"])
    assert result.exit_code == 0
    assert command.help and len(command.help) > 20
    assert f"`{name}" in README, f"{name} is not documented in README.md"


def test_readme_opens_with_exactly_the_two_setup_commands():
    first_block = re.search(r"```[a-z]*\n(.*?)```", README, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert lines == ["make demo", "make test"]
    assert "make test" in Path(".ci/run").read_text()


def test_a_broken_job_file_exits_2_with_every_problem_and_no_traceback(tmp_path):
    job = tmp_path / "job.yml"
    job.write_text(
        "entity: products\nsource: {type: csv, path: x.csv}\nkey: sku\n"
        "fields: {sku: sku, prise: price}\n"
    )
    result = CliRunner().invoke(main, ["run", str(job), "--target", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "fields.prise: is not a Nymble product field (did you mean 'price'?)" in result.output
    assert "Traceback" not in result.output


def test_a_missing_source_file_is_a_clear_error(tmp_path, emulator):
    result = CliRunner(env={"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}).invoke(
        main,
        [
            "run",
            "mappings/products.yml",
            "--target",
            emulator.base_url,
            "--source",
            str(tmp_path / "missing.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "missing.csv" in result.output and "Traceback" not in result.output


def test_run_json_summary_and_exit_code_1_for_rejected_rows(tmp_path, emulator):
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(
        main, ["run", "mappings/products.yml", "--target", emulator.base_url, "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["balanced"] and summary["rejected"] == 6 and summary["created"] == 1994
    assert API_KEY not in result.output


def test_a_clean_source_exits_0(tmp_path, emulator):
    clean = tmp_path / "clean.csv"
    lines = Path("sample_data/products.csv").read_text(encoding="utf-8-sig").splitlines()
    clean.write_text("\n".join(lines[:50]) + "\n", encoding="utf-8")
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(
        main,
        ["run", "mappings/products.yml", "--target", emulator.base_url, "--source", str(clean)],
    )
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "balanced" in result.output


def test_the_local_target_needs_no_credentials(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "mappings/products.yml", "--json"],
        env={"PATH": "/usr/bin:/bin", "NYMBLE_SYNC_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["created"] == 1994
    assert (tmp_path / "emulator.sqlite").exists() and (tmp_path / "ledger.sqlite").exists()


def test_log_format_json_gives_one_json_object_per_stderr_line(tmp_path, emulator):
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(
        main,
        ["run", "mappings/products.yml", "--target", emulator.base_url, "--log-format", "json"],
    )
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert events and all("at" in e and "event" in e for e in events)
    assert any(e["event"] == "progress" and e["rows_read"] == 2000 for e in events)


def test_plain_log_lines_are_timestamped_for_cron(tmp_path, emulator):
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(
        main, ["run", "mappings/products.yml", "--target", emulator.base_url]
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", line) for line in lines)


@pytest.mark.parametrize("command", ["run", "plan", "validate"])
def test_source_cannot_replace_a_sql_source(command, tmp_path):
    """`--source` names a file; a job reading SQL would silently ignore it (and a run would
    still skip mirror mode): refused with exit 2 before anything is read."""
    env = {"NYMBLE_SYNC_HOME": str(tmp_path), "ERP_DATABASE_URL": "sqlite:///nowhere.sqlite"}
    args = [command, "mappings/orders_sql.yml", "--source", "sample_data/orders.csv"]
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert "replaces a file source, but mappings/orders_sql.yml reads SQL" in result.output
    assert not (tmp_path / "ledger.sqlite").exists()


def test_a_bad_option_value_is_a_usage_error_not_a_crash(tmp_path):
    from click.testing import CliRunner

    from pipelines.cli import main

    result = CliRunner().invoke(
        main, ["emulator", "--fault", "error_rate=2"], env={"NYMBLE_SYNC_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert not list(tmp_path.rglob("crash*"))
