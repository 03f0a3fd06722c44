"""The send half of every run, whatever the entity: open the run in the ledger, cut admitted
records into batches, send them with bounded concurrency, record each batch before it goes
and its outcomes when it returns, account for what was not sent, close the run.

Only the main thread writes the ledger: outcomes come back from the sending threads through
the dispatcher's callback, which runs here.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.admit.acked_state import AckedState
from pipelines.admit.ledger_state import LedgerState
from pipelines.errors import TransportError
from pipelines.load.batching import Batch, Batcher, Pending
from pipelines.load.dispatch import Dispatcher
from pipelines.load.sender import BatchResult
from pipelines.run.summary import RunSummary
from pipelines.transform.rejects import Reject, RejectsWriter

if TYPE_CHECKING:
    from pipelines.ledger import Ledger
    from pipelines.run.options import RunOptions
    from pipelines.run.stopping import StopRequest
    from pipelines.targets import Target

__all__ = ["Delivery", "RunScope", "open_run"]

UNREACHABLE_BATCHES = 3
# A heartbeat is a ledger write (~1 ms on SQLite): one per chunk cost ~0.25 s per million
# rows. A crashed run is told apart by a heartbeat minutes old, so once a second is plenty.
HEARTBEAT_EVERY_S = 1.0


@dataclass
class RunScope:
    """One run as the ledger knows it, with the rejects file that goes with it."""

    ledger: Ledger
    run_id: int
    job: str
    target_id: str
    entity: str
    source: str
    summary: RunSummary
    rejects: RejectsWriter
    started: float
    last_beat: float = 0.0

    def beat(self) -> None:
        """Tell the ledger this run is alive (at most every HEARTBEAT_EVERY_S); raises
        LockHeld if its lock was lost to another process."""
        now = time.monotonic()
        if now - self.last_beat >= HEARTBEAT_EVERY_S:
            # the counts so far: a run that dies still shows what it had read and sent
            self.ledger.heartbeat(self.run_id, self.summary.counts())
            self.last_beat = now

    def acked_state(self, full: bool) -> AckedState | LedgerState:
        """What the target acknowledged before (nothing when ``full``: send everything),
        read from the ledger as the run goes (see LedgerState)."""
        if full:
            return AckedState.empty()
        return LedgerState(self.ledger, target_id=self.target_id, entity=self.entity)

    def finish(self) -> None:
        self.rejects.close()
        s = self.summary
        s.elapsed_s = time.perf_counter() - self.started
        s.rejects_path = str(self.rejects.path) if self.rejects.count else None
        self.ledger.finish_run(
            self.run_id,
            status=s.status,
            counts=s.counts(),
            rejects_path=s.rejects_path,
            elapsed_s=s.elapsed_s,
        )


def open_run(
    ledger: Ledger, target: Target, summary: RunSummary, source: str, options: RunOptions
) -> RunScope:
    """Finish the bookkeeping of interrupted runs, then record this one as running."""
    started = time.perf_counter()
    job, entity = summary.job, summary.entity
    crashed = ledger.abandon_unfinished(job=job, target_id=target.id, entity=entity)
    if crashed:
        options.log(f"finishing the work of interrupted run(s) {crashed}")
    run_id = ledger.begin_run(
        job=job,
        target_id=target.id,
        target_label=target.label,
        entity=entity,
        source=source,
        full=options.full,
    )
    summary.run_id = run_id
    path = options.rejects_path or options.state_dir / "rejects" / f"{job}-run{run_id}.csv"
    return RunScope(
        ledger, run_id, job, target.id, entity, source, summary, RejectsWriter(path), started
    )


class Delivery:
    def __init__(
        self, scope: RunScope, sender, *, max_items: int, max_bytes: int, stop: StopRequest
    ):
        self.scope, self.stop_request = scope, stop
        self.batcher = Batcher(max_items, max_bytes)
        self.dispatcher = Dispatcher(sender, sender.pacer.max_in_flight, self._record, stop)
        self._queue: deque[Batch] = deque()
        self.deactivating = False  # batches now carry deactivations, not feed records
        self.deactivate_failed = 0
        self._unreachable = 0  # batches in a row that failed whole after every retry
        self._stopping = False

    def send(self, released: Iterable[Pending]) -> None:
        for pending in released:
            self._queue.extend(self.batcher.add(pending))
        self._send_queued()

    def finish(self) -> None:
        """Send what is left in the batcher and wait for every answer."""
        self._queue.extend(self.batcher.flush())
        self._send_queued()
        self.dispatcher.drain()

    def stop(self, grace_s: float) -> None:
        """Account for every record that will not be sent in this run (the next run will);
        requests in flight get ``grace_s`` to land."""
        self._stopping = True  # what lands now is recorded, and raises nothing more
        unsent = [*self.dispatcher.abandon(grace_s), *self._queue, *self.batcher.flush()]
        count = sum(len(b.records) for b in unsent)
        if self.deactivating:
            self.scope.summary.notes.append(
                f"{count:,} deactivation(s) not sent; the next run will"
            )
        else:
            self.scope.summary.skipped += count
        self._queue.clear()

    def close(self) -> None:
        self.dispatcher.close()

    def _send_queued(self) -> None:
        scope = self.scope
        while self._queue:
            self.stop_request.check()  # a signal is heeded between batches, not after the last
            batch = self._queue[0]
            scope.ledger.batch_pending(
                scope.run_id,
                batch_id=batch.id,
                entity=scope.entity,
                item_count=len(batch.records),
                byte_count=batch.byte_count,
            )
            self.dispatcher.submit(batch)  # may raise AuthError collected from an earlier batch
            self._queue.popleft()
            scope.summary.batches += 1

    def _record(self, batch: Batch, result: BatchResult) -> None:
        """Main thread only: count a finished batch and write its outcomes to the ledger."""
        scope, s = self.scope, self.scope.summary
        rec, statuses = batch.records, [o.status for o in result.outcomes]
        failed = [i for i, status in enumerate(statuses) if status == "failed"]
        if self.deactivating:  # not source rows: kept out of the balanced row counts
            s.deactivated += len(statuses) - len(failed)
            self.deactivate_failed += len(failed)
        else:
            s.created += statuses.count("created")
            s.updated += statuses.count("updated")
            s.failed += len(failed)
        s.requests += result.requests
        s.retries += result.retries
        s.throttled += result.throttled
        if result.shrink:
            self.batcher.max_items = max(1, self.batcher.max_items // 2)
            self.batcher.max_bytes = max(1_000, self.batcher.max_bytes // 2)
        scope.ledger.record_outcomes(
            scope.run_id,
            batch_id=batch.id,
            target_id=scope.target_id,
            entity=scope.entity,
            external_ids=rec.external_ids,
            key_hashes=rec.key_hashes,
            content_hashes=rec.content_hashes,
            statuses=statuses,
            messages=[o.message for o in result.outcomes],
        )
        scope.ledger.batch_done(
            scope.run_id,
            batch_id=batch.id,
            status="failed" if len(failed) == len(statuses) else "acked",
            http_status=result.http_status,
            attempts=result.requests,
            elapsed_ms=0.0,
            error="; ".join(result.errors) or None,
        )
        scope.rejects.write(self._api_reject(rec, i, result.outcomes[i].message) for i in failed)
        if self._stopping:
            return
        scope.beat()  # sending the last window can take long after the last chunk was read
        self._give_up_when_unreachable(result, len(failed) == len(statuses))

    def _give_up_when_unreachable(self, result: BatchResult, all_failed: bool) -> None:
        """A few whole batches lost to the network in a row mean the API is down: stop, rather
        than spend an hour of backoff on every remaining batch (the next run sends them)."""
        self._unreachable = self._unreachable + 1 if result.errors and all_failed else 0
        if self._unreachable >= UNREACHABLE_BATCHES:
            raise TransportError(
                f"the API stayed unreachable: {self._unreachable} batches in a row failed after "
                f"every retry ({result.errors[-1]}); check the network and the target URL, "
                "then run again: nothing is lost"
            )

    def _api_reject(self, rec: Pending, i: int, message: str | None) -> Reject:
        if self.deactivating:
            return Reject(
                self.scope.source,
                None,
                rec.external_ids[i],
                "active",
                None,
                "api_failed",
                message or "failed",
            )
        return Reject(
            self.scope.source,
            int(rec.rows[i]),
            rec.external_ids[i],
            None,
            None,
            "api_failed",
            message or "failed",
        )
