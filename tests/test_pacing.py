"""Pacing to a server's limit: reading rate-limit headers, the pacer's decisions on a fake
clock, and a run against a limiter with headers over real HTTP."""

from __future__ import annotations

import queue
import shutil
import threading
from pathlib import Path

import httpx
import pytest
import yaml
from helpers import API_KEY, all_products, run_sync

from pipelines.emulator import Emulator, EmulatorSettings, FaultConfig
from pipelines.load.limit_learning import BACKOFF, HEADROOM
from pipelines.load.pacing import Pacer
from pipelines.load.rate_headers import Quota, read_quota, retry_after_s
from pipelines.load.sender import RetryPolicy

NOW = 1_800_000_000.0  # a Unix time for resets and dates


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "12"},
            Quota(limit=60, remaining=7, reset_s=12),
        ),
        (
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": f"{NOW + 30:.0f}"},
            Quota(remaining=0, reset_s=30),
        ),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{(NOW + 2.5) * 1000:.0f}"},
            Quota(remaining=0, reset_s=2.5),
        ),
        (
            {"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "0.250"},
            Quota(remaining=3, reset_s=0.25),
        ),
        (
            {"X-RateLimit-Reset": f"{NOW + 9:.0f}", "X-RateLimit-Reset-After": "0.75"},
            Quota(reset_s=0.75),
        ),
        (
            {"RateLimit-Limit": "20", "RateLimit-Remaining": "4", "RateLimit-Reset": "1"},
            Quota(limit=20, remaining=4, reset_s=1, coarse=True),
        ),
        (
            {
                "RateLimit-Limit": "20",
                "RateLimit-Remaining": "4",
                "RateLimit-Reset": "5",
                "RateLimit-Policy": "20;w=10, 1000;w=3600",
            },
            Quota(limit=20, remaining=4, reset_s=5, window_s=10),
        ),
        (
            {"RateLimit-Limit": "10, 10;w=1, 1000;w=3600", "RateLimit-Remaining": "9"},
            Quota(limit=10, remaining=9, window_s=1),
        ),
        (
            {"RateLimit": "limit=100, remaining=50, reset=30", "RateLimit-Policy": "100;w=60"},
            Quota(limit=100, remaining=50, reset_s=30, window_s=60),
        ),
        (
            {
                "RateLimit": '"burst";r=40;t=1, "daily";r=0;t=3000',
                "RateLimit-Policy": '"burst";q=50;w=1, "daily";q=1000;w=86400',
            },
            Quota(limit=1000, remaining=0, reset_s=3000, window_s=86400),
        ),
        (
            {"RateLimit": '"default";r=3;t=1', "X-RateLimit-Remaining": "99"},
            Quota(remaining=3, reset_s=1, coarse=True),
        ),
        (
            {"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "-4"},
            Quota(),
        ),
    ],
    ids=[
        "x-delta",
        "x-epoch-seconds",
        "x-epoch-ms",
        "x-fraction",
        "x-reset-after",
        "draft-coarse",
        "draft-policy",
        "draft-limit-with-window",
        "draft-07-dictionary",
        "structured-least-remaining",
        "structured-wins",
        "unreadable",
    ],
)
def test_rate_limit_headers_are_read(headers, expected) -> None:
    assert read_quota(httpx.Headers(headers), now=NOW) == expected
    assert read_quota(headers, now=NOW) == expected  # a plain mapping reads the same


def test_no_rate_limit_headers_is_no_quota() -> None:
    assert read_quota(httpx.Headers({"content-type": "application/json"})) is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        ("Fri, 15 Jan 2027 08:00:30 GMT", 30.0),
        ("Fri, 15 Jan 2027 07:59:00 GMT", 0.0),  # already past: go now
        ("soon", None),
        ("", None),
    ],
)
def test_retry_after_as_seconds_or_an_http_date(value, seconds) -> None:
    assert retry_after_s(value, now=NOW) == seconds  # NOW is 2027-01-15 08:00:00 UTC


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _pacer(in_flight: int = 4) -> tuple[Pacer, FakeTime]:
    time = FakeTime()
    return Pacer(in_flight, clock=time.clock, sleep=time.sleep), time


def _ok(pacer: Pacer, quota: Quota | None = None) -> None:
    pacer.acquire()
    pacer.release(throttled=False, latency_s=0.01, quota=quota)


def test_nothing_is_paced_until_the_server_pushes_back() -> None:
    pacer, time = _pacer()
    for _ in range(50):
        _ok(pacer)
    assert pacer.rate is None and time.now == 100.0


def test_the_first_429_sets_the_pace_under_what_the_server_admitted_and_holds_for_it() -> None:
    pacer, time = _pacer()
    for _ in range(20):
        _ok(pacer)  # 20 admitted within the second
    pacer.acquire()
    pacer.release(throttled=True, latency_s=0.01, retry_after=1.0)
    assert pacer.rate == pytest.approx(BACKOFF * 20)
    pacer.acquire()
    assert time.now == pytest.approx(101.0)  # every start waited for the Retry-After
    pacer.release(throttled=False, latency_s=0.01)
    pacer.acquire()
    assert time.now == pytest.approx(101.0 + 1 / pacer.rate, rel=0.01)  # then at the pace


