"""When each request reached an in-process emulator, and how it was answered.

The emulator counts requests by route and status but keeps no times, and the pacing tests
need them: which requests started during a pause, what rate the workers kept while
requests flowed, and which worker sent each (the first item's ``externalId`` tells the
shard). This log listens where every request passes: the router's ``match`` (the request's
head has just been read: its arrival), ``dispatch`` (its body, for requests the API
handles) and the stats' ``request`` (its answer is being written), all on the request's
handler thread. It changes no behaviour. (The emulator keeping such a log itself, behind
its stats, would make this unnecessary.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import orjson

__all__ = ["Logged", "RequestLog"]


@dataclass(frozen=True)
class Logged:
    arrived: float  # time.monotonic() of this process, as the emulator's limiter sees it
    answered: float
    route: str
    status: str
    first_key: str | None  # the externalId of a bulk body's first item (None: not handled)


class RequestLog:
    def __init__(self, emulator) -> None:
        app = emulator._app  # noqa: SLF001 - a listener, until the emulator logs requests
        self.entries: list[Logged] = []
        self._local = threading.local()
        self._lock = threading.Lock()
        match, dispatch, count = app.router.match, app.dispatch, app.stats.request

        def arriving(method, path):
            self._local.arrived, self._local.key = time.monotonic(), None
            return match(method, path)

        def handling(route, request, other_method):
            self._local.key = _first_key(request.body)
            return dispatch(route, request, other_method)

        def answering(route, status):
            now, mine = time.monotonic(), self._local
            arrived, key = getattr(mine, "arrived", now), getattr(mine, "key", None)
            with self._lock:
                self.entries.append(Logged(arrived, now, route, str(status), key))
            count(route, status)

        app.router.match, app.dispatch, app.stats.request = arriving, handling, answering

    def of(self, route: str) -> list[Logged]:
        """The requests to ``route`` (e.g. ``POST /api/products/bulk``) by arrival."""
        with self._lock:
            return sorted((e for e in self.entries if e.route == route), key=lambda e: e.arrived)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()


def _first_key(body: bytes) -> str | None:
    try:
        items = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    first = items[0] if isinstance(items, list) and items else None
    return first.get("externalId") if isinstance(first, dict) else None
