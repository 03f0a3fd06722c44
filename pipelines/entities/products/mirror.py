"""Mirror mode: products this job synced that a complete feed no longer holds are deactivated
(CONTRACT §6.9: deactivation, never deletion, keeps order history), within a cap that is
checked before anything is sent.

A deactivation is an ordinary bulk item carrying only ``externalId``, ``sku`` and
``active: false`` (§6.7: omitted fields keep their stored values), so it goes through the
same batching, retries and ledger as every other record. Its SKU is the one the org holds
for that externalId now, read from the API: the ledger keeps no SKUs, and sending a stale
one would rename the product (§2.8).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from pipelines.admit.owned_keys import OWNED, owned_keys
from pipelines.entities.products.product_job import ProductsJob
from pipelines.errors import Refused
from pipelines.ledger.ownership import external_ids_at
from pipelines.load.api_reader import ApiReader
from pipelines.load.batching import Pending
from pipelines.ops.sorted_keys import KeyCursor
from pipelines.transform.serialize import serialize

if TYPE_CHECKING:
    from pipelines.ledger import Ledger

__all__ = ["Deactivations", "Vanished", "deactivated_hashes", "deactivations", "find_vanished"]


@dataclass(frozen=True)
class Vanished:
    """Products this job synced, still live at the target, that the feed no longer holds."""

    owned: int  # live products this job synced: what the cap is a percentage of
    key_hashes: np.ndarray
    external_ids: list[str]

    def __len__(self) -> int:
        return len(self.external_ids)

    def exceeds_cap(self, job: ProductsJob) -> bool:
        return len(self) > self.owned * job.max_deactivate_pct / 100

    def check_cap(self, job: ProductsJob, *, allow: bool) -> None:
        """Refuse (GateFailed, exit 4) a mass deactivation nobody asked for."""
        if allow or not self.exceeds_cap(job):
            return
        share = 100 * len(self) / self.owned
        raise Refused(
            f"mirror mode would deactivate {len(self):,} of the {self.owned:,} products job "
            f"{job.job!r} synced ({share:.1f}%), more than max_deactivate_pct "
            f"({job.max_deactivate_pct:g}%) allows; nothing was sent. If the feed really "
            "dropped them, run again with --allow-mass-deactivate (or raise "
            f"max_deactivate_pct in {job.path})"
        )


@dataclass(frozen=True)
class Deactivations:
    records: Pending  # ready to batch: one bulk item per product found at the target
    gone: list[str]  # external ids the org no longer holds at all: nothing to send


def find_vanished(
    ledger: Ledger,
    job: ProductsJob,
    *,
    target_id: str,
    feed_keys: np.ndarray | Iterable[np.ndarray],
    directory: Path | None = None,
) -> Vanished:
    """``feed_keys``: every key of the feed, sorted and unique (an array), or in ascending
    blocks (never held whole). The keys the job owns are read bucket by bucket in key order
    and joined with them as they come; a product whose acknowledged content is its
    deactivation record was deactivated by an earlier run (neither live nor sent again).
    Only the vanished products' external ids are read. The buckets go to ``directory``
    (None: the system's temporary directory) when they do not fit in memory."""
    cursor = KeyCursor([feed_keys] if isinstance(feed_keys, np.ndarray) else feed_keys)
    live = 0
    picked = []
    scope = {"job": job.job, "target_id": target_id, "entity": job.entity}
    found = owned_keys(ledger, **scope, retired=deactivated_hashes, directory=directory)
    for owned, upper in found:
        feed = cursor.upto(upper)  # the feed's keys in this bucket's range
        owned = owned[owned["live"] == 1]
        live += len(owned)
        pos = np.minimum(np.searchsorted(feed, owned["key"]), max(len(feed) - 1, 0))
        absent = feed[pos] != owned["key"] if len(feed) else np.ones(len(owned), bool)
        picked.append(owned[absent])
    gone = np.concatenate([np.empty(0, OWNED), *picked])
    ids = external_ids_at(ledger, gone["seq"], gone["index"].astype(np.int64))
    return Vanished(live, gone["key"].copy(), ids)


def deactivated_hashes(external_ids: list[str] | pa.Array) -> np.ndarray:
    """The content hash the ledger records for a deactivated product: that of
    ``{"active":false,"externalId":...}``. No feed record hashes the same (each has a SKU),
    so a product that comes back to the feed is sent again in full."""
    table = pa.table(
        {
            "active": pa.array(np.zeros(len(external_ids), dtype=bool)),
            "externalId": pa.array(external_ids, pa.string()),
        }
    )
    return serialize(table)[1] if len(external_ids) else np.empty(0, np.int64)


def deactivations(reader: ApiReader, vanished: Vanished) -> Deactivations:
    """The bulk items that deactivate ``vanished``, with the SKUs the org holds."""
    skus = stored_skus(reader, vanished.external_ids)
    found = np.array([i for i, x in enumerate(vanished.external_ids) if x in skus], np.int64)
    ids = [vanished.external_ids[i] for i in found]
    table = pa.table(
        {
            "active": pa.array(np.zeros(len(ids), dtype=bool)),
            "externalId": pa.array(ids, pa.string()),
            "sku": pa.array([skus[x] for x in ids], pa.string()),
        }
    )
    bodies = serialize(table)[0] if ids else []
    records = Pending(
        ids,
        np.zeros(len(ids), np.int64),
        vanished.key_hashes[found],
        deactivated_hashes(ids),
        bodies,
    )
    return Deactivations(records, [x for x in vanished.external_ids if x not in skus])


def stored_skus(reader: ApiReader, external_ids: list[str]) -> dict[str, str]:
    """externalId → SKU the org holds, for those of ``external_ids`` it holds (active or not).

    Looking up one id costs two requests (active, inactive); reading the whole catalog costs
    one per 100 products: whichever is fewer.
    """
    wanted = set(external_ids)
    if not wanted:
        return {}
    first, pages = zip(*(reader.first_page(active) for active in ("true", "false")), strict=True)
    if 2 * len(wanted) < sum(pages) - 2:
        found = (reader.by_external_id(x) for x in wanted)
        return {p["externalId"]: p["sku"] for p in found if p is not None}
    listing = reader.pages() if sum(pages) > 2 else iter(first)
    return {
        p["externalId"]: p["sku"] for page in listing for p in page if p.get("externalId") in wanted
    }
