"""`run --adopt`: records the org already holds as the source has them are written to the
ledger as acknowledged, with status ``adopted``, without being sent. The next plain run, the
memo and mirror mode's ownership then treat them exactly as records this job sent (every
status but ``failed`` is acknowledged): a first run against an org loaded by another tool (or
through another API key) sends only what really differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipelines.ledger.records import ADOPTED_BATCH

if TYPE_CHECKING:
    from pipelines.run.delivery import RunScope

__all__ = ["ADOPTED_MESSAGE", "AdoptedRecords"]

# The message `why` shows beside the outcome: the record was not sent by this run.
ADOPTED_MESSAGE = "adopted: the org already held this content (run --adopt); not sent"


class AdoptedRecords:
    """Called by admission with each chunk's unchanged records; one ledger row per chunk,
    as a batch of outcomes is, under a batch id no request ever carries."""

    def __init__(self, scope: RunScope):
        self.scope, self.count, self._chunks = scope, 0, 0

    def __call__(self, external_ids: list[str], keys: np.ndarray, hashes: np.ndarray) -> None:
        scope = self.scope
        self._chunks += 1
        scope.ledger.record_outcomes(
            scope.run_id,
            batch_id=f"{ADOPTED_BATCH}{self._chunks}",
            target_id=scope.target_id,
            entity=scope.entity,
            external_ids=external_ids,
            key_hashes=keys,
            content_hashes=hashes,
            statuses=["adopted"] * len(external_ids),
            messages=[ADOPTED_MESSAGE] * len(external_ids),
        )
        self.count += len(external_ids)
