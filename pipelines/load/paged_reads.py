"""Every page of a list route, fetched in parallel within the run's pacing (CONTRACT §5.3–5.5).

The first page says how many pages there are; the others are fetched by a few worker threads,
each request paced by the shared :class:`~pipelines.load.pacing.Pacer` and retried on 429, 5xx
and network errors as a batch is (the run's ``RetryPolicy``). Pages are yielded in page order
as they arrive; at most ``2 × workers`` are held at once, so memory does not grow with the
size of the list. Errors are translated by ``load.http.request``, as for every request.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from pipelines.errors import RetryableResponse, TransportError
from pipelines.load.api_reader import PAGE_SIZE, field_of, list_params
from pipelines.load.http import request
from pipelines.load.pacing import Pacer
from pipelines.load.sender import RetryPolicy

__all__ = ["Filter", "Page", "PagedReads"]

Filter = tuple[str, str, str]  # (field, operator, value), §5.5


@dataclass(frozen=True)
class Page:
    data: list[dict]
    total_pages: int | None  # None: the envelope does not say (§5.4: read until a short page)


class PagedReads:
    """Reads list routes through an injected client (the caller owns and closes it)."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        pacer: Pacer,
        policy: RetryPolicy | None = None,
        workers: int = 4,
        parse: Callable[[bytes], Any] = orjson.loads,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """``parse`` reads a response body (e.g. with exact decimals instead of floats)."""
        self.client, self.pacer, self.parse = client, pacer, parse
        self.policy = policy or RetryPolicy()
        self.workers, self._sleep = max(1, workers), sleep
        self._rng = random.Random()
        self._count = threading.Lock()  # the counters are bumped from the worker threads
        self.requests = self.retries = 0

    def pages(self, path: str, *filters: Filter) -> Iterator[list[dict]]:
        """The records of every page of ``path`` matching ``filters``, page by page."""
        first = self.page(path, filters, 1)
        if first.data:
            yield first.data
        if first.total_pages is None:
            yield from self._one_by_one(path, filters, first)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="nymble-read") as pool:
            numbers = iter(range(2, first.total_pages + 1))
            running: deque[Future[Page]] = deque()
            for number in numbers:
                running.append(pool.submit(self.page, path, filters, number))
                if len(running) >= 2 * self.workers:
                    break
            while running:
                data = running.popleft().result().data
                number = next(numbers, None)
                if number is not None:
                    running.append(pool.submit(self.page, path, filters, number))
                if data:
                    yield data

    def _one_by_one(self, path: str, filters: tuple, page: Page) -> Iterator[list[dict]]:
        number = 1
        while len(page.data) >= PAGE_SIZE:
            number += 1
            page = self.page(path, filters, number)
            if page.data:
                yield page.data

    def page(self, path: str, filters: tuple[Filter, ...], number: int) -> Page:
        """One page, retried as the policy says; a 404 is an empty page."""
        params = list_params(filters, number)
        response = self._with_retries(path, params)
        if response.status_code == 404:
            return Page([], 1)
        if not response.is_success:
            raise TransportError(f"reading {path} failed: HTTP {response.status_code}")
        return _page(self.parse(response.content) if response.content else None)

    def _with_retries(self, path: str, params: dict) -> httpx.Response:
        for attempt in range(self.policy.attempts):
            try:
                return self._paced(path, params)
            except RetryableResponse as exc:
                if attempt + 1 == self.policy.attempts:
                    raise TransportError(
                        f"reading {path} gave up after {self.policy.attempts} attempts: {exc}"
                    ) from exc
                with self._count:
                    self.retries += 1
                self._sleep(self.policy.delay(attempt, exc.retry_after, self._rng))
        raise AssertionError("unreachable")

    def _paced(self, path: str, params: dict) -> httpx.Response:
        with self._count:
            self.requests += 1
        self.pacer.acquire()
        started, throttled = time.monotonic(), False
        try:
            return request(self.client, "GET", path, params=params)
        except RetryableResponse as exc:
            throttled = exc.http_status == 429
            raise
        finally:
            self.pacer.release(throttled=throttled, latency_s=time.monotonic() - started)


def _page(body) -> Page:
    """The §5.4 envelope: ``data`` and the page count (alternate names accepted)."""
    if not isinstance(body, dict):
        return Page([], 1)
    data = field_of(body, "data")
    records = [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []
    total = field_of(body, "totalPages")
    if not isinstance(total, int):
        count, size = field_of(body, "totalCount"), field_of(body, "pageSize")
        ok = isinstance(count, int) and isinstance(size, int) and size > 0
        total = -(-count // size) if ok else None
    return Page(records, total)
