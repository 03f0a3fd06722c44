"""Which SKUs and customers the target knows, asked of the ledger first and the API second.

The ledger knows what this tool acknowledged at the target: key hashes of products' and
customers' externalIds. A customers job's externalId is the customer number, and a products
job whose key column is its SKU column (the common case; ``mappings/products.yml``) makes a
product's externalId its SKU, so those hashes answer most questions without a request. Values
the ledger does not know are looked up once per run by paging the API's list (pages of 100,
CONTRACT §5.4), never one request per line; the answer is cached for the run. The API matches
SKUs and customer numbers case-insensitively (§6.22), so the cache does too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import API_PATHS
from pipelines.entities.orders.order_mapping import per_order
from pipelines.jobs.job_file import load_job
from pipelines.ledger.held_columns import HeldColumns
from pipelines.ledger.key_sets import in_sorted
from pipelines.load.api_reader import ApiReader, field_of
from pipelines.quality.row_checks import Failure
from pipelines.transform.prepared import Prepared
from pipelines.transform.serialize import key_hashes

__all__ = [
    "CustomerReader",
    "KnownValues",
    "References",
    "product_skus",
    "products_keyed_by_sku",
]


class KnownValues:
    """One kind of reference (SKUs or customer numbers): known values for this run."""

    def __init__(self, ledger_keys: np.ndarray, listing: Callable[[], Iterable[str]] | None):
        self._ledger = np.sort(ledger_keys)
        self._listing = listing
        self._listed: np.ndarray | None = None  # hashes of case-folded values, once fetched
        self.requests = 0

    def unknown(self, values: pa.Array, hashes: np.ndarray) -> np.ndarray:
        """True where a present value is known neither to the ledger nor to the API."""
        missing = pc.is_valid(values).to_numpy(zero_copy_only=False) & ~in_sorted(
            self._ledger, hashes
        )
        if not missing.any() or self._listing is None:
            return missing
        folded = key_hashes(pc.utf8_lower(values.filter(pa.array(missing))))
        found = in_sorted(self._listed_hashes(), folded)
        missing[np.nonzero(missing)[0][found]] = False
        return missing

    def _listed_hashes(self) -> np.ndarray:
        if self._listed is None:
            values = [v.lower() for v in self._listing() if isinstance(v, str)]
            self._listed = np.sort(key_hashes(pa.array(values, pa.string())))
        return self._listed


class CustomerReader(ApiReader):
    """``GET /api/customers`` paged like products (the list has no Active filter to split)."""

    def __init__(self, client):
        super().__init__(client, path=API_PATHS["customers"])

    def numbers(self) -> Iterable[str]:
        for page in self.listing():
            for customer in page:
                yield field_of(customer, "customerNumber")


def product_skus(reader: ApiReader) -> Iterable[str]:
    """Every SKU the org holds, active or not."""
    for page in reader.pages():
        for product in page:
            yield field_of(product, "sku")


def products_keyed_by_sku(products_job) -> bool:
    """Whether the product job's key column is its SKU column (externalId == SKU)."""
    if products_job is None:
        return True  # the shipped products job's shape; the API settles any miss
    job = load_job(products_job)
    sku = job.fields.get("sku")
    return isinstance(sku, str) and sku == job.key


