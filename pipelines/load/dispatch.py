"""Bounded concurrency: batches go out on worker threads while the main thread keeps
extracting, mapping and hashing; results come back to the main thread, which alone writes
the ledger."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING

from pipelines.load.batching import Batch
from pipelines.load.send_pool import SendPool
from pipelines.load.sender import BatchResult, Sender

__all__ = ["Dispatcher"]

_STOP_POLL_S = 0.2  # how often a wait for answers looks for a stop request

if TYPE_CHECKING:
    from pipelines.run.stopping import StopRequest


class Dispatcher:
    def __init__(
        self,
        sender: Sender,
        concurrency: int,
        on_done: Callable[[Batch, BatchResult], None],
        stop: StopRequest | None = None,
    ):
        self.sender, self.concurrency, self.on_done = sender, concurrency, on_done
        self.stop = stop  # checked while waiting for answers: a signal is not kept waiting
        self._pool = SendPool(concurrency)
        self._in_flight: dict[Future, Batch] = {}
        self._raised: list[Batch] = []  # batches whose sending raised (a refused key)
        self._abandoned = False

    def submit(self, batch: Batch) -> None:
        # One batch queued per worker beyond those in flight keeps the pipe full without
        # letting extraction run far ahead of the network.
        while len(self._in_flight) >= 2 * self.concurrency:
            self._collect(FIRST_COMPLETED)
        self._in_flight[self._pool.submit(self.sender.send, batch.records.bodies)] = batch

    def drain(self) -> None:
        while self._in_flight:
            self._collect(FIRST_COMPLETED)

    def abandon(self, grace_s: float) -> list[Batch]:
        """Stop: cancel what has not started, give what has ``grace_s`` to land, return every
        unfinished batch (a request still out after that is not waited for: its outcome is
        unknown, so its records count as not sent, and resending them is idempotent)."""
        self._abandoned = True
        for future in self._in_flight:
            future.cancel()
        wait(self._in_flight, timeout=grace_s)
        self._pool.shutdown(wait=False)
        unfinished, self._raised = self._raised, []
        for future, batch in self._in_flight.items():
            # A batch that landed before the stop is still recorded, so the ledger tells the truth.
            if future.done() and not future.cancelled() and future.exception() is None:
                self.on_done(batch, future.result())
            else:
                unfinished.append(batch)
        self._in_flight.clear()
        return unfinished

    def close(self) -> None:
        # After abandon(), a request still on the wire is not waited for: the run records
        # itself now, and the daemon thread sending it keeps no one waiting at exit.
        self._pool.shutdown(wait=not self._abandoned)

    def _collect(self, how: str) -> None:
        done: set[Future] = set()
        while not done:
            done, _ = wait(self._in_flight, timeout=_STOP_POLL_S, return_when=how)
            if not done and self.stop is not None:
                self.stop.check()
        for future in done:
            batch = self._in_flight.pop(future)
            try:
                result = future.result()  # re-raises AuthError from the worker
            except BaseException:
                self._raised.append(batch)  # unsent, as far as anyone knows: abandon counts it
                raise
            self.on_done(batch, result)
