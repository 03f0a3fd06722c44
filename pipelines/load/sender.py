"""Sending batches to a bulk endpoint: one POST, the retry policy around it, and the
splitting of a refused batch until every good record lands.

Layers, innermost first: ``_post_once`` (the only code that touches the network, through
``load.http.request``, where httpx errors are translated), ``_post`` (pacing),
``post_with_retries`` (CONTRACT §5.3), ``send``
(whole-batch 400 and 413 handling, CONTRACT §6.1). Per-item results follow §2.8.

A record too large for any request (``MAX_BODY_BYTES``) fails alone, unsent, with its size in
the reason; the rest of its batch is sent. Batches are cut by the job's ``batch.max_bytes``,
which a single record may exceed: it then goes alone, as long as the API can take it.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx
import orjson

from pipelines.contract import RetryDefaults
from pipelines.errors import RetryableResponse, TransportError
from pipelines.load.http import request
from pipelines.load.pacing import Pacer
from pipelines.load.rate_headers import read_quota, refusal_quota

if TYPE_CHECKING:
    from pipelines.run.stopping import StopRequest

__all__ = [
    "MAX_BODY_BYTES",
    "BatchResult",
    "ItemOutcome",
    "RetryPolicy",
    "Sender",
    "describe_refusal",
]

Status = Literal["created", "updated", "failed"]
# CONTRACT §6.1, §6.19 [A]: the API answers 413 to a body over ~30,000,000 bytes (Kestrel's
# default limit). A record whose JSON alone is larger could never land: sending it would
# only upload 30 MB to be refused, or cut off mid-upload and retried as a network error.
MAX_BODY_BYTES = 30_000_000
_INDEXED_KEY = re.compile(r"^\[(\d+)\]\.?(.*)$")


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = RetryDefaults.base_s
    cap_s: float = RetryDefaults.cap_s
    attempts: int = RetryDefaults.attempts
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:  # the server knows best; only absurd waits are cut
            return min(retry_after, self.max_retry_after_s)
        return rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))  # full jitter


@dataclass(frozen=True)
class ItemOutcome:
    status: Status
    message: str | None = None


@dataclass
class BatchResult:
    """What happened to each item of a batch (aligned with its bodies) and what it cost."""

    outcomes: list[ItemOutcome]
    http_status: int | None = None
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    shrink: bool = False  # a 413 said batches should be smaller for the rest of the run
    errors: list[str] = field(default_factory=list)


class Sender:
    def __init__(
        self,
        client: httpx.Client,
        endpoint: str,
        *,
        method: str = "POST",  # customers: PUT, one record a request (§4.1)
        policy: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
        stop: StopRequest | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        self.client, self.endpoint, self.method = client, endpoint, method
        self.max_body_bytes = max_body_bytes
        self.policy = policy or RetryPolicy()
        self.pacer = pacer
        self._rng, self.stop = random.Random(seed), stop
        # A stop cuts a retry's backoff short, and the batch is left for the next run.
        self._sleep = stop.sleep if stop is not None and sleep is time.sleep else sleep

    def send(self, bodies: list[bytes]) -> BatchResult:
        """Send one batch; items the API refuses, or that are too large to send, end as
        ``failed`` with the reason."""
        result = BatchResult(outcomes=[])
        # a body is a JSON array: "[" + items joined by "," + "]"
        too_large = {
            i: _too_large(len(body), self.max_body_bytes)
            for i, body in enumerate(bodies)
            if len(body) + 2 > self.max_body_bytes
        }
        result.outcomes = self._send_others(bodies, too_large, result)
        return result

    def _send(self, bodies: list[bytes], result: BatchResult) -> list[ItemOutcome]:
        try:
            response = self.post_with_retries(b"[" + b",".join(bodies) + b"]", result)
        except TransportError as exc:
            result.errors.append(str(exc))
            return [ItemOutcome("failed", str(exc))] * len(bodies)
        result.http_status = response.status_code
        if response.is_success:
            return _item_outcomes(response, len(bodies))
        if response.status_code == 413 and len(bodies) > 1:
            result.shrink = True
            return self._halves(bodies, result)
        if response.status_code == 413:  # the target's limit is below MAX_BODY_BYTES
            message = f"{_too_large(len(bodies[0]), None)}: {describe_refusal(response)}"
            return [ItemOutcome("failed", message)]
        if response.status_code == 400:
            return self._isolate(bodies, _problem(response), result)
        return [ItemOutcome("failed", describe_refusal(response))] * len(bodies)

    def _halves(self, bodies: list[bytes], result: BatchResult) -> list[ItemOutcome]:
        mid = len(bodies) // 2
        return self._send(bodies[:mid], result) + self._send(bodies[mid:], result)

    def _isolate(
        self, bodies: list[bytes], problem: dict, result: BatchResult
    ) -> list[ItemOutcome]:
        """A whole-batch 400: fail the items it names, resend the rest; bisect if it names none."""
        if len(bodies) == 1:
            return [ItemOutcome("failed", _summary(problem, strip_index=True))]
        named = _indexed_errors(problem, len(bodies))
        if not named:
            return self._halves(bodies, result)
        return self._send_others(bodies, named, result)

    def _send_others(
        self, bodies: list[bytes], failed: dict[int, str], result: BatchResult
    ) -> list[ItemOutcome]:
        """The items in ``failed`` fail with their message; the others are sent."""
        if not failed:
            return self._send(bodies, result)
        outcomes = [ItemOutcome("failed", failed.get(i)) for i in range(len(bodies))]
        keep = [i for i in range(len(bodies)) if i not in failed]
        if keep:
            for i, outcome in zip(keep, self._send([bodies[i] for i in keep], result), strict=True):
                outcomes[i] = outcome
        return outcomes

    def post_with_retries(self, body: bytes, result: BatchResult) -> httpx.Response:
        for attempt in range(self.policy.attempts):
            try:
                return self._post(body, result)
            except RetryableResponse as exc:
                if attempt + 1 == self.policy.attempts:
                    raise TransportError(
                        f"gave up after {self.policy.attempts} attempts: {exc}"
                    ) from exc
                result.retries += 1
                result.throttled += exc.http_status == 429
                self._sleep(self.policy.delay(attempt, exc.retry_after, self._rng))
                if self.stop is not None:
                    self.stop.check()  # raised in the sending thread: the batch is unfinished
        raise AssertionError("unreachable")

    def _post(self, body: bytes, result: BatchResult) -> httpx.Response:
        result.requests += 1
        if self.pacer is None:
            return self._post_once(body)
        self.pacer.acquire()
        started, throttled, quota, retry_after = time.monotonic(), False, None, None
        try:
            response = self._post_once(body)
            quota = read_quota(response.headers)  # the server's rate-limit headers, if any
            return response
        except RetryableResponse as exc:
            throttled, retry_after = exc.http_status == 429, exc.retry_after
            quota = refusal_quota(exc)
            raise
        finally:
            latency = time.monotonic() - started
            self.pacer.release(
                throttled=throttled, latency_s=latency, quota=quota, retry_after=retry_after
            )

    def _post_once(self, body: bytes) -> httpx.Response:
        headers = {"content-type": "application/json"}
        return request(self.client, self.method, self.endpoint, content=body, headers=headers)


def _item_outcomes(response: httpx.Response, count: int) -> list[ItemOutcome]:
    """Per-item results (§2.8); a 2xx without them means every item was accepted."""
    body = _json(response)
    results = _get(body, "results") if isinstance(body, dict) else None
    outcomes = [ItemOutcome("updated")] * count
    for item in results if isinstance(results, list) else []:
        index = _get(item, "index")
        if isinstance(index, int) and 0 <= index < count:
            outcomes[index] = _outcome(item)
    return outcomes


def _outcome(item: dict) -> ItemOutcome:
    status = str(_get(item, "status") or "").lower()
    if status == "created":
        return ItemOutcome("created")
    if status == "failed":
        return ItemOutcome(
            "failed", _errors_text(_get(item, "errors")) or "failed (no reason given)"
        )
    return ItemOutcome("updated")


def _get(obj: dict, name: str):
    """Response properties are matched case-insensitively (CONTRACT §0.3)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if k.lower() == lowered), None)


