"""Prices from a long price list (one row per key, tier and quantity break), joined by key.

The list is read once, checked, sorted and kept as one Arrow table; each catalog chunk then
takes its products' entries with a hash join, never a per-product lookup.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.products.product_job import PriceList
from pipelines.extract.chunks import Chunk
from pipelines.jobs.specs import NumberFormat
from pipelines.quality.row_checks import Failure
from pipelines.transform.convert import convert, normalize_text, present
from pipelines.transform.numbers import is_text, read_numbers
from pipelines.transform.rejects import Reject

__all__ = ["PriceListIndex"]

_PLAIN = NumberFormat()  # what the API writes: 1234.5
_PRICE_FIELDS = [("tier", pa.string()), ("price", pa.float64()), ("atQuantity", pa.int64())]


class PriceListIndex:
    def __init__(self, table: pa.Table, bad_keys: pa.Array, source: str):
        self.table = table  # columns: key, tier, price, atQuantity; sorted
        self.bad_keys = bad_keys
        self.source = source
        # xxh3 of the file's bytes, when they did not change while it was read (memo.py)
        self.digest: str | None = None

    @classmethod
    def load(
        cls, config: PriceList, chunks: Iterable[Chunk], number: NumberFormat = _PLAIN
    ) -> tuple[PriceListIndex, list[Reject]]:
        """Read and check the whole list; bad rows become rejects and spoil their key. Prices
        and quantities written as text are read in the job's ``number`` style."""
        parts, rejects, source = [], [], ""
        for chunk in chunks:
            good, chunk_rejects = _check(chunk, config, number)
            parts.append(good)
            rejects.extend(chunk_rejects)
            source = chunk.source
        table = (
            pa.concat_tables(parts)
            if parts
            else pa.table(
                {"key": pa.array([], pa.string()), **{n: pa.array([], t) for n, t in _PRICE_FIELDS}}
            )
        )
        table = table.sort_by(
            [("key", "ascending"), ("tier", "ascending"), ("atQuantity", "ascending")]
        )
        bad = pa.array(sorted({r.external_id for r in rejects if r.external_id}), pa.string())
        return cls(table, bad, source), rejects

    def prices_for(self, keys: pa.Array, failures: list) -> pa.Array:

        spoiled = pc.fill_null(pc.is_in(keys, value_set=self.bad_keys), False)
        if pc.any(spoiled).as_py():
            failures.append(
                Failure(
                    spoiled.to_numpy(zero_copy_only=False),
                    None,
                    None,
                    "bad_price_list_row",
                    f"{self.source} has invalid rows for this key; see its rejects",
                )
            )
        return self._entries(keys)

    def _entries(self, keys: pa.Array) -> pa.Array:
        left = pa.table({"key": keys, "pos": pa.array(np.arange(len(keys), dtype=np.int64))})
        joined = left.join(self.table, keys="key", join_type="inner").sort_by(
            [("pos", "ascending"), ("tier", "ascending"), ("atQuantity", "ascending")]
        )
        counts = np.bincount(joined.column("pos").to_numpy(), minlength=len(keys))
        offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
        entries = pa.StructArray.from_arrays(
            [joined.column(n).combine_chunks().cast(t) for n, t in _PRICE_FIELDS],
            fields=[pa.field(n, t) for n, t in _PRICE_FIELDS],
        )
        # A product with no entry sends no prices (null keeps what Nymble has), not an empty list.
        return pa.ListArray.from_arrays(offsets, entries, mask=pa.array(counts == 0))


def _check(chunk: Chunk, config: PriceList, number: NumberFormat) -> tuple[pa.Table, list[Reject]]:
    col = {
        c: normalize_text(chunk.table.column(c).combine_chunks())
        for c in (config.key, config.tier, config.quantity, config.price)
    }
    misfits: list[Failure] = []
    price, bad_price = convert(_number(chunk, col, config.price, number, misfits), "decimal")
    quantity, bad_qty = convert(_number(chunk, col, config.quantity, number, misfits), "integer")
    checks = [
        (~present(col[config.key]), config.key, "required", "key is required"),
        (~present(col[config.tier]), config.tier, "required", "tier is required"),
        # before "required": a price not written in the job's style is null, not missing
        *((f.mask, f.column, f.rule, f.message) for f in misfits),
        (~present(price) & ~bad_price, config.price, "required", "price is required"),
        (bad_price, config.price, "not_a_number", "is not a valid decimal"),
        (
            pc.fill_null(pc.less(price, 0), False).to_numpy(zero_copy_only=False),
            config.price,
            "negative_price",
            "must be 0 or more",
        ),
        (
            bad_qty | pc.fill_null(pc.less(quantity, 1), False).to_numpy(zero_copy_only=False),
            config.quantity,
            "bad_quantity",
            "must be a whole number of at least 1",
        ),
    ]
    bad = np.zeros(len(price), dtype=bool)
    rejects = list(chunk.rejects)
    keys = col[config.key].to_pylist()
    for mask, column, rule, message in checks:
        for i in np.nonzero(mask & ~bad)[0]:
            value = col[column][i].as_py() if column in col else None
            rejects.append(
                Reject(
                    chunk.source,
                    int(chunk.rows[i]),
                    keys[i],
                    column,
                    value,
                    rule,
                    f"{column}: {message}",
                )
            )
        bad |= mask
    good = pa.table(
        {"key": col[config.key], "tier": col[config.tier], "price": price, "atQuantity": quantity}
    ).filter(pa.array(~bad))
    return good, rejects


def _number(
    chunk: Chunk, col: dict, name: str, number: NumberFormat, misfits: list[Failure]
) -> pa.Array:
    """The column as plain number text when the source wrote it as text (CSV)."""
    if not is_text(chunk.table.schema.field(name).type):
        return col[name]
    values, found = read_numbers(col[name], name, number.for_column(name))
    misfits.extend(found)
    return values
