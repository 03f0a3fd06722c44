"""A page of API records in the job's canonical JSON, fast, for `reconcile`.

``Projection.table`` matches every name case-insensitively in Python, record by record: about a
millisecond for an order with its customer snapshot. When the API spells the job's fields as
the job does (it returns camelCase, CONTRACT §0.3), Arrow builds the same table from the records
as they are, ignoring the fields the job does not map, twenty times faster. So:

1. names spelled as the job spells them: Arrow directly;
2. otherwise, or when Arrow refuses a value (a float where the job sends a decimal):
   ``Projection.table``;
3. a record neither can type (a value with more decimals than the job's money scale, text
   where the job sends a number) is kept as it is, cut to the job's fields, with a content
   hash that matches nothing: compared field by field, the value that does not fit shows as
   the difference it is.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from pipelines.transform.projection import Projection
from pipelines.transform.serialize import serialize

__all__ = ["canonical_page"]

_ARROW_REFUSALS = (pa.ArrowInvalid, pa.ArrowTypeError)


def canonical_page(projection: Projection, records: list[dict]) -> tuple[list[bytes], np.ndarray]:
    """(canonical JSON body, content hash) of each record, as the job would send it."""
    if _spelled_alike(records[0], projection.schema):
        try:
            return serialize(pa.Table.from_pylist(records, schema=projection.schema))
        except _ARROW_REFUSALS:
            pass
    try:
        return serialize(projection.table(records))
    except _ARROW_REFUSALS:
        pass
    found = [_one(projection, record) for record in records]
    return [body for body, _ in found], np.array([h for _, h in found], np.int64)


def _one(projection: Projection, record: dict) -> tuple[bytes, int]:
    try:
        bodies, hashes = serialize(projection.table([record]))
        return bodies[0], int(hashes[0])
    except _ARROW_REFUSALS:
        cut = {f.name: _field(record, f.name) for f in projection.schema}
        body = orjson.dumps(cut, default=_digits, option=orjson.OPT_SORT_KEYS)
        return body, 0  # no content hash equals it


def _spelled_alike(record: Any, schema: pa.Schema | pa.StructType) -> bool:
    """Whether every name of ``record`` that means a field of ``schema`` spells it the same
    (looked at one record deep, with its first list entry)."""
    if not isinstance(record, dict):
        return True
    fields = {f.name: f.type for f in schema}
    lowered = {name.lower(): name for name in fields}
    for key, value in record.items():
        name = lowered.get(str(key).lower())
        if name is None:
            continue
        if name != key or not _spelled_alike_in(value, fields[name]):
            return False
    return True


def _spelled_alike_in(value: Any, kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return _spelled_alike(value, kind)
    if pa.types.is_list(kind) and isinstance(value, list) and value:
        return _spelled_alike_in(value[0], kind.value_type)
    return True


def _field(record: dict, name: str) -> Any:
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((v for k, v in record.items() if str(k).lower() == lowered), None)


def _digits(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