def _json(response: httpx.Response):
    try:
        return orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None


def _problem(response: httpx.Response) -> dict:
    body = _json(response)
    return body if isinstance(body, dict) else {"title": response.text[:200]}


def _indexed_errors(problem: dict, count: int) -> dict[int, str]:
    errors = _get(problem, "errors")
    named: dict[int, list[str]] = {}
    for key, messages in errors.items() if isinstance(errors, dict) else []:
        match = _INDEXED_KEY.match(str(key))
        if match and int(match.group(1)) < count:
            text = "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
            named.setdefault(int(match.group(1)), []).append(f"{match.group(2) or 'item'}: {text}")
    return {i: "; ".join(parts) for i, parts in named.items()}


def _errors_text(errors) -> str:
    if isinstance(errors, dict):
        return "; ".join(
            f"{k}: {'; '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in errors.items()
        )
    return "" if errors is None else str(errors)


def _too_large(size: int, limit: int | None) -> str:
    what = f"the record alone is {size:,} bytes of JSON"
    if limit is None:
        return f"{what}, more than the API accepts in one request"
    return (
        f"{what}, more than the {limit:,} bytes the API accepts in one request: not sent; "
        "shorten its longest field or leave that field out of the job"
    )


def describe_refusal(response: httpx.Response) -> str:
    """One line for a refused response: its status, title and errors (CONTRACT §5.1)."""
    return f"HTTP {response.status_code}: {_summary(_problem(response))}"


def _summary(problem: dict, *, strip_index: bool = False) -> str:
    errors = _get(problem, "errors")
    if isinstance(errors, dict) and strip_index:
        errors = {_INDEXED_KEY.sub(r"\2", k) or k: v for k, v in errors.items()}
    detail = _errors_text(errors)
    title = _get(problem, "title") or "request refused"
    return f"{title}: {detail}" if detail else str(title)
