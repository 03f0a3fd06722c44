"""Alerts and metrics for unattended runs: the webhook message a real local receiver gets, the
warnings when it cannot get it, the Prometheus textfile as node_exporter's parser reads it, and
that no secret reaches either."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipelines.ops import alerts
from pipelines.ops.alerts import (
    STATUSES,
    alert_message,
    metrics_text,
    notify,
    scrub,
    write_metrics,
)

# A Slack-style webhook: the path is the secret, so no warning may show it.
HOOK_PATH = "/services/T0001/B0002/hook-path-secret?token=query-secret"
CANARY = "canary-123"
DB_PASSWORD = "hunter2pw"
ENDED = 1_700_000_000.0


def outcome(**overrides):
    base = {
        "job": "products-nightly",
        "entity": "products",
        "target": "sandbox",
        "run_id": 42,
        "status": "partial",
        "exit_code": 1,
        "rows_read": 2000,
        "rejected": 6,
        "held": 2,
        "unchanged": 0,
        "created": 1993,
        "updated": 0,
        "failed": 1,
        "skipped": 0,
        "elapsed_s": 12.5,
        "error": None,
        "notes": [],
    }
    return {**base, **overrides}


class Receiver:
    """A webhook receiver on loopback answering each POST with the next planned status."""

    def __init__(self, answers: list[int]):
        self.answers = list(answers)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append((self.path, dict(self.headers), body))
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll keeps shutdown() at teardown quick (the default waits up to 0.5 s).
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}{HOOK_PATH}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture(autouse=True)
def _fast_and_direct(monkeypatch):
    """No pause before the retry, and no proxy between the client and the loopback receiver."""
    monkeypatch.setattr(alerts, "RETRY_DELAY_S", 0)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(*answers: int) -> Receiver:
        started.append(Receiver(list(answers)))
        return started[-1]

    yield start
    for r in started:
        r.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{HOOK_PATH}"


# --- notify ----------------------------------------------------------------------------------


def test_a_run_that_did_not_succeed_posts_one_message(receiver):
    hook = receiver()
    warnings = notify([hook.url], outcome(error="3 records failed"), environ={})
    assert warnings == []
    assert len(hook.posts) == 1
    path, headers, raw = hook.posts[0]
    assert path == HOOK_PATH and headers["Content-Type"] == "application/json"
    body = json.loads(raw)
    lines = body["text"].splitlines()
    assert 1 <= len(lines) <= 2
    assert "products-nightly" in lines[0] and "partial" in lines[0] and "exit 1" in lines[0]
    assert "nymble-sync runs show 42" in body["text"] and "3 records failed" in body["text"]
    assert {k: body[k] for k in ("job", "entity", "target", "status", "exit_code", "run_id")} == {
        "job": "products-nightly",
        "entity": "products",
        "target": "sandbox",
        "status": "partial",
        "exit_code": 1,
        "run_id": 42,
    }
    counts = {k: body[k] for k in alerts.COUNT_FIELDS}
    assert counts == {k: outcome()[k] for k in alerts.COUNT_FIELDS}
    assert body["error"] == "3 records failed"
    assert body["runs_show"] == "nymble-sync runs show 42"


def test_a_succeeded_run_posts_nothing(receiver):
    hook = receiver()
    assert notify([hook.url], outcome(status="succeeded", exit_code=0), environ={}) == []
    assert hook.posts == []


def test_a_receiver_failing_twice_gives_a_warning_naming_only_its_host(receiver):
    hook = receiver(500, 500)
    warnings = notify([hook.url], outcome(), environ={})
    assert len(hook.posts) == 2  # the first try and one retry
    assert len(warnings) == 1 and hook.host in warnings[0] and "500" in warnings[0]
    assert "hook-path-secret" not in warnings[0] and "query-secret" not in warnings[0]


def test_one_5xx_is_retried_and_a_4xx_is_not(receiver):
    flaky, refusing = receiver(503), receiver(404)
    warnings = notify([flaky.url, refusing.url], outcome(), environ={})
    assert len(flaky.posts) == 2 and len(refusing.posts) == 1
    assert warnings == [f"could not notify {refusing.host}: answered HTTP 404"]


def test_an_unreachable_url_gives_a_warning_and_the_others_still_get_the_message(receiver):
    hook, dead = receiver(), closed_port_url()
    warnings = notify([dead, hook.url], outcome(), environ={})
    assert len(hook.posts) == 1
    assert len(warnings) == 1 and warnings[0].startswith("could not notify 127.0.0.1:")
    assert "hook-path-secret" not in warnings[0] and "query-secret" not in warnings[0]


def test_a_url_that_is_not_http_gives_a_warning(receiver):
    warnings = notify(["ftp://user:pw@files.example/x", "no url at all"], outcome(), environ={})
    assert len(warnings) == 2
    assert warnings[0].startswith("could not notify files.example:") and "pw" not in warnings[0]
    assert warnings[1].startswith("could not notify a notify URL without a host")


# --- secrets ---------------------------------------------------------------------------------


def secret_outcome():
    return outcome(
        status="auth_failed",
        exit_code=3,
        error=(
            f"API refused key {CANARY}; ledger postgresql+psycopg://sync:{DB_PASSWORD}@db:5432/l"
        ),
        notes=[f"retried with {CANARY}", f"key in a URL: https://x.test/?k={CANARY}"],
    )


def test_no_secret_reaches_the_posted_body_or_the_metrics_file(receiver, tmp_path):
    environ = {"NYMBLE_API_KEY": CANARY, "HOME": "/home/sync"}
    hook = receiver()
    assert notify([hook.url], secret_outcome(), environ=environ) == []
    raw = hook.posts[0][2].decode()
    assert CANARY not in raw and DB_PASSWORD not in raw
    body = json.loads(raw)
    assert "postgresql+psycopg://sync:***@db:5432/l" in body["error"]
    assert body["notes"][0] == "retried with ***"

    path = tmp_path / "nymble.prom"
    write_metrics(path, secret_outcome(), now=ENDED)
    text = path.read_text()
    assert CANARY not in text and DB_PASSWORD not in text


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("NYMBLE_API_KEY", True),
        ("SLACK_TOKEN", True),
        ("client_secret", True),
        ("PGPASSWORD", False),  # the suffix is _PASSWORD, with its underscore
        ("DB_PASSWORD", True),
        ("KEYBOARD", False),
    ],
)
def test_scrub_masks_values_of_secret_named_variables(name, masked):
    text = scrub("value sekrit-value here", {name: "sekrit-value"})
    assert text == ("value *** here" if masked else "value sekrit-value here")


def test_scrub_masks_url_passwords_and_leaves_short_values_and_plain_text():
    environ = {"SHORT_KEY": "1", "EMPTY_TOKEN": ""}
    assert scrub("run 1 of 1 failed", environ) == "run 1 of 1 failed"
    assert scrub("mysql://root:p@ss@db/x and http://host:80/path", {}) == (
        "mysql://root:***@db/x and http://host:80/path"
    )
    assert scrub("key ab%2Fcd%3D", {"A_KEY": "ab/cd="}) == "key ***"


# --- the message -----------------------------------------------------------------------------


def test_a_run_without_a_ledger_record_says_so_and_slack_markup_is_escaped():
    body = alert_message(
        outcome(run_id=None, status="locked", exit_code=5, error="held by <pid 7> & co"),
        environ={},
    )
    assert body["runs_show"] is None and body["run_id"] is None
    assert "no run was recorded" in body["text"]
    assert "held by &lt;pid 7&gt; &amp; co" in body["text"]
    assert body["error"] == "held by <pid 7> & co"  # the structured field stays raw


def test_missing_counts_count_as_zero():
    partial = {k: v for k, v in outcome().items() if k not in ("held", "skipped", "updated")}
    body = alert_message(partial, environ={})
    assert (body["held"], body["skipped"], body["updated"]) == (0, 0, 0)


# --- metrics ---------------------------------------------------------------------------------


def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_metrics_file_has_every_gauge_with_job_entity_and_target_labels(tmp_path):
    path = tmp_path / "nymble.prom"
    write_metrics(path, outcome(target="local emulator"), now=ENDED)
    found = families(path.read_text())
    prefix = "nymble_sync_last_run_"
    assert set(found) == {
        f"{prefix}{name}"
        for name in ("status", "duration_seconds", "rows", "end_timestamp_seconds", "exit_code")
    }
    labels = {"job": "products-nightly", "entity": "products", "target": "local emulator"}
    for family in found.values():
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            assert labels.items() <= sample.labels.items()

    status = {s.labels["status"]: s.value for s in found[f"{prefix}status"].samples}
    assert status == {name: float(name == "partial") for name in STATUSES}
    rows = {s.labels["outcome"]: s.value for s in found[f"{prefix}rows"].samples}
    assert rows == {
        "read": 2000,
        "rejected": 6,
        "held": 2,
        "unchanged": 0,
        "created": 1993,
        "updated": 0,
        "failed": 1,
        "skipped": 0,
    }
    assert found[f"{prefix}duration_seconds"].samples[0].value == 12.5
    assert found[f"{prefix}end_timestamp_seconds"].samples[0].value == ENDED
    assert found[f"{prefix}exit_code"].samples[0].value == 1


def test_writing_twice_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "nymble.prom"
    write_metrics(path, outcome(), now=ENDED)
    write_metrics(path, outcome(status="crashed", exit_code=1, rows_read=7), now=ENDED + 60)
    assert os.listdir(tmp_path) == ["nymble.prom"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter runs as another user
    found = families(path.read_text())
    status = {s.labels["status"]: s.value for s in found["nymble_sync_last_run_status"].samples}
    assert status["crashed"] == 1 and status["partial"] == 0
    assert found["nymble_sync_last_run_end_timestamp_seconds"].samples[0].value == ENDED + 60


def test_a_failed_write_raises_and_leaves_no_temp_file(tmp_path):
    with pytest.raises(OSError):
        write_metrics(tmp_path / "missing" / "nymble.prom", outcome())
    target = tmp_path / "is-a-dir.prom"
    target.mkdir()
    with pytest.raises(OSError):
        write_metrics(target, outcome())
    assert os.listdir(tmp_path) == ["is-a-dir.prom"]


def test_label_values_with_quotes_backslashes_and_newlines_are_escaped():
    odd = 'nightly "A"\\B\nC'
    text = metrics_text(outcome(job=odd, target="prod\\eu"), now=ENDED)
    assert '\\"A\\"\\\\B\\nC' in text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.labels["job"] == odd and sample.labels["target"] == "prod\\eu"


def test_an_unknown_status_gets_its_own_series():
    found = families(metrics_text(outcome(status="novel"), now=ENDED))
    status = {s.labels["status"]: s.value for s in found["nymble_sync_last_run_status"].samples}
    assert status["novel"] == 1 and sum(status.values()) == 1


# --- through the CLI -------------------------------------------------------------------------


def test_the_cli_alerts_and_writes_metrics_when_a_run_fails(receiver, emulator, tmp_path):
    """`run --notify URL --metrics-file PATH` with a refused key: one alert naming the run,
    a metrics file a Prometheus parser reads, and neither holds the key."""
    from click.testing import CliRunner

    from pipelines.cli import main

    hook, metrics = receiver(), tmp_path / "products.prom"
    args = ["run", "mappings/products.yml", "--target", emulator.base_url]
    args += ["--notify", hook.url, "--metrics-file", str(metrics)]
    env = {"NYMBLE_SYNC_HOME": str(tmp_path), "NYMBLE_API_KEY": "wrong-key-canary"}
    result = CliRunner(env=env).invoke(main, args)
    assert result.exit_code == 3, result.output
    [(_path, _headers, body)] = hook.posts
    message = json.loads(body)
    assert (message["status"], message["exit_code"], message["job"]) == (
        "auth_failed",
        3,
        "products",
    )
    assert f"nymble-sync runs show {message['run_id']}" in message["text"]
    text = metrics.read_text()
    status = {
        s.labels["status"]: s.value for s in families(text)["nymble_sync_last_run_status"].samples
    }
    assert status["auth_failed"] == 1 and sum(status.values()) == 1
    assert "wrong-key-canary" not in body.decode() + text

    ok = CliRunner(env={**env, "NYMBLE_API_KEY": "test-key-0123456789"}).invoke(main, args)
    assert ok.exit_code == 1, ok.output  # partial: the sample's bad rows; still not succeeded
    assert len(hook.posts) == 2 and json.loads(hook.posts[1][2])["status"] == "partial"
