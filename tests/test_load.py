"""The loader's failure paths, over real HTTP against the emulator's injected faults."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from helpers import API_KEY, all_products, bulk_requests, run_sync

from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig
from pipelines.errors import AuthError
from pipelines.load.sender import RetryPolicy, Sender

FAST = RetryPolicy(base_s=0.01, cap_s=0.05, attempts=8)
JOB = Path("mappings/products.yml")
VALID = 1994  # valid products in sample_data/products.csv


def start(**faults) -> Emulator:
    return Emulator.start(
        EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=FaultConfig(seed=7, **faults))
    )


def bodies(n: int, bad: set[int] = frozenset()) -> list[bytes]:
    items = [
        {"externalId": f"E{i}", "sku": f"S{i}", "name": f"n{i}", "price": 1.5} for i in range(n)
    ]
    for i in bad:
        del items[i]["sku"]  # structurally invalid: the whole request is refused with 400
    return [orjson.dumps(item) for item in items]


def sender(emu: Emulator, key: str = API_KEY, timeout: float = 10.0) -> tuple[Sender, httpx.Client]:
    client = httpx.Client(base_url=emu.base_url, headers={"x-api-key": key}, timeout=timeout)
    return Sender(client, "/api/products/bulk", policy=FAST, seed=1), client


def count(emu: Emulator) -> int:
    return emu.stats()["records"].get("org_test", {}).get("products", 0)


def test_bisection_isolates_three_bad_items_and_lands_the_other_497():
    with start() as emu:
        send, client = sender(emu)
        with client:
            result = send.send(bodies(500, bad={3, 250, 499}))
        failed = [i for i, o in enumerate(result.outcomes) if o.status == "failed"]
        assert failed == [3, 250, 499]
        assert all("Sku" in result.outcomes[i].message for i in failed)
        assert count(emu) == 497
        assert result.requests <= 3 * 9 + 1  # bad × log2(batch) + 1


def test_a_too_large_body_is_split_until_it_fits():
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, max_body_bytes=20_000)
    with Emulator.start(settings) as emu:
        send, client = sender(emu)
        with client:
            result = send.send(bodies(500))
        assert result.shrink and {o.status for o in result.outcomes} == {"created"}
        assert count(emu) == 500


@pytest.mark.parametrize(
    "fault",
    [
        {"error_rate": 0.5},
        {"throttle_rate": 0.5},
        {"drop_rate": 0.4},
        {"commit_then_fail_rate": 0.5},
    ],
    ids=["5xx", "429", "dropped", "commit-then-fail"],
)
def test_transient_failures_are_retried_until_every_record_lands_once(fault):
    with start(**fault) as emu:
        send, client = sender(emu)
        with client:
            results = [send.send(bodies(500)[i : i + 50]) for i in range(0, 500, 50)]
        assert sum(r.retries for r in results) > 0
        assert all(o.status in ("created", "updated") for r in results for o in r.outcomes)
        assert count(emu) == 500  # idempotent by externalId: no duplicates after resends


def test_commit_then_timeout_is_safe_because_resending_is_idempotent():
    with start(
        commit_then_fail_rate=0.5, commit_then_fail_mode="delay", commit_then_fail_delay_s=1.0
    ) as emu:
        send, client = sender(emu, timeout=0.3)
        with client:
            results = [send.send(bodies(200)[i : i + 20]) for i in range(0, 200, 20)]
        assert sum(r.retries for r in results) > 0
        assert count(emu) == 200


def test_retry_after_is_honoured():
    slept: list[float] = []
    with start(rate_limit=1) as emu:
        client = httpx.Client(base_url=emu.base_url, headers={"x-api-key": API_KEY})
        send = Sender(client, "/api/products/bulk", policy=FAST, sleep=slept.append)
        with client:
            for i in range(3):
                send.send(bodies(3)[i : i + 1])
    assert slept and all(s >= 1 for s in slept)  # Retry-After seconds, not the 10 ms backoff


def test_a_wrong_key_stops_at_once_without_retrying():
    with start() as emu:
        send, client = sender(emu, key="wrong")
        with client, pytest.raises(AuthError, match="refused the API key"):
            send.send(bodies(5))
        assert bulk_requests(emu) == 1


def test_a_run_with_a_wrong_key_stops_and_accounts_for_every_row(tmp_path):
    from pipelines.run.commands import SyncSettings, sync

    with start() as emu:
        settings = SyncSettings(
            job_path=JOB,
            target=emu.base_url,
            state_dir=tmp_path,
            environ={"NYMBLE_API_KEY": "not-the-key"},
            log=lambda _: None,
            policy=FAST,
            concurrency=1,
        )
        with pytest.raises(AuthError) as err:
            sync(settings)
        assert "not-the-key" not in str(err.value)
        assert bulk_requests(emu) <= 2  # the first refusal stops the run


def test_items_the_api_refuses_are_reported_and_resent_next_run(tmp_path):
    with start(unknown_tiers=["Wholesale"]) as emu:
        rejects = tmp_path / "rejects.csv"
        first = run_sync(JOB, emu, tmp_path, policy=FAST, rejects_path=rejects)
        assert first.failed > 0 and first.balanced and first.status == "partial"
        with rejects.open(encoding="utf-8") as f:
            api_lines = [r for r in csv.DictReader(f) if r["rule"] == "api_failed"]
        assert len(api_lines) == first.failed
        assert "Unknown price tier 'Wholesale'" in api_lines[0]["message"]
        emu.set_faults(FaultConfig())
        second = run_sync(JOB, emu, tmp_path, policy=FAST)
        assert (second.created, second.unchanged) == (first.failed, VALID - first.failed)


def test_a_full_sync_through_every_fault_lands_every_record_exactly_once(tmp_path):
    source = tmp_path / "products.csv"
    shutil.copy("sample_data/products.csv", source)
    spec = yaml.safe_load(JOB.read_text())
    spec["source"]["path"] = str(source)
    spec["batch"] = {"max_items": 100, "timeout_s": 2}
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    faults = {
        "error_rate": 0.1,
        "throttle_rate": 0.05,
        "drop_rate": 0.01,
        "commit_then_fail_rate": 0.01,
    }
    with start(**faults) as emu:
        summary = run_sync(job, emu, tmp_path, policy=FAST)
        fired = emu.stats()["faults"]
        emu.set_faults(FaultConfig())
        with httpx.Client(base_url=emu.base_url, headers={"x-api-key": API_KEY}) as api:
            held = all_products(api)
        stored = count(emu)
    assert summary.retries > 0 and sum(fired.values()) > 0
    assert summary.failed == 0 and summary.created + summary.updated == VALID
    assert len(held) == VALID and stored == VALID


def test_an_unreachable_api_stops_the_run_with_exit_6(tmp_path):
    from pipelines.errors import TransportError
    from pipelines.run.commands import SyncSettings, sync

    settings = SyncSettings(
        job_path=JOB,
        target="http://127.0.0.1:1",
        state_dir=tmp_path,
        environ={"NYMBLE_API_KEY": API_KEY},
        log=lambda _: None,
        policy=FAST,
        concurrency=1,
        batch_items=100,
    )
    with pytest.raises(TransportError, match="stayed unreachable") as err:
        sync(settings)
    assert err.value.exit_code == 6


def test_a_failed_gate_in_a_run_exits_4(tmp_path, emulator):
    from click.testing import CliRunner

    from pipelines.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_text("sku,price_retail\n" + "".join(f"S{i},x\n" for i in range(50)))
    spec = yaml.safe_load(JOB.read_text())
    spec.update(
        source={"type": "csv", "path": str(bad)},
        prices=[],
        attributes={},
        fields={"sku": "sku", "price": "price_retail"},
    )
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["run", str(job), "--target", emulator.base_url])
    assert result.exit_code == 4 and "reject_rate" in result.output
    assert bulk_requests(emulator) == 0
