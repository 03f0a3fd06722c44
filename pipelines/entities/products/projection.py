"""Products as the org holds them, seen the way a job sees its own records: projected onto the
fields it maps, typed as its mapper types them and serialized by ``serialize``, so content
hashes compare (``plan --against-api``, field-by-field samples)."""

from __future__ import annotations

import numpy as np
import orjson
import pyarrow as pa

from pipelines.admit.acked_state import AckedState
from pipelines.entities.products.price_list import PriceListIndex
from pipelines.entities.products.product_job import ProductsJob
from pipelines.entities.products.product_mapping import map_products
from pipelines.extract.chunks import Chunk
from pipelines.load.api_reader import ApiReader, field_of
from pipelines.transform.serialize import key_hashes, serialize

__all__ = ["Projection", "read_state"]


class Projection:
    """A job's view of a stored product: only the fields the job maps, with the Arrow types
    its mapper produces (taken from mapping an empty chunk), so equal content gives equal
    canonical JSON and equal hashes."""

    def __init__(self, job: ProductsJob, price_list: PriceListIndex | None = None):
        used = set(job.source_columns_used().values())
        empty = pa.table({name: pa.array([], pa.string()) for name in used})
        mapped, _ = map_products(Chunk(empty, np.empty(0, np.int64), ""), job, price_list)
        self.schema = pa.schema([pa.field(f.name, _plain(f.type)) for f in mapped.schema])

    def table(self, products: list[dict]) -> pa.Table:
        return pa.Table.from_pylist([self._project(p) for p in products], schema=self.schema)

    def hashes(self, products: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(externalId key hashes, content hashes) of products that carry an externalId."""
        table = self.table([p for p in products if field_of(p, "externalId")])
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
