"""A command loads only what it uses: a CSV job without an expectation suite, run through the
CLI in a fresh interpreter against the emulator, never imports the heavy libraries that only
other jobs, other databases or a terminal need (issue: cron-sized runs cost almost nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import API_KEY, run_sync

from pipelines.errors import JobFileError
from pipelines.jobs.job_file import read_yaml

# Whole packages a CSV job with a SQLite ledger and no suite has no use for.
HEAVY = ("great_expectations", "pandas", "psycopg", "psycopg2", "pymysql", "rich")
# Parts of libraries it does use that only other jobs need.
HEAVY_PARTS = ("pyarrow.parquet",)
LEDGER_DIALECT = "sqlalchemy.dialects.sqlite"

# Runs the CLI as `nymble-sync` does, then writes to the file in argv[1] what was loaded, the
# addresses sockets connected to and the names of the threads started.
SCRIPT = """
import json, sys, threading

connects, threads = [], []
sys.addaudithook(
    lambda event, args: connects.append(list(args[1])) if event == "socket.connect" else None
)
start = threading.Thread.start
def recorded_start(thread):
    threads.append(thread.name)
    start(thread)
threading.Thread.start = recorded_start

from pipelines.cli import main

try:
    main(sys.argv[2:], prog_name="nymble-sync")
except SystemExit as done:
    code = done.code
arrow = sys.modules.get("pyarrow")
try:  # bytes Arrow ever took from mimalloc, its allocator unless told otherwise
    mimalloc = arrow.mimalloc_memory_pool().max_memory() if arrow else 0
except NotImplementedError:
    mimalloc = 0
with open(sys.argv[1], "w") as out:
    json.dump(
        {"exit": code, "modules": sorted(sys.modules), "connects": connects, "threads": threads,
         "mimalloc": mimalloc},
        out,
    )
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
    loaded, summary = _cli(command, csv_job, emulator, tmp_path)
    assert heavy_loaded(loaded["modules"]) == []
    if command == "run":  # it did the work: three records sent
        assert summary["created"] == 3
        assert LEDGER_DIALECT in loaded["modules"]
    if sys.platform == "linux":  # one Arrow allocator, jemalloc: a second one costs ~4 MB
        assert loaded["mimalloc"] == 0


def test_a_run_with_nothing_to_send_makes_no_http_client_and_starts_no_sender(
    csv_job, emulator, tmp_path
):
    """The same job twice: the first run sends its three records (an HTTP client, a
    connection to the target, a sending thread); the second finds nothing changed and makes
    none of them."""
    port = emulator.base_url.rsplit(":", 1)[1]
    first, summary = _cli("run", csv_job, emulator, tmp_path)
    assert summary["created"] == 3
    assert "httpcore" in first["modules"]  # httpx loads its transport when a client is made
    assert [int(port)] in [address[1:] for address in first["connects"]]
    assert "send_0" in first["threads"]
    again, summary = _cli("run", csv_job, emulator, tmp_path)
    assert (summary["unchanged"], summary["sent"]) == (3, 0)
    assert "httpcore" not in again["modules"]
    assert all(address[1] != int(port) for address in again["connects"])
    assert not [name for name in again["threads"] if name.startswith("send")]


def _cli(command: str, job, emulator, tmp_path) -> tuple[dict, dict]:
    """Run the CLI in a fresh interpreter: what it loaded, connected to and started, and its
    JSON summary."""
    report = tmp_path / "modules.json"
    args = [command, str(job), "--target", emulator.base_url, "--json"]
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
    return loaded, json.loads(done.stdout)


def test_the_client_made_on_first_request_goes_through_the_proxy_the_environment_names(
    csv_job, emulator, tmp_path, monkeypatch
):
    """httpx reads HTTP_PROXY when a client is made: made later, it still does (a client
    given a transport of its own would not)."""
    with _forwarding_proxy() as (proxy_url, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        summary = run_sync(csv_job, emulator, tmp_path)
    assert summary.created == 3
    assert seen == [f"POST {emulator.base_url}/api/products/bulk"]


@contextmanager
def _forwarding_proxy():
    """A plain HTTP proxy on loopback: forwards each request it is sent (absolute-form, as
    clients send them to a proxy) and records its request line."""
    seen: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            seen.append(f"{self.command} {self.path}")
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            with httpx.Client(trust_env=False) as upstream:
                answer = upstream.request(self.command, self.path, content=body, headers=headers)
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", ""))
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


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


JOB_FILES = sorted((Path(__file__).parents[1] / "mappings").glob("*.yml"))


@pytest.mark.parametrize("path", JOB_FILES, ids=lambda p: p.name)
def test_a_job_file_reads_as_the_python_yaml_parser_reads_it(path):
    """Job files are parsed by libyaml (~1 ms, not ~7): the same values as PyYAML's own."""
    assert read_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_a_yaml_mistake_is_shown_where_it_is(tmp_path):
    path = tmp_path / "job.yml"
    path.write_text("job: x\nfields: [sku, name\nkey: sku\n")
    with pytest.raises(JobFileError) as err:
        read_yaml(path)
    message = str(err.value)
    assert "not valid YAML" in message
    assert "fields: [sku, name" in message and "^" in message  # the line, and a caret under it
