"""Entity plug-ins: the only code that differs between products, orders and customers.

The one engine (``pipelines.run``) reads, checks, admits and sends every entity alike; an
entity supplies its job model and an :class:`EntityRun` for each run: how its feed is opened
(orders group header and line rows), how a chunk of rows becomes records, which fields are
unique in a run, which references must exist at the target, and how a batch is sent. Adding
an entity means adding a folder here with a module that defines ``PLUGIN``, and its name
below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    import numpy as np

    from pipelines.admit.acked_state import AckedState
    from pipelines.extract.chunks import Chunk
    from pipelines.extract.feed import Feed, SourceOpener
    from pipelines.extract.row_keys import RowKeys
    from pipelines.jobs.specs import JobBase
    from pipelines.ledger import Ledger
    from pipelines.load.api_reader import ApiReader
    from pipelines.load.pacing import Pacer
    from pipelines.quality.row_warnings import RowWarning
    from pipelines.run.options import RunOptions
    from pipelines.run.stopping import StopRequest
    from pipelines.targets import Target
    from pipelines.transform.prepared import Prepared
    from pipelines.transform.projection import Projection
    from pipelines.transform.rejects import Reject

__all__ = ["ENTITY_NAMES", "EntityPlugin", "EntityRun", "RunContext", "SampleDiff", "entity_plugin"]

# name → the module holding its PLUGIN; imported only when a job of that entity is read.
_MODULES = {
    "products": "pipelines.entities.products.product_entity",
    "orders": "pipelines.entities.orders.order_entity",
    "customers": "pipelines.entities.customers.customer_entity",
}
ENTITY_NAMES = tuple(_MODULES)


@dataclass(frozen=True)
class EntityPlugin:
    name: str
    parse_job: Callable[[dict[str, Any], Path], JobBase]
    bind: Callable[[Any, RunContext], EntityRun]  # (job, context) → the run's entity half


def entity_plugin(name: str) -> EntityPlugin:
    return importlib.import_module(_MODULES[name]).PLUGIN


@dataclass
class RunContext:
    """What a run, plan or validation talks to, built by the engine and handed to the entity."""

    job: JobBase
    target: Target
    ledger: Ledger
    client: httpx.Client
    options: RunOptions
    opener: SourceOpener


@dataclass(frozen=True)
class SampleDiff:
    """One planned update: each changed field as ``[old, new]`` in canonical JSON values."""

    external_id: str
    changes: dict[str, list]
    found: bool = True  # False: the target holds no record with this key


class EntityRun:
    """An entity's half of one run. The defaults fit an entity sent by bulk POST whose records
    have no references and no unique field besides their key."""

    unique_columns: dict[str, str] = {}  # field → source column: unique in a run, like the key
    references: Any = None  # checks that a record's references exist at the target
    id_field = "externalId"  # the mapped field holding the ledger's key

    def __init__(self, job: Any, ctx: RunContext):
        self.job, self.ctx = job, ctx
        self._row_keys: dict[tuple[str, bool], RowKeys] = {}

    def open_feed(self) -> Feed:
        """The job's feed, its columns checked (by default: the job's own source)."""
        feed, _columns = self.ctx.opener.open_main(self.job)
        return feed

    def prepare(self, chunk: Chunk) -> Prepared:
        """Map, check, hash and serialize one chunk (pure: runs on worker threads)."""
        raise NotImplementedError

    def warnings(self, prepared: Prepared) -> list[RowWarning]:
        """Values of a prepared chunk sent as they are but worth a look (pure: runs on
        worker threads). Masks over the chunk's rows; the engine keeps those of rows that
        pass their checks."""
        return []

    def keyed(self, chunk: Chunk) -> Chunk:
        """``chunk`` with the key of each row that could not be parsed filled in where its
        key cell can be read, so that ``why`` finds the row (pure: runs on worker threads)."""
        if all(r.external_id is not None for r in chunk.rejects):
            return chunk
        return replace(chunk, rejects=self.row_keys(self.job.source, self.job.key)(chunk.rejects))

    def row_keys(self, source: Any, key: str, *, main: bool = True) -> RowKeys:
        """The reader of ``key`` in rows of ``source`` that could not be parsed."""
        from pipelines.extract.row_keys import RowKeys

        found = self._row_keys.get((key, main))
        if found is None:  # two workers may both make one: the same either way
            found = RowKeys.of(source, key, self.ctx.opener, main=main)
            self._row_keys[(key, main)] = found
        return found

    def side_rejects(self) -> list[Reject]:
        """Rows of side sources (a price list) rejected while the feed was opened."""
        return []

    def sender(self, pacer: Pacer, stop: StopRequest | None = None) -> Any:
        """What sends a batch: a bulk POST by default (``send(bodies) -> BatchResult``)."""
        from pipelines.contract import BULK_ENDPOINTS
        from pipelines.load.sender import Sender

        endpoint, policy = BULK_ENDPOINTS[self.job.entity], self.ctx.options.policy
        return Sender(self.ctx.client, endpoint, policy=policy, pacer=pacer, stop=stop)

    def notes(self, admission: Any) -> list[str]:
        """What the summary should say besides the counts."""
        return []

    def recall(self, state: AckedState) -> Any:
        """The source-row memo of this job, loaded into ``state`` so that workers can recall
        unchanged rows without mapping them; None when the entity keeps none."""
        return None

    def api_state(self, reader: ApiReader) -> AckedState:
        """Hashes of what the org holds, seen as this job would send it (``plan --against-api``)."""
        from pipelines.errors import ConfigError

        raise ConfigError(f"plan --against-api is not available for {self.job.entity} yet")

    def projection(self) -> Projection:
        """Records as the org holds them, seen as this job sends them (``reconcile``)."""
        from pipelines.errors import ConfigError

        raise ConfigError(f"reconcile is not available for {self.job.entity} yet")

    def sample(self, reader: ApiReader, external_id: str, body: bytes) -> SampleDiff:
        """How the record the org holds under ``external_id`` differs from ``body``."""
        return SampleDiff(external_id, {}, found=False)

    def chunked(self, chunks: Iterable[Chunk]) -> Iterator[Chunk]:
        """The chunks as they are prepared (products join small ones while recalling)."""
        return iter(chunks)

    def after_run(self, run_id: int, admission: Any) -> None:
        """Called once a run has read and settled its whole feed (ledger writes allowed)."""

    def hold_back(self) -> Any:
        """The lowest watermark of a record waiting for a reference (None: none waits)."""
        return None

    def feed_keys_needed(self) -> bool:
        """Whether the run must know every key of the feed before sending (mirror mode)."""
        return False

    def vanished(self, keys: np.ndarray) -> Any:
        """Records this job synced that the feed (``keys``, sorted) no longer holds."""
        raise NotImplementedError

    def deactivations(self, vanished: Any) -> Any:
        """The records that deactivate ``vanished``, ready to batch."""
        raise NotImplementedError
