"""Seeded fault injection on /api routes: 429s, 5xx, latency, drops, commit-then-fail, items."""

from __future__ import annotations

import time

import httpx
import pytest

from pipelines.emulator import Emulator, FaultConfig

from .helpers import KEY_A, KEY_B, bulk, product


def _set(admin: httpx.Client, **faults) -> None:
    response = admin.post("/_emulator/faults", json=faults)
    assert response.status_code == 200, response.text


def test_rate_limit_gives_429_with_retry_after_per_org(client, admin, make_client) -> None:
    _set(admin, rate_limit=2)
    statuses = [client.get("/api/products").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/api/products")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["title"] == "Too Many Requests"
    assert make_client(KEY_B).get("/api/products").status_code == 200  # its own bucket
    assert admin.get("/_emulator/stats").status_code == 200  # admin routes are never limited


def test_throttle_rate_gives_429_retry_after_1(client, admin) -> None:
    _set(admin, throttle_rate=1)
    response = client.get("/api/products")
    assert (response.status_code, response.headers["retry-after"]) == (429, "1")


def _statuses(emulator: Emulator, n: int) -> list[int]:
    with httpx.Client(base_url=emulator.base_url, headers={"x-api-key": KEY_A}) as c:
        return [c.get("/api/products").status_code for _ in range(n)]


def test_random_errors_are_reproducible_with_a_seed(start_emulator) -> None:
    faults = FaultConfig(seed=7, error_rate=0.5)
    first = _statuses(start_emulator(faults=faults), 30)
    second = _statuses(start_emulator(faults=faults), 30)
    assert first == second
    assert {500, 502, 503} & set(first) and 200 in first
    assert set(first) <= {200, 500, 502, 503}
    other_seed = _statuses(start_emulator(faults=FaultConfig(seed=8, error_rate=0.5)), 30)
    assert other_seed != first


def test_latency_is_added(client, admin) -> None:
    _set(admin, latency_ms=200, jitter_ms=50)
    started = time.perf_counter()
    assert client.get("/api/products").status_code == 200
    assert time.perf_counter() - started >= 0.2


def test_drop_closes_the_connection_without_a_response(client, admin) -> None:
    _set(admin, drop_rate=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get("/api/products")
    stats = admin.get("/_emulator/stats").json()
    assert stats["requests"]["GET /api/products"] == {"dropped": 1}
    assert stats["faults"]["drop"] == 1


def test_commit_then_fail_drop_commits_the_write(client, admin) -> None:
    _set(admin, commit_then_fail_rate=1)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.post("/api/products/bulk", json=[product(1)])
    # Reads are never commit-then-fail, and the write is there.
    assert client.get("/api/products/SKU-001").status_code == 200
    assert admin.get("/_emulator/stats").json()["faults"]["commit_then_fail"] == 1


def test_commit_then_fail_delay_outlasts_the_client_timeout(client, admin) -> None:
    _set(admin, commit_then_fail_rate=1, commit_then_fail_mode="delay", commit_then_fail_delay_s=5)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/api/products/bulk", json=[product(1)], timeout=0.5)
    assert client.get("/api/products/SKU-001").status_code == 200


def test_unknown_tiers_and_fail_skus_fail_single_items(client, admin) -> None:
    _set(admin, unknown_tiers=["Gold"], fail_skus="SKU-002")
    items = [product(1, prices=[{"tier": "gold", "price": 1}]), product(2), product(3)]
    summary = bulk(client, items)
    assert [r["status"] for r in summary["results"]] == ["Failed", "Failed", "Created"]
    assert summary["results"][0]["errors"] == {"Prices": ["Unknown price tier 'gold'"]}
    assert "Sku" in summary["results"][1]["errors"]
    assert client.get("/api/products").json()["totalRecords"] == 1


def test_bad_fault_settings_are_400_and_keep_the_old_config(client, admin) -> None:
    _set(admin, latency_ms=1)
    for bad in ({"error_rate": 2}, {"nonsense": 1}, {"commit_then_fail_mode": "explode"}):
        response = admin.post("/_emulator/faults", json=bad)
        assert response.status_code == 400
    assert admin.get("/_emulator/faults").json()["latency_ms"] == 1


def test_set_faults_from_python(emulator: Emulator, client) -> None:
    emulator.set_faults(FaultConfig(error_rate=1))
    assert client.get("/api/products").status_code in {500, 502, 503}
    emulator.set_faults(FaultConfig())
    assert client.get("/api/products").status_code == 200
