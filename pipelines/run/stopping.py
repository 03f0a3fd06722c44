"""Stopping a run cleanly on SIGTERM (systemd, Kubernetes, `timeout`) or SIGINT (Ctrl-C).

The signal handler only records the request; the run checks it between chunks, stops
reading, gives the requests in flight a grace period to land, records itself as
``interrupted`` with its counts, releases its lock and exits 143 (SIGTERM) or 130 (SIGINT).
A second Ctrl-C stops at once, as Python does by default.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.errors import EXIT_SIGINT, EXIT_SIGTERM, Interrupted

__all__ = ["GRACE_S", "StopRequest", "stop_on_signals"]

GRACE_S = 10.0  # how long requests in flight may take to land once a stop is asked for
_EXIT = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM}


class StopRequest:
    """Set from a signal handler (or any thread); read by the run between chunks."""

    def __init__(self, grace_s: float = GRACE_S):
        self.grace_s = grace_s
        self.signum: int | None = None
        self._event = threading.Event()

    def request(self, signum: int) -> None:
        self.signum = signum
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def halt(self) -> None:
        """Stop for another reason (an error ends the run): backoffs end, nothing is raised
        on the main thread that was not already."""
        self._event.set()

    def rearm(self) -> None:
        """After a run: a halt is forgotten (the next run may go), a signal is not."""
        if self.signum is None:
            self._event.clear()

    def check(self) -> None:
        """Raise ``Interrupted`` once a stop was asked for."""
        if self.requested:
            name = signal.Signals(self.signum).name if self.signum else "a stop request"
            raise Interrupted(name, _EXIT.get(self.signum, EXIT_SIGINT))

    def sleep(self, seconds: float) -> None:
        """A retry's backoff that ends early when a stop is asked for."""
        self._event.wait(seconds)


@contextmanager
def stop_on_signals(stop: StopRequest) -> Iterator[StopRequest]:
    """SIGTERM and SIGINT ask ``stop`` to stop; a second SIGINT interrupts at once. Only the
    main thread may install handlers; elsewhere (a library caller's thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum, _frame) -> None:
        if signum == signal.SIGINT and stop.requested:
            raise KeyboardInterrupt
        stop.request(signum)

    previous = {s: signal.signal(s, on_signal) for s in _EXIT}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