class InFlight:
    """One request on its own thread, as the send pool runs it: started now, answered later
    (a pacer pairs each answer with the request its thread started)."""

    def __init__(self, pacer: Pacer) -> None:
        self._answer: queue.Queue[dict] = queue.Queue()
        started = threading.Event()

        def run() -> None:
            pacer.acquire()
            started.set()
            pacer.release(**self._answer.get())

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert started.wait(5)

    def answer(self, **how) -> None:
        self._answer.put({"throttled": False, "latency_s": 0.01, **how})
        self._thread.join(5)


def test_a_first_request_refused_waits_but_sets_no_pace() -> None:
    pacer, time = _pacer()
    pacer.acquire()
    pacer.release(throttled=True, latency_s=0.01, retry_after=2.0)
    assert pacer.rate is None  # nothing was admitted: the limit is still unknown
    _ok(pacer)
    _ok(pacer)
    assert time.now == pytest.approx(102.0)  # both after the Retry-After, neither paced


def test_a_few_answers_a_second_are_measured_over_several_seconds() -> None:
    pacer, time = _pacer()
    for _ in range(10):
        _ok(pacer)
        time.now += 0.5  # 2 requests a second
    pacer.acquire()
    pacer.release(throttled=True, latency_s=0.01)
    assert pacer.rate == pytest.approx(BACKOFF * 2)  # 10 in the last 5 s, not 2 in 1 s


def test_a_429_of_a_request_sent_before_the_cut_does_not_cut_again() -> None:
    pacer, _ = _pacer()
    for _ in range(10):
        _ok(pacer)
    earlier, refused = InFlight(pacer), InFlight(pacer)  # sent one after the other
    refused.answer(throttled=True)
    rate = pacer.rate
    assert rate == pytest.approx(BACKOFF * 11)  # 10 admitted, and the earlier one most likely
    earlier.answer(throttled=True)  # refused too, but it was on its way before the cut
    assert pacer.rate == rate and pacer.throttled == 2


def test_an_announced_policy_sets_the_pace_without_a_429() -> None:
    pacer, _ = _pacer()
    _ok(pacer, Quota(limit=20, remaining=19, reset_s=1, window_s=1, coarse=True))
    assert pacer.rate == pytest.approx(HEADROOM * 20)


def test_an_announced_policy_also_holds_over_the_burst_sent_before_it_was_known() -> None:
    pacer, time = _pacer()
    for _ in range(4):
        _ok(pacer)  # unpaced: nothing is known yet
    _ok(pacer, Quota(limit=5, remaining=0, reset_s=1, window_s=1, coarse=True))
    assert time.now == 100.0
    pacer.acquire()  # a sixth within the second would break "5 a second" (a sliding log)
    assert time.now == pytest.approx(101.03)  # with a margin for the way to the server


def test_a_spent_quota_waits_for_a_precise_reset() -> None:
    pacer, time = _pacer()
    _ok(pacer, Quota(limit=5, remaining=3, reset_s=0.4))
    for _ in range(3):
        _ok(pacer)  # spends the three left
    assert time.now == 100.0 and pacer.rate is None
    pacer.acquire()
    assert time.now == pytest.approx(100.4)
    assert pacer.estimate.ceiling == 4  # spent in no time: a limit was found, 4 a second


def test_a_reset_in_whole_seconds_under_two_is_not_waited_for() -> None:
    pacer, time = _pacer()
    _ok(pacer, Quota(limit=20, remaining=0, reset_s=1, window_s=1, coarse=True))
    _ok(pacer)
    pacer.acquire()
    assert time.now == pytest.approx(100.0 + 1 / (HEADROOM * 20))  # only the pace


def test_requests_in_flight_count_against_the_announced_remaining() -> None:
    pacer, time = _pacer()
    a = InFlight(pacer)  # its answer will say 2 remain ...
    b, c = InFlight(pacer), InFlight(pacer)  # ... and these two, sent before it, spend them
    a.answer(quota=Quota(remaining=2, reset_s=0.5))
    pacer.acquire()  # so this one waits for the reset
    assert time.now == pytest.approx(100.5)
    b.answer()
    c.answer()


JOB = Path("mappings/products.yml")
VALID = 1994  # valid products in sample_data/products.csv


@pytest.mark.parametrize("style", ["x_ratelimit", "ietf_structured"])
def test_a_run_against_a_limiter_with_headers_lands_every_record_once(tmp_path, style) -> None:
    source = tmp_path / "products.csv"
    shutil.copy("sample_data/products.csv", source)
    spec = yaml.safe_load(JOB.read_text())
    spec["source"]["path"] = str(source)
    spec["batch"] = {"max_items": 50}  # 40 requests
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump(spec))
    faults = FaultConfig(
        rate_limit=25,
        rate_limit_algorithm="fixed_window",
        rate_limit_window_s=0.5,
        rate_limit_headers=style,
    )
    settings = EmulatorSettings(api_keys={API_KEY: "org_test"}, faults=faults)
    fast = RetryPolicy(base_s=0.01, cap_s=0.05, attempts=8)
    with Emulator.start(settings) as emu:
        summary = run_sync(job, emu, tmp_path, policy=fast)
        requests = emu.stats()["requests"]["POST /api/products/bulk"]
        emu.set_faults(FaultConfig())
        with httpx.Client(base_url=emu.base_url, headers={"x-api-key": API_KEY}) as api:
            held = all_products(api)
    assert summary.failed == 0 and summary.created == VALID
    assert len(held) == VALID
    assert requests["200"] >= VALID // 50  # every batch accepted, some perhaps after a 429
    assert summary.throttled == requests.get("429", 0)
