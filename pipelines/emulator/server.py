"""The HTTP layer: a stdlib threading server with keep-alive and socket-level fault injection."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .admin_routes import register_admin_routes
from .api_routes import register_api_routes
from .app import EmulatorApp
from .faults import Decision
from .messages import Request, Response
from .problems import problem
from .settings import EmulatorSettings, FaultConfig

__all__ = ["Emulator", "serve_forever"]

_DRAIN_LIMIT = 256 * 1024 * 1024  # read (and discard) an oversized body up to this, then hang up
_CHUNK = 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        pass  # a client that hangs up mid-request is routine here, not worth a traceback


def _query(raw: str) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for name, values in parse_qs(raw, keep_blank_values=True).items():
        query.setdefault(name.lower(), []).extend(values)
    return query


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Small responses must not wait for the client's delayed ACK (Nagle).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.app.in_flight():
            self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self, limit: int) -> tuple[bytes, bool]:
        """(body, too_large). An oversized body is drained, not kept, so the 413 arrives cleanly."""
        length = int(self.headers.get("content-length") or 0)
        if length <= limit:
            return self.rfile.read(length), False
        if length > _DRAIN_LIMIT:
            self.close_connection = True
            return b"", True
        while length > 0:
            got = len(self.rfile.read(min(_CHUNK, length)))
            length = length - got if got else 0
        return b"", True

    def _handle(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        route, params, other_method = app.router.match(self.command, url.path)
        key = route.key if route else f"{self.command} (unmatched)"
        try:
            body, too_large = self._read_body(app.settings.max_body_bytes)
        except ValueError:
            self.close_connection = True
            return self._finish(key, problem(400, {"Content-Length": ["Invalid header."]}))
        org = None
        if url.path.startswith("/api/"):
            org = app.authenticate(self.headers)
            if org is None:
                return self._finish(key, problem(401))
        if too_large:
            limit = app.settings.max_body_bytes
            return self._finish(key, problem(413, detail=f"The body exceeds {limit} bytes."))
        decision = Decision()
        if org is not None:
            decision = app.injector.decide(org, bool(route and route.is_write), time.monotonic())
            if self._fault_answered(key, decision):
                return
        request = Request(self.command, url.path, params, _query(url.query), body, org)
        response = app.dispatch(route, request, other_method)
        if decision.headers:
            response = replace(response, headers={**response.headers, **decision.headers})
        if decision.commit_then_fail and response.status < 300:
            return self._commit_then_fail(key, response)
        self._finish(key, response)

    def _fault_answered(self, key: str, decision: Decision) -> bool:
        """Apply latency, then a drop or an error answer; True when the request is done."""
        app = self.server.app
        if decision.delay_s > 0:
            app.stopping.wait(decision.delay_s)
        if decision.kind is None:
            return False
        app.stats.fault(decision.kind)
        if decision.kind == "drop":
            self._drop(key)
            return True
        headers = dict(decision.headers)
        if decision.retry_after:
            headers["Retry-After"] = str(decision.retry_after)
        self._finish(key, problem(decision.status, headers=headers or None))
        return True

    def _commit_then_fail(self, key: str, response: Response) -> None:
        """The write is committed; now fail the way a lost response fails for the client."""
        app = self.server.app
        app.stats.fault("commit_then_fail")
        config = app.injector.config
        if config.commit_then_fail_mode == "drop":
            return self._drop(key)
        app.stopping.wait(config.commit_then_fail_delay_s)
        self._finish(key, response)

    def _drop(self, key: str) -> None:
        self.server.app.stats.request(key, "dropped")
        self.close_connection = True  # the socket closes with no response bytes at all

    def _finish(self, key: str, response: Response) -> None:
        self.server.app.stats.request(key, response.status)
        try:
            self.wfile.write(self._encode(response))
        except OSError:
            self.close_connection = True

    def _encode(self, response: Response) -> bytes:
        status = response.status
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: nymble-emulator",
        ]
        if status != 204:
            lines.append(f"Content-Length: {len(response.body)}")
            if response.content_type:
                lines.append(f"Content-Type: {response.content_type}")
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + response.body if status != 204 else head


def _build_app(settings: EmulatorSettings) -> EmulatorApp:
    app = EmulatorApp(settings)
    register_api_routes(app)
    register_admin_routes(app)
    return app


class Emulator:
    """A running emulator serving from a daemon thread; also a context manager."""

    def __init__(self, app: EmulatorApp, server: _Server, thread: threading.Thread) -> None:
        self._app, self._server, self._thread = app, server, thread
        host, port = server.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        self.base_url = f"http://{host}:{port}"

    @classmethod
    def start(cls, settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 0) -> Emulator:
        """Bind (port 0 picks a free port) and serve in a daemon thread."""
        app = _build_app(settings)
        try:
            server = _Server((host, port), app)
        except OSError:
            app.close()
            raise
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"nymble-emulator-{server.server_address[1]}",
        )
        thread.start()
        return cls(app, server, thread)

    @property
    def api_keys(self) -> dict[str, str]:
        return dict(self._app.api_keys)

    def stats(self) -> dict:
        return self._app.stats_snapshot()

    def reset(self) -> None:
        self._app.reset()

    def set_faults(self, config: FaultConfig) -> None:
        self._app.set_faults(config)

    def wait(self, timeout: float | None = None) -> None:
        """Block while serving (interruptible by Ctrl-C)."""
        self._thread.join(timeout)

    def stop(self) -> None:
        """Stop serving, wait for requests in progress, close the database."""
        if self._app.stopping.is_set():
            return
        self._app.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._app.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_forever(
    settings: EmulatorSettings,
    host: str = "127.0.0.1",
    port: int = 8787,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve until Ctrl-C, printing the base URL and the API keys first.

    Owns the process while it runs, so it also tunes the garbage collector for bulk bodies.
    """
    # A 500-item body allocates tens of thousands of short-lived objects; the default gen-0
    # threshold (700) would run the collector dozens of times per request.
    gc.set_threshold(100_000, 50, 100)
    emulator = Emulator.start(settings, host, port)
    echo(f"Nymble emulator serving at {emulator.base_url}")
    for key, org in emulator.api_keys.items():
        echo(f"  x-api-key: {key}  (organization {org})")
    echo(f"  admin: {emulator.base_url}/_emulator/stats  (Ctrl-C to stop)")
    try:
        while True:
            emulator.wait(1.0)
    except KeyboardInterrupt:
        echo("Stopping the emulator")
    finally:
        emulator.stop()
