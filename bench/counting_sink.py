"""A counting sink: a loopback stand-in for the Nymble API for client-side benchmarks only.

It accepts every item and stores nothing but counts, so a benchmark measures the client and
not the target (the emulator keeps every order as JSON in SQLite: at 1,000,000 order lines it
spent 2.4x the CPU of the client it served, on the same 2 cores). What it answers:

- ``POST /api/products/bulk``, ``POST /api/orders/bulk``: every item ``Created`` (CONTRACT
  §2.8, §3.5's envelope, with ``productId`` / ``id`` and ``orderNumber``); it counts orders and
  their lines, and remembers product SKUs (only so that a benchmark can list them).
- ``PUT /api/customers``: 201 the first time a customer number is sent, else 200; remembered.
- ``GET /api/products`` and ``GET /api/customers``: the remembered SKUs / customer numbers,
  paged as §5.4 says (``pageNumber``, ``pageSize`` up to 100); any other ``GET``: an empty page.
- ``GET /_sink/stats``: ``{"requests", "products", "customers", "orders", "lines"}``.

It validates nothing: a benchmark against it says how fast the client reads, maps, checks,
serializes, sends and records, never whether the API would accept the records (the tests do
that against the emulator). Nagle is off: Python's http.server writes headers and body
separately, and the client's delayed ACK would otherwise cost ~40 ms a request.

    python bench/counting_sink.py --port 8788
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = ["serve", "start_sink"]


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.orders = self.lines = 0
        self.skus: dict[str, None] = {}  # insertion-ordered sets
        self.customers: dict[str, None] = {}

    def stats(self) -> dict:
        with self.lock:
            return {"requests": self.requests, "products": len(self.skus),
                    "customers": len(self.customers), "orders": self.orders,
                    "lines": self.lines}  # fmt: skip


def _handler(counts: _Counts) -> type[BaseHTTPRequestHandler]:
    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the API
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            items = self._body()
            items = items if isinstance(items, list) else []
            orders = "/orders" in self.path
            results = [_created(i, item, orders) for i, item in enumerate(items)]
            with counts.lock:
                counts.requests += 1
                if orders:
                    counts.orders += len(items)
                    counts.lines += sum(len(item.get("items") or ()) for item in items)
                else:
                    counts.skus.update(dict.fromkeys(r["sku"] for r in results if r.get("sku")))
            n = len(results)
            summary = {"totalCount": n, "createdCount": n, "updatedCount": 0, "failedCount": 0}
            self._answer(200, {**summary, "results": results})

        def do_PUT(self) -> None:  # noqa: N802
            body = self._body()
            number = body.get("customerNumber") if isinstance(body, dict) else None
            with counts.lock:
                counts.requests += 1
                new = number not in counts.customers
                counts.customers[number] = None
            self._answer(201 if new else 200, body if isinstance(body, dict) else {})

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            if url.path == "/_sink/stats":
                self._answer(200, counts.stats())
                return
            with counts.lock:
                counts.requests += 1
                if url.path == "/api/products":
                    values = [{"sku": s, "active": True} for s in counts.skus]
                elif url.path == "/api/customers":
                    values = [{"customerNumber": c} for c in counts.customers]
                else:
                    values = []
            self._answer(200, _page(values, parse_qs(url.query)))

        def _body(self) -> object:
            data = self.rfile.read(int(self.headers.get("content-length") or 0))
            return orjson.loads(data) if data else None

        def _answer(self, status: int, payload: object) -> None:
            data = orjson.dumps(payload)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Sink


def _created(index: int, item: object, orders: bool) -> dict:
    item = item if isinstance(item, dict) else {}
    result = {"index": index, "externalId": item.get("externalId"), "status": "Created"}
    if orders:
        result.update(id=f"ord_{index}", orderNumber=item.get("orderNumber") or f"ORD-{index}")
    else:
        result.update(sku=item.get("sku"), productId=f"prod_{index}")
    return result


def _page(values: list[dict], query: dict[str, list[str]]) -> dict:
    size = max(1, min(100, int(query.get("pageSize", ["25"])[0])))
    number = max(1, int(query.get("pageNumber", ["1"])[0]))
    pages = max(1, -(-len(values) // size))
    data = values[(number - 1) * size : number * size]
    return {"data": data, "totalRecords": len(values), "currentPage": number,
            "totalPages": pages, "pageSize": size}  # fmt: skip


def serve(port: int) -> None:
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), _handler(_Counts())).serve_forever()


def start_sink() -> tuple[subprocess.Popen, str]:
    """The sink in a process of its own on a free loopback port; (process, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port)])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the counting sink did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8788)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
