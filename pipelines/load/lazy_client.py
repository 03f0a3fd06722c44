"""The run's HTTP client, made when the first request goes out.

Most cron runs find nothing changed and send nothing; making an ``httpx.Client`` loads its
transport (httpcore, h11: ~25 ms and ~2 MB) and, for an https target, its CA store (~45 ms).
The client is made whole, as given, on first use: it reads the proxy and certificate
settings of the environment (``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE`` …) exactly as
one made up front would; only the moment changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx

__all__ = ["LazyClient"]


class LazyClient:
    """Stands in for the ``httpx.Client`` that ``make`` returns, made on the first
    ``request`` (from any thread; made once) and closed by ``close`` if it was made."""

    def __init__(self, make: Callable[[], httpx.Client]):
        self._make = make
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def made(self) -> bool:
        """Whether a request has gone out (the client exists)."""
        return self._client is not None

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        client = self._client
        if client is None:
            client = self._made()
        return client.request(method, url, **kwargs)

    def _made(self) -> httpx.Client:
        with self._lock:  # the sending threads may ask at once: one client for all of them
            if self._closed:
                raise RuntimeError("the HTTP client of this run is closed")
            if self._client is None:
                self._client = self._make()
            return self._client

    def close(self) -> None:
        with self._lock:
            self._closed = True
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> LazyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
