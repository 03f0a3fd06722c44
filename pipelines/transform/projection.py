"""Records as the org holds them, seen the way a job sends them: projected onto the fields
the job maps, typed as its mapper types them (the schema of an empty mapped chunk) and
serialized by ``serialize``, so equal content gives equal canonical JSON and equal content
hashes (``plan --against-api``, field-by-field samples).

Fields the API adds (ids, computed totals, formatted prices, a customer's name on an order)
are dropped; names match case-insensitively (CONTRACT §0.3); numbers the API returns as JSON
numbers become exact decimals where the job sends decimals.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from pipelines.admit.acked_state import AckedState
from pipelines.transform.serialize import key_hashes, serialize

__all__ = ["Projection", "read_state"]

# Amounts the org holds are read at the job's scale, or 6 decimals where the job carries fewer:
# an amount finer than the job's (a line total the API computed, 3 × 12.345) then differs
# instead of failing the read, and JSON writes the same digits whatever the scale (trailing
# zeros are cut; Arrow writes 0 at 7 or more decimals as 0E-7, so no wider than needed).
_MIN_SCALE = 6


class Projection:
    def __init__(self, mapped: pa.Schema, key: str = "externalId"):
        """``mapped``: the schema the job's mapper gives; ``key``: the record's key field."""
        self.schema = pa.schema([pa.field(f.name, _plain(f.type)) for f in mapped])
        self.key = key

    def table(self, records: list[dict]) -> pa.Table:
        rows = [_project(r, pa.struct(list(self.schema))) for r in records]
        return pa.Table.from_pylist(rows, schema=self.schema)

    def hashes(self, records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """(key hashes, content hashes) of the records that carry a key."""
        table = self.table([r for r in records if _field(r, self.key)])
        _, hashes = serialize(table)
        return key_hashes(table.column(self.key).combine_chunks()), hashes

    def canonical(self, record: dict) -> dict:
        """The record as the job's canonical JSON would hold it, parsed back."""
        bodies, _ = serialize(self.table([record]))
        return orjson.loads(bodies[0])


def read_state(pages: Iterable[list[dict]], projection: Projection) -> AckedState:
    """Key hash → content hash of every record in ``pages``, as if this tool had last sent
    exactly what the org now holds. Only the hash arrays are kept, never the pages."""
    keys, hashes = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for page in pages:
        page_keys, page_hashes = projection.hashes(page)
        keys.append(page_keys)
        hashes.append(page_hashes)
    return AckedState(np.concatenate(keys), np.concatenate(hashes))


def _project(value: Any, kind: pa.DataType) -> Any:
    """``value`` cut to ``kind``: only a struct's fields, each list entry alike, decimals
    from the JSON numbers the API returns."""
    if value is None:
        return None
    if pa.types.is_struct(kind):
        if not isinstance(value, dict):
            return None
        lowered = {str(k).lower(): v for k, v in value.items()}
        return {f.name: _project(lowered.get(f.name.lower()), f.type) for f in kind}
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if not isinstance(value, list):
            return None
        return [_project(v, kind.value_type) for v in value]
    if pa.types.is_decimal(kind) and isinstance(value, int | float | str | Decimal):
        return _amount(value, kind.scale)
    return value


def _amount(value: int | float | str | Decimal, scale: int) -> Decimal | None:
    """A JSON number as an exact decimal (a float by its shortest text); finer than ``scale``
    it is rounded to it, half to even (only a gap below its last decimal can vanish);
    what is no number at all (``true``, ``"n/a"``) reads as missing."""
    try:
        amount = Decimal(str(value)) if not isinstance(value, bool) else None
    except ArithmeticError:
        return None
    if amount is None or not amount.is_finite():
        return None
    if -amount.as_tuple().exponent > scale:
        return amount.quantize(Decimal(1).scaleb(-scale), ROUND_HALF_EVEN)
    return amount


def _field(record: dict, name: str) -> Any:
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((v for k, v in record.items() if str(k).lower() == lowered), None)


def _plain(kind: pa.DataType) -> pa.DataType:
    """The type without dictionary encoding: the mapper encodes constants and tier names,
    which changes their storage, not their JSON. Money is read wider than the job carries it
    (see ``_MIN_SCALE``)."""
    if pa.types.is_dictionary(kind):
        return _plain(kind.value_type)
    if pa.types.is_decimal(kind):
        return pa.decimal256(76, max(kind.scale, _MIN_SCALE))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(_plain(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in kind])
    return kind
