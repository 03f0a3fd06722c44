"""Counters behind `GET /_emulator/stats`: requests by route and status, faults, items."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

__all__ = ["Stats"]


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._faults: Counter[str] = Counter()
        self._items: Counter[str] = Counter()

    def request(self, route: str, status: int | str) -> None:
        """Count one request answered with `status`, or `"dropped"` when no response was sent."""
        with self._lock:
            self._requests[route][str(status)] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def items(self, count: int) -> None:
        with self._lock:
            self._items["received"] += count

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._items.clear()

    def snapshot(self) -> dict[str, dict]:
        with self._lock:
            return {
                "requests": {route: dict(c) for route, c in self._requests.items()},
                "faults": dict(self._faults),
                "items": {"received": self._items["received"]},
            }
