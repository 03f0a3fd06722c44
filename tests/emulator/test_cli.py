"""`python -m pipelines.emulator` serves, and the option parsers behave."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipelines.emulator import (
    FaultConfig,
    parse_api_keys,
    parse_fault_specs,
    settings_from_options,
)

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_module_serves_until_terminated(tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "pipelines.emulator",
        "--port",
        str(port),
        "--api-key",
        "k1=org_cli",
        "--db",
        str(tmp_path / "cli.db"),
        "--fault",
        "latency_ms=1",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/_emulator/stats", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.1)
        assert httpx.get(f"{base}/api/products", headers={"x-api-key": "k1"}).status_code == 200
        assert httpx.get(f"{base}/api/products").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert base in out and "k1" in out


def test_parse_fault_specs() -> None:
    config = parse_fault_specs(
        [
            "error_rate=0.1",
            "latency_ms=50",
            "unknown_tiers=Gold,Platinum",
            "commit_then_fail_mode=delay",
            "rate_limit=none",
        ]
    )
    assert config == FaultConfig(
        error_rate=0.1,
        latency_ms=50,
        unknown_tiers=["Gold", "Platinum"],
        commit_then_fail_mode="delay",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bogus=1", "unknown fault"),
        ("error_rate", "KEY=VALUE"),
        ("error_rate=abc", "error_rate"),
        ("drop_rate=1.5", "drop_rate"),
        ("commit_then_fail_mode=boom", "commit_then_fail_mode"),
    ],
)
def test_bad_fault_specs_raise_value_error(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault_specs([spec])


def test_parse_api_keys_and_settings_from_options() -> None:
    assert parse_api_keys(["a=org_1", "b = org_2"]) == {"a": "org_1", "b": "org_2"}
    with pytest.raises(ValueError, match="KEY=ORG"):
        parse_api_keys(["no-org"])
    settings = settings_from_options(["a=org_1"], "x.db", ["seed=3"], max_bulk_items=10)
    assert (settings.db_path, settings.max_bulk_items, settings.faults.seed) == ("x.db", 10, 3)
    assert settings_from_options([], None, []).max_bulk_items == 1000
