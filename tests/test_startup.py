"""A command loads only what it uses: a CSV job without an expectation suite, run through the
CLI in a fresh interpreter against the emulator, never imports the heavy libraries that only
other jobs, other databases or a terminal need (issue: cron-sized runs cost almost nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import API_KEY

# Whole packages a CSV job with a SQLite ledger and no suite has no use for.
HEAVY = ("great_expectations", "pandas", "psycopg", "psycopg2", "pymysql", "rich")
# Parts of libraries it does use that only other jobs need.
HEAVY_PARTS = ("pyarrow.parquet",)
LEDGER_DIALECT = "sqlalchemy.dialects.sqlite"

# Runs the CLI as `nymble-sync` does, then writes what was loaded to the file in argv[1].
SCRIPT = """
import json, sys
from pipelines.cli import main

try:
    main(sys.argv[2:], prog_name="nymble-sync")
except SystemExit as done:
    code = done.code
with open(sys.argv[1], "w") as out:
    json.dump({"exit": code, "modules": sorted(sys.modules)}, out)
"""

CSV = (
    "sku,name,price,qty\n"
    "SKU-1,Hex Bolt,1.50,10\n"
    "SKU-2,Wood Screw,0.20,300\n"
    "SKU-3,Claw Hammer,12.00,4\n"
)
JOB = """job: startup
entity: products
source: {{type: csv, path: {path}}}
key: sku
fields:
  sku: sku
  name: name
  price: price
  quantityOnHand: qty
  currencyCode: {{value: USD}}
"""


def heavy_loaded(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if name.split(".")[0] in HEAVY
        or name in HEAVY_PARTS
        or (
            name.startswith("sqlalchemy.dialects.")
            and name != "sqlalchemy.dialects._typing"
            and not name.startswith(LEDGER_DIALECT)
        )
    ]


@pytest.fixture
def csv_job(tmp_path):
    source = tmp_path / "products.csv"
    source.write_text(CSV)
    job = tmp_path / "job.yml"
    job.write_text(JOB.format(path=source))
    return job


@pytest.mark.parametrize("command", ["run", "plan", "validate"])
def test_a_csv_job_without_a_suite_loads_no_heavy_library(command, csv_job, emulator, tmp_path):
    report = tmp_path / "modules.json"
    args = [command, str(csv_job), "--target", emulator.base_url, "--json"]
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path / "state")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(report), *args],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(report.read_text())
    assert loaded["exit"] == 0, done.stderr
    assert heavy_loaded(loaded["modules"]) == []
    if command == "run":  # it did the work: three records sent
        assert json.loads(done.stdout)["created"] == 3
        assert LEDGER_DIALECT in loaded["modules"]


def test_the_check_names_what_it_is_given():
    modules = ["pandas.core", "sqlalchemy.dialects.postgresql.base", LEDGER_DIALECT, "rich"]
    assert heavy_loaded(modules) == ["pandas.core", "sqlalchemy.dialects.postgresql.base", "rich"]


def _base_env() -> dict[str, str]:
    # Not the test process's own settings (a NYMBLE_LEDGER_URL would point elsewhere).
    return {k: v for k, v in os.environ.items() if not k.startswith("NYMBLE_")}


COLLECTOR = """
import gc, sys
from pipelines.ops.memory import before_exit, loading_code

if sys.argv[1] == "loaded":
    import pipelines.run.commands
with loading_code():
    import pipelines.run.commands
frozen = gc.get_freeze_count()
before_exit()
print(frozen > 0, gc.get_freeze_count() > 0, gc.isenabled())
"""


@pytest.mark.parametrize(
    ("process", "expected"),
    [("fresh", "True True True"), ("loaded", "False False True")],
    ids=["a-command-freezes-its-code", "a-process-that-had-it-is-left-alone"],
)
def test_the_code_a_command_loads_is_frozen_only_in_its_own_process(process, expected):
    done = subprocess.run(
        [sys.executable, "-c", COLLECTOR, process], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected.split()
