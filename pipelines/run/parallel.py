"""Chunks prepared on worker threads, handed back in source order with bounded read-ahead."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["prepare_in_parallel"]

P = TypeVar("P")
R = TypeVar("R")


def prepare_in_parallel(
    chunks: Iterable[Any],
    prepare: Callable[[Any], P],
    *,
    workers: int = 2,
    in_order: Callable[[P], R] | None = None,
) -> Iterator[R]:
    """Prepared chunks in source order; besides the one the caller holds, at most ``workers``
    are read ahead (bounded memory).

    A reader thread pulls chunks from the source and hands them to the workers, so reading
    goes on while the caller handles a prepared chunk; an error from the source is raised
    here after the chunks read before it. ``in_order`` (a stateful step such as duplicate
    detection) runs on the workers too, one chunk at a time in source order, so the
    caller's thread is left with what must happen there.
    """
    slots = threading.Semaphore(workers)
    ready: queue.Queue[Future | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def task(chunk: Any, turn: threading.Event, next_turn: threading.Event):
        try:
            try:
                prepared = None if stop.is_set() else prepare(chunk)
            finally:
                turn.wait()  # the chunk before has been through in_order
            if in_order is None or prepared is None:
                return prepared
            return in_order(prepared)
        finally:
            next_turn.set()

    def read(pool: ThreadPoolExecutor) -> None:
        source = iter(chunks)
        turn = threading.Event()
        turn.set()
        try:
            try:
                while True:
                    slots.acquire()  # before reading: a chunk read is a chunk held
                    if stop.is_set():
                        return
                    chunk = next(source, None)
                    if chunk is None:
                        break
                    next_turn = threading.Event()
                    ready.put(pool.submit(task, chunk, turn, next_turn))
                    turn = next_turn
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # noqa: BLE001 - raised on the consuming thread, in order
            ready.put(exc)
        else:
            ready.put(None)

    # Tasks are never cancelled: each must pass its turn on, or the next would wait forever.
    # After a stop they skip their work instead.
    with ThreadPoolExecutor(workers, thread_name_prefix="prepare") as pool:
        reader = threading.Thread(target=read, args=(pool,), name="read", daemon=True)
        reader.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                result = item.result()
                slots.release()
                yield result
        finally:
            stop.set()
            slots.release()  # a reader waiting for a slot sees the stop
            reader.join()
