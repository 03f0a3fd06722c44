"""How `reconcile` reads each entity at the target: its list route and filters, what names a
record that carries no key, and what it keeps of each record besides its projection.

Products are listed active and inactive (CONTRACT §6.9: the list hides inactive products
unless asked); an order keeps its customer and id (as hashes, for linkage) and its money
(on disk, for the totals per currency and month).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.contract import API_PATHS
from pipelines.load.api_reader import field_of
from pipelines.load.paged_reads import Filter
from pipelines.transform.order_money import order_money
from pipelines.transform.serialize import key_hashes

__all__ = ["ReconcileView", "customer_hashes", "reconcile_view"]


@dataclass(frozen=True)
class ReconcileView:
    route: str
    listings: tuple[tuple[Filter, ...], ...]  # one listing per filter set; together: all
    name_field: str  # names a record that carries no key
    # Read numbers as exact decimals (an order's money), not as the floats a job may map a
    # product's price to: the projection types them as the job does either way.
    exact: bool = False
    facts: Callable[[list[dict]], dict[str, np.ndarray]] | None = None
    extra: Callable[[dict], bytes] | None = None


def reconcile_view(entity: str) -> ReconcileView:
    if entity == "products":
        listings = ((("Active", "equals", "true"),), (("Active", "equals", "false"),))
        return ReconcileView(API_PATHS["products"], listings, "sku", facts=_product_facts)
    if entity == "orders":
        return ReconcileView(
            API_PATHS["orders"],
            ((),),
            "orderNumber",
            exact=True,
            facts=_order_facts,
            extra=_order_money,
        )
    return ReconcileView(API_PATHS["customers"], ((),), "customerNumber")


def customer_hashes(numbers: list) -> np.ndarray:
    """Hashes of customer numbers as the API matches them: case-insensitively (§6.22)."""
    folded = [n.casefold() if isinstance(n, str) and n else None for n in numbers]
    return key_hashes(pa.array(folded, pa.string()))


def _product_facts(records: list[dict]) -> dict[str, np.ndarray]:
    active = [field_of(r, "active") is not False for r in records]
    return {"active": np.array(active, dtype=bool)}


def _order_facts(records: list[dict]) -> dict[str, np.ndarray]:
    snapshots = [field_of(r, "customer") for r in records]
    customers = [field_of(c, "customerNumber") if isinstance(c, dict) else None for c in snapshots]
    ids = [field_of(r, "id") for r in records]
    return {
        "customers": customer_hashes(customers),
        "ids": key_hashes(pa.array([str(i) if i else None for i in ids], pa.string())),
    }


def _order_money(record: dict) -> bytes:
    return order_money(record).to_bytes()