class References:
    """The customers and SKUs known at the target, with the source columns to name."""

    def __init__(
        self,
        customers: KnownValues,
        skus: KnownValues,
        customer_column: str,
        sku_column: str,
        watermark_column: str | None = None,
        expired: np.ndarray | None = None,
        policy: str = "",
        workdir=None,
    ):
        self.customers, self.skus = customers, skus
        self.customer_column, self.sku_column = customer_column, sku_column
        self.watermark_column = watermark_column
        # Key hashes of orders held past the job's hold policy: no longer waited for.
        self.expired = np.sort(expired) if expired is not None else np.empty(0, np.int64)
        self.policy = policy  # the policy, as the job file says it, for the reject message
        self.hold_back = None  # lowest watermark value of an order waiting for a reference
        # Every order held back in this run, as columns spilled to ``workdir`` (a migration
        # before its customers are loaded holds millions), and the key hashes of those
        # this run gave up waiting for.
        self.waiting = HeldColumns(workdir)
        self.gave_up: list[np.ndarray] = []

    def failures(self, p: Prepared, ok: np.ndarray) -> tuple[list[Failure], list[Failure]]:
        """Orders among ``ok`` whose customer, or else one of whose SKUs, is unknown: those
        still waited for, and those held past the job's hold policy (rejected for good)."""
        refs = p.references
        customers = self._customers(refs.customers, ok)
        skus = self._skus(refs.skus, refs.offsets, ok & ~customers.mask)
        expired = in_sorted(self.expired, p.keys) if len(self.expired) else None
        waiting, given_up = [], []
        for found in (customers, skus):
            if expired is not None and (found.mask & expired).any():
                given_up.append(self._given_up(found, found.mask & expired))
                found = replace(found, mask=found.mask & ~expired)
            if found.mask.any():
                waiting.append(found)
        self._hold(p.chunk.table, waiting)
        self._remember(p, waiting)
        self.gave_up += [p.keys[f.mask] for f in given_up]
        return waiting, given_up

    def _given_up(self, found: Failure, mask: np.ndarray) -> Failure:
        what = "customer" if found.rule == "unknown_customer" else "SKU"
        message = (
            f"the {what} is still unknown to the target after the job's hold policy "
            f"({self.policy}): rejected for good, and the watermark moves past the order; "
            "create the reference, then run with --full to send it"
        )
        return Failure(mask, found.column, found.values, "gave_up_waiting", message)

    def _remember(self, p: Prepared, failures: list[Failure]) -> None:
        """The orders held back, for the ledger: columns, no object per order."""
        stamps = None
        if self.watermark_column is not None and failures:
            stamps = p.chunk.table.column(self.watermark_column).combine_chunks()
        for failure in failures:
            rows = np.flatnonzero(failure.mask)
            at = pa.array(rows)
            self.waiting.append(
                p.keys[rows],
                p.ids.take(at),
                failure.rule,
                failure.values.take(at) if failure.values is not None else None,
                stamps.take(at) if stamps is not None else None,
            )

    def _hold(self, table: pa.Table, waiting: list[Failure]) -> None:
        """Remember the lowest watermark among orders waiting for a reference: the stored
        watermark must not pass them, or an incremental run would never read them again."""
        if not waiting or self.watermark_column is None:
            return
        mask = np.logical_or.reduce([f.mask for f in waiting])
        low = pc.min(table.column(self.watermark_column).filter(pa.array(mask))).as_py()
        if low is not None and (self.hold_back is None or low < self.hold_back):
            self.hold_back = low

    def _customers(self, numbers: pa.Array, ok: np.ndarray) -> Failure:
        unknown = ok & self.customers.unknown(numbers, key_hashes(numbers))
        return Failure(unknown, self.customer_column, numbers, "unknown_customer", _WAIT_CUSTOMER)

    def _skus(self, skus: pa.Array, offsets: np.ndarray, ok: np.ndarray) -> Failure:
        of_ok = np.repeat(ok, np.diff(offsets)) & pc.is_valid(skus).to_numpy(zero_copy_only=False)
        missing = np.zeros(len(skus), dtype=bool)
        if of_ok.any():
            codes = pc.dictionary_encode(skus)  # each distinct SKU is looked up once
            distinct = codes.dictionary
            unknown = self.skus.unknown(distinct, key_hashes(distinct))
            missing = unknown[codes.indices.fill_null(0).to_numpy(zero_copy_only=False)] & of_ok
        failure = Failure(missing, self.sku_column, skus, "unknown_sku", _WAIT_SKU)
        return per_order(failure, offsets)


_WAIT_CUSTOMER = (
    "is not a customer the target knows; the order is sent by the first run after the "
    "customer exists"
)
_WAIT_SKU = (
    "is not a SKU the target knows; the order is sent by the first run after the product exists"
)
