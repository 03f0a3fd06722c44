"""The `rate_limit` fault's algorithms and headers: unit tests on an injected clock, then over
HTTP."""

from __future__ import annotations

import pytest

from pipelines.emulator.faults import FaultInjector
from pipelines.emulator.limiters import FixedWindow, SlidingLog, TokenBucket
from pipelines.emulator.settings import FaultConfig

from .helpers import KEY_B


def _admits(limiter, times: list[float], org: str = "org_a") -> list[bool]:
    return [limiter.admit(org, t).admitted for t in times]


def test_token_bucket_passes_a_burst_of_its_size_then_one_request_per_token() -> None:
    bucket = TokenBucket(rate=2, window_s=1)  # 2 tokens, 2 a second
    assert _admits(bucket, [0.0, 0.0, 0.0]) == [True, True, False]
    refused = bucket.admit("org_a", 0.1)
    assert (refused.admitted, refused.remaining) == (False, 0)
    assert refused.reset_s == pytest.approx(0.4)  # 0.2 tokens back by 0.1; one whole at 0.5
    assert _admits(bucket, [0.5, 0.5, 1.0, 2.0, 2.0, 2.0]) == [True, False, True, True, True, False]
    assert TokenBucket(rate=0.5, window_s=1).limit == 1  # never less than one request


def test_fixed_window_counts_from_each_boundary() -> None:
    window = FixedWindow(rate=3, window_s=1)
    assert _admits(window, [0.1, 0.2, 0.3, 0.4]) == [True, True, True, False]
    refused = window.admit("org_a", 0.75)
    assert (refused.admitted, refused.remaining, refused.reset_s) == (False, 0, 0.25)
    fresh = window.admit("org_a", 1.0)
    assert (fresh.admitted, fresh.remaining, fresh.reset_s) == (True, 2, 1.0)


def test_sliding_log_allows_at_most_the_limit_in_any_window() -> None:
    log = SlidingLog(rate=3, window_s=1)
    assert _admits(log, [0.0, 0.5, 0.9]) == [True, True, True]
    refused = log.admit("org_a", 0.95)
    assert not refused.admitted and refused.reset_s == pytest.approx(0.05)  # 0.0 leaves at 1.0
    assert _admits(log, [1.0, 1.2, 1.5]) == [True, False, True]
    assert log.admit("org_a", 1.6).remaining == 0  # 0.9, 1.0, 1.5 are in the window


def test_two_windows_worth_pass_a_fixed_window_boundary_but_not_a_sliding_log() -> None:
    burst = [0.8, 0.9, 1.0, 1.1]
    assert _admits(FixedWindow(rate=2, window_s=1), burst) == [True, True, True, True]
    assert _admits(SlidingLog(rate=2, window_s=1), burst) == [True, True, False, False]


@pytest.mark.parametrize("limiter", [TokenBucket, FixedWindow, SlidingLog])
def test_refusals_are_not_counted_and_each_org_has_its_own_limit(limiter) -> None:
    one = limiter(rate=1, window_s=1)
    assert _admits(one, [0.0] + [0.5] * 10) == [True] + [False] * 10
    assert _admits(one, [1.0]) == [True]  # the refused ten took nothing
    assert _admits(one, [1.0], org="org_b") == [True]


def _decide(faults: dict, now: float, wall: float = 1_800_000_000.0):
    injector = FaultInjector(FaultConfig(rate_limit=2, **faults), wall=lambda: wall)
    return [injector.decide("org_a", True, t) for t in now]


@pytest.mark.parametrize(
    ("style", "admitted", "refused"),
    [
        ("none", {}, {}),
        (
            "x_ratelimit",
            {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "0.900"},
            {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.700"},
        ),
        (
            "ietf_draft",
            {
                "RateLimit-Limit": "2",
                "RateLimit-Remaining": "1",
                "RateLimit-Reset": "1",
                "RateLimit-Policy": "2;w=1",
            },
            {
                "RateLimit-Limit": "2",
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": "1",
                "RateLimit-Policy": "2;w=1",
            },
        ),
        (
            "ietf_structured",
            {"RateLimit": '"default";r=1;t=1', "RateLimit-Policy": '"default";q=2;w=1'},
            {"RateLimit": '"default";r=0;t=1', "RateLimit-Policy": '"default";q=2;w=1'},
        ),
    ],
)
def test_each_header_style_announces_the_verdict(style, admitted, refused) -> None:
    faults = {"rate_limit_algorithm": "fixed_window", "rate_limit_headers": style}
    first, _second, third = _decide(faults, [0.1, 0.2, 0.3])
    assert (first.kind, dict(first.headers)) == (None, admitted)
    assert (third.kind, third.status, third.retry_after) == ("rate_limit", 429, 1)
    assert dict(third.headers) == refused


def test_a_reset_can_be_announced_as_a_unix_time() -> None:
    faults = {"rate_limit_headers": "x_ratelimit", "rate_limit_reset": "epoch"}
    (decision,) = _decide({**faults, "rate_limit_algorithm": "fixed_window"}, [0.25])
    assert decision.headers["X-RateLimit-Reset"] == "1800000000.750"


def test_headers_over_http_on_answers_and_refusals(client, admin, make_client) -> None:
    faults = {
        "rate_limit": 0.05,  # requests/s: 2 in a window of 40 s
        "rate_limit_algorithm": "sliding_log",
        "rate_limit_window_s": 40,
        "rate_limit_headers": "ietf_structured",
    }
    assert admin.post("/_emulator/faults", json=faults).status_code == 200
    answers = [client.get("/api/products") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["ratelimit-policy"] == '"default";q=2;w=40'
    assert answers[0].headers["ratelimit"] == '"default";r=1;t=40'  # the first leaves in 40 s
    assert answers[2].headers["ratelimit"].startswith('"default";r=0;t=')
    assert answers[2].json()["title"] == "Too Many Requests"
    assert int(answers[2].headers["retry-after"]) >= 39
    assert "ratelimit" not in admin.get("/_emulator/stats").headers  # admin routes: no limit
    other = make_client(KEY_B).get("/api/products")
    assert other.headers["ratelimit"] == '"default";r=1;t=40'  # its own log


def test_rate_limit_settings_are_checked(admin) -> None:
    for bad in (
        {"rate_limit_algorithm": "leaky"},
        {"rate_limit_headers": "x-ratelimit"},
        {"rate_limit_window_s": 0},
        {"rate_limit_reset": "unix"},
    ):
        response = admin.post("/_emulator/faults", json={"rate_limit": 5, **bad})
        assert response.status_code == 400, bad
        assert next(iter(bad)) in response.text


def test_without_headers_configured_none_are_sent(client, admin) -> None:
    assert admin.post("/_emulator/faults", json={"rate_limit": 100}).status_code == 200
    response = client.get("/api/products")
    assert response.status_code == 200
    assert not [name for name in response.headers if "ratelimit" in name]
