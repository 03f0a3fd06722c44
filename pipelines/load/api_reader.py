"""What the org actually holds, read through the list and get endpoints (CONTRACT §2.1, §5.4,
§5.5), and seen the way a job sees its own records: projected onto the fields it maps, typed
as its mapper types them and serialized by ``records.serialize``, so content hashes compare.

HTTP goes through the injected client only; :class:`ApiReader` is the one place its errors
are translated.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import numpy as np
import orjson
import pyarrow as pa

from pipelines.admit.acked_state import AckedState
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_mapping import map_products
from pipelines.errors import AuthError, TransportError
from pipelines.extract.files import Chunk
from pipelines.jobs.specs import JobConfig
from pipelines.transform.serialize import key_hashes, serialize

__all__ = ["PAGE_SIZE", "ApiReader", "Projection", "read_state"]

PAGE_SIZE = 100  # §5.4 [A]: the emulator clamps to 100; no larger maximum is documented
_PRODUCTS = "/api/products"


class ApiReader:
    """Read-only product queries over an injected client (the caller owns and closes it)."""

    def __init__(self, client: httpx.Client, path: str = _PRODUCTS):
        self.client, self.path = client, path  # the list route: products, or customers
        self.requests = 0

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
        response = self.get(f"{_PRODUCTS}/{quote(sku, safe='')}")
        return None if response is None else orjson.loads(response.content)

    def by_external_id(self, external_id: str) -> dict | None:
        """The product holding ``external_id`` (matched exactly, active or not), or None."""
        for page in self.pages(("ExternalId", "equals", external_id)):
            for product in page:
                if _get(product, "externalId") == external_id:
                    return product
        return None

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
        params: dict[str, str | int] = {"pageSize": PAGE_SIZE, "pageNumber": number}
        for i, (name, operator, value) in enumerate(filters):  # §5.5: the indexed form
            params |= {
                f"filters[{i}].field": name,
                f"filters[{i}].operator": operator,
                f"filters[{i}].value": value,
            }
        response = self.get(self.path, params)
        body = orjson.loads(response.content) if response is not None else None
        return body if isinstance(body, dict) else {}

    def get(self, path: str, params: dict | None = None) -> httpx.Response | None:
        """One GET with the API's errors translated; None for 404."""
        self.requests += 1
        try:
            response = self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise TransportError(f"reading {path} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise AuthError(
                f"the API refused the key reading {path} (HTTP {response.status_code}): check "
                "NYMBLE_API_KEY or --api-key-file"
            )
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise TransportError(f"reading {path} failed: HTTP {response.status_code}")
        return response


class Projection:
    """A job's view of a stored product: only the fields the job maps, with the Arrow types
    its mapper produces (taken from mapping an empty chunk), so equal content gives equal
    canonical JSON and equal hashes."""

    def __init__(self, job: JobConfig, price_list: PriceListIndex | None = None):
        used = set(job.source_columns_used().values())
        empty = pa.table({name: pa.array([], pa.string()) for name in used})
        mapped, _ = map_products(Chunk(empty, np.empty(0, np.int64), ""), job, price_list)
        self.schema = pa.schema([pa.field(f.name, _plain(f.type)) for f in mapped.schema])

    def table(self, products: list[dict]) -> pa.Table:
        return pa.Table.from_pylist([self._project(p) for p in products], schema=self.schema)

    def hashes(self, products: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(externalId key hashes, content hashes) of products that carry an externalId."""
        table = self.table([p for p in products if _get(p, "externalId")])
        _, hashes = serialize(table)
        return key_hashes(table.column("externalId").combine_chunks()), hashes

    def canonical(self, product: dict) -> dict:
        """The product as the job's canonical JSON would hold it, parsed back."""
        bodies, _ = serialize(self.table([product]))
        return orjson.loads(bodies[0])

    def _project(self, product: dict) -> dict:
        lowered = {str(k).lower(): v for k, v in product.items()}
        out = {}
        for field in self.schema:
            value = lowered.get(field.name.lower())
            if field.name == "prices" and isinstance(value, list):
                value = [_subset(entry, field.type.value_type) for entry in value]
            elif pa.types.is_struct(field.type) and isinstance(value, dict):
                value = _subset(value, field.type)
            out[field.name] = value
        return out


def read_state(reader: ApiReader, projection: Projection) -> AckedState:
    """Key hash → content hash of every product the org holds, as if this tool had last
    sent exactly what the org now has. Only the hash arrays are kept, never the pages."""
    keys, hashes = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for page in reader.pages():
        page_keys, page_hashes = projection.hashes(page)
        keys.append(page_keys)
        hashes.append(page_hashes)
    return AckedState(np.concatenate(keys), np.concatenate(hashes))


def _subset(entry: dict, kind: pa.StructType) -> dict:
    """Only the struct's fields (``priceFormatted`` and unmapped attributes are dropped)."""
    lowered = {str(k).lower(): v for k, v in entry.items()} if isinstance(entry, dict) else {}
    return {
        kind.field(i).name: lowered.get(kind.field(i).name.lower()) for i in range(kind.num_fields)
    }


def _plain(kind: pa.DataType) -> pa.DataType:
    """The type without dictionary encoding: the mapper encodes constants and tier names,
    which changes their storage, not their JSON."""
    if pa.types.is_dictionary(kind):
        return _plain(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_plain(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in kind])
    return kind


def _get(obj: dict, name: str):
    """Response properties are matched case-insensitively (CONTRACT §0.3)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((v for k, v in obj.items() if str(k).lower() == lowered), None)


def _data(body: dict) -> list[dict]:
    data = _get(body, "data") if body else None
    return [p for p in data if isinstance(p, dict)] if isinstance(data, list) else []


def _meta(body: dict, *names: str) -> int | None:
    for name in names:
        value = _get(body, name) if body else None
        if isinstance(value, int):
            return value
    return None
