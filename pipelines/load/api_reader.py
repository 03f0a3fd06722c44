"""What the org actually holds, read through the list and get endpoints (CONTRACT §2.1, §5.4,
§5.5). HTTP goes through the injected client only; :class:`ApiReader` is the one place the
errors of reads are translated.

Bodies are parsed with exact numbers (``decimal_json``: a ``Decimal`` where a float cannot
hold the value) on every route but products, whose prices the job's mapper types as floats
(``products.product_mapping``): there an exact decimal would differ from what the job sends.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import orjson

from pipelines.contract import API_PATHS, RetryDefaults
from pipelines.errors import RetryableResponse, TransportError
from pipelines.load.decimal_json import loads_exact
from pipelines.load.http import request

__all__ = ["PAGE_SIZE", "ApiReader", "field_of", "list_params"]

PAGE_SIZE = 100  # §5.4 [A]: the emulator clamps to 100; no larger maximum is documented


class ApiReader:
    """Read-only queries of one list route (products by default) over an injected client
    (the caller owns and closes it)."""

    sleep = staticmethod(time.sleep)  # tests replace it

    def __init__(
        self, client: httpx.Client, path: str = API_PATHS["products"], *, exact: bool | None = None
    ):
        """``path``: the list route (products, orders, customers); ``exact``: numbers beyond a
        float's precision as ``Decimal`` (default: on every route but products)."""
        self.client, self.path = client, path
        self.requests = 0
        if exact is None:
            exact = path != API_PATHS["products"]
        self.parse = loads_exact if exact else orjson.loads

    def pages(self, *filters: tuple[str, str, str]) -> Iterator[list[dict]]:
        """Every product matching ``filters`` (field, operator, value), active and inactive
        (§6.9: the list hides inactive products unless the query filters on Active)."""
        for active in ("true", "false"):
            yield from self._pages([*filters, ("Active", "equals", active)])

    def first_page(self, active: str) -> tuple[list[dict], int]:
        """One page of products with this Active value, and how many pages there are."""
        body = self._list([("Active", "equals", active)], 1)
        return _data(body), int(_meta(body, "totalPages", "totalpages") or 1)

    def product(self, sku: str) -> dict | None:
        """``GET /api/products/{sku}`` (§6.22: the SKU URL-encoded); None when absent."""
        response = self.get(API_PATHS["products"] + "/" + quote(sku, safe=""))
        return None if response is None else orjson.loads(response.content)  # float prices

    def by_external_id(self, external_id: str) -> dict | None:
        """The product holding ``external_id`` (matched exactly, active or not), or None."""
        for page in self.pages(("ExternalId", "equals", external_id)):
            for product in page:
                if field_of(product, "externalId") == external_id:
                    return product
        return None

    def listing(self, *filters: tuple[str, str, str]) -> Iterator[list[dict]]:
        """Every record of the list route matching ``filters``, page by page."""
        return self._pages(list(filters))

    def one(self, key: str) -> dict | None:
        """``GET {route}/{key}`` (the key URL-encoded, §6.22); None when absent."""
        response = self.get(f"{self.path}/{quote(key, safe='')}")
        return None if response is None else self.parse(response.content)

    def _pages(self, filters: list[tuple[str, str, str]]) -> Iterator[list[dict]]:
        number = 1
        while True:
            body = self._list(filters, number)
            data = _data(body)
            if data:
                yield data
            current = _meta(body, "currentPage", "pageNumber") or number
            total = _meta(body, "totalPages", "totalpages")
            if not data or len(data) < PAGE_SIZE or (total is not None and current >= total):
                return
            number += 1

    def _list(self, filters: list[tuple[str, str, str]], number: int) -> dict:
        params = list_params(filters, number)
        response = self.get(self.path, params)
        body = self.parse(response.content) if response is not None else None
        return body if isinstance(body, dict) else {}

    def get(self, path: str, params: dict | None = None) -> httpx.Response | None:
        """One GET, its failures translated by ``load.http`` and retried as sends are
        (§5.3: a 429 or 5xx, honouring ``Retry-After``; several shards or a busy org make a
        read meet the rate limit too); None for 404."""
        for attempt in range(RetryDefaults.attempts):
            self.requests += 1
            try:
                response = request(self.client, "GET", path, params=params)
                break
            except RetryableResponse as exc:
                if attempt + 1 == RetryDefaults.attempts:
                    raise TransportError(
                        f"reading {path} failed after {attempt + 1} attempts: {exc}"
                    ) from exc
                cap = min(RetryDefaults.cap_s, RetryDefaults.base_s * 2**attempt)
                wait = exc.retry_after if exc.retry_after is not None else random.uniform(0, cap)
                self.sleep(wait)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise TransportError(f"reading {path} failed: HTTP {response.status_code}")
        return response


def list_params(filters, number: int) -> dict[str, str | int]:
    """The query of one page of a list route, its filters in §5.5's indexed form."""
    params: dict[str, str | int] = {"pageSize": PAGE_SIZE, "pageNumber": number}
    for i, (name, operator, value) in enumerate(filters):
        params |= {
            f"filters[{i}].field": name,
            f"filters[{i}].operator": operator,
            f"filters[{i}].value": value,
        }
    return params


def field_of(obj: dict, name: str):
    """Response properties are matched case-insensitively (CONTRACT §0.3)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if str(k).lower() == lowered), None)


def _data(body: dict) -> list[dict]:
    data = field_of(body, "data") if body else None
    return [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []


def _meta(body: dict, *names: str) -> int | None:
    for name in names:
        value = field_of(body, name) if body else None
        if isinstance(value, int):
            return value
    return None
