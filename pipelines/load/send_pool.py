"""The threads that send batches: daemon threads, so that a stopped run is never kept alive
by a request still on the wire (the interpreter waits for ``ThreadPoolExecutor`` threads at
exit, for as long as the HTTP client's timeout). A stopped run has recorded what landed;
what had not landed is sent again by the next run, idempotently."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["SendPool"]


class SendPool:
    """Up to ``workers`` threads, started as batches are submitted (one a batch until there
    are ``workers``): a run with nothing to send starts none. Submit from one thread."""

    def __init__(self, workers: int, name: str = "send"):
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._workers, self._name = workers, name
        self._threads: list[threading.Thread] = []
        self._submitted = 0

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        self._submitted += 1
        if len(self._threads) < min(self._submitted, self._workers):
            self._start_thread()
        return future

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def shutdown(self, *, wait: bool) -> None:
        """Cancel what has not started; with ``wait``, let the threads finish what has.
        Shutting down twice is harmless (a stop abandons, then the run closes)."""
        if not self._closed:
            self._closed = True
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                task[0].cancel()
            for _ in self._threads:
                self._tasks.put(None)  # one stop sign a thread
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(exc)
