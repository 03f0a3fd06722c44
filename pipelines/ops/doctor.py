"""`nymble-sync doctor`: can a run work from here? Each check says what it found in plain words.

Checks, in order: the ledger opens and takes a write; the target resolves (and has a key);
its host resolves and accepts a connection; the API accepts the key; this machine's clock
agrees with the API's. Nothing here ever shows the key or the ledger password.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx

from pipelines.contract import API_PATHS
from pipelines.errors import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_TRANSPORT,
    AuthError,
    NymbleSyncError,
    RetryableResponse,
)
from pipelines.ledger import Ledger, lock_holder
from pipelines.load.http import request
from pipelines.run.resources import client_for, default_ledger_url, open_target
from pipelines.targets import Target, default_state_dir

__all__ = ["Check", "DoctorSettings", "diagnose", "exit_code"]

TIMEOUT_S = 5.0
MAX_SKEW_S = 60.0
Category = Literal["config", "auth", "transport"]
_EXIT = {"config": EXIT_CONFIG, "auth": EXIT_AUTH, "transport": EXIT_TRANSPORT}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    category: Category | None = None  # what a failure means for the exit code
    warning: bool = False  # worth fixing, but no run fails because of it

    @property
    def mark(self) -> str:
        return "!" if self.warning else ("✓" if self.ok else "✗")


@dataclass(frozen=True)
class DoctorSettings:
    target: str = "local"
    api_key_file: Path | None = None
    ledger_url: str | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)


def diagnose(settings: DoctorSettings, warn: Callable[[str], None] = print) -> list[Check]:
    """Run every check that can run; a check that cannot (no target, no connection) is
    left out rather than failed a second time."""
    checks = [_check_ledger(settings.ledger_url or default_ledger_url(settings.state_dir))]
    try:
        # Doctor only reads, so production needs no consent here.
        with open_target(settings, allow_production=True, warn=warn) as target:
            named = settings.target.rstrip("/") != target.base_url
            where = f"{settings.target} → {target.label}" if named else target.base_url
            checks.append(Check("target", True, f"{where} (key: {_key_source(settings)})"))
            checks.extend(_check_api(target))
    except NymbleSyncError as exc:  # the target cannot be resolved: no key, bad URL, ...
        checks.append(Check("target", False, str(exc), "config"))
    except (OSError, sqlite3.Error) as exc:
        if settings.target != "local":
            raise
        checks.append(_local_target_failed(settings.state_dir, exc))
    return checks


def _local_target_failed(state_dir: Path, exc: OSError | sqlite3.Error) -> Check:
    # The local emulator keeps its data in the state directory, which may be read-only.
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return Check(
        "target",
        False,
        f"the local emulator cannot keep its data in {state_dir} ({reason}): make that "
        "directory writable, or name another --target",
        "config",
    )


def exit_code(checks: list[Check]) -> int:
    """0 if every check passed, else the exit code of the first that failed."""
    failed = [c for c in checks if not c.ok and not c.warning]
    return _EXIT[failed[0].category or "config"] if failed else EXIT_OK


def _check_ledger(url: str) -> Check:
    try:
        with Ledger.connect(url) as ledger:
            where = ledger.url_for_display
            # A real write: take and release a lock no run uses.
            holder = lock_holder()
            ledger.acquire_lock(job="nymble-sync doctor", target_id=holder, holder=holder).release()
    except NymbleSyncError as exc:  # messages from the ledger already hide the password
        return Check("ledger", False, f"{exc}", "config")
    return Check("ledger", True, f"run ledger at {where} is reachable and writable")


def _key_source(settings: DoctorSettings) -> str:
    if settings.target == "local":
        return "the local emulator's own"
    return str(settings.api_key_file) if settings.api_key_file else "NYMBLE_API_KEY"


def _check_api(target: Target) -> list[Check]:
    connected = _check_connect(target.base_url)
    if not connected.ok:
        return [connected]
    key, response = _check_key(target)
    if response is None:
        return [connected, key]
    return [connected, key, _check_clock(response)]


def _check_connect(base_url: str) -> Check:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
    except OSError as exc:
        detail = f"cannot resolve {host}: {exc.strerror or exc} (check the target URL and DNS)"
        return Check("connect", False, detail, "transport")
    try:
        socket.create_connection((address, port), timeout=TIMEOUT_S).close()
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return Check(
            "connect",
            False,
            f"cannot connect to {host}:{port} ({address}): {reason}; check the URL, "
            "that the service is up, and firewalls or proxies between here and there",
            "transport",
        )
    return Check("connect", True, f"{host} resolves to {address} and accepts connections on {port}")


def _check_key(target: Target) -> tuple[Check, httpx.Response | None]:
    started = time.perf_counter()
    path = API_PATHS["products"]
    try:
        with client_for(target, TIMEOUT_S, 1) as client:
            response = request(client, "GET", path, params={"pageSize": 1})
    except AuthError as exc:
        return Check(
            "key",
            False,
            f"the API refused this key ({exc.http_status}): check NYMBLE_API_KEY / --api-key-file "
            "and that it belongs to this environment",
            "auth",
        ), None
    except RetryableResponse as exc:
        unhealthy = f"GET {path} answered {exc.http_status}: the API is not healthy"
        detail = unhealthy if exc.http_status else f"GET {path} failed: {exc}"
        return Check("key", False, detail, "transport"), None
    took = f"{(time.perf_counter() - started) * 1000:.0f} ms"
    if response.is_error:
        detail = f"GET {path} answered {response.status_code}: the API is not healthy"
        return Check("key", False, detail, "transport"), None
    detail = f"the API accepted the key (GET {path}: {response.status_code}, {took})"
    return Check("key", True, detail), response


def _check_clock(response: httpx.Response) -> Check:
    header = response.headers.get("date")
    try:
        theirs = parsedate_to_datetime(header) if header else None
    except (TypeError, ValueError):
        theirs = None
    if theirs is None:
        return Check("clock", True, "the API sent no usable Date header: clock not compared")
    # Date has whole seconds, so up to a second (plus the round trip) is no skew at all.
    skew = (datetime.now(UTC) - theirs).total_seconds()
    if abs(skew) <= 2:
        return Check("clock", True, "this machine's clock agrees with the API's (within 2 s)")
    direction = "ahead of" if skew > 0 else "behind"
    detail = f"this machine's clock is {abs(skew):.0f} s {direction} the API's"
    if abs(skew) > MAX_SKEW_S:
        return Check(
            "clock",
            False,
            f"{detail}: fix its time sync (NTP); stale-lock takeover and Retry-After dates "
            "rely on clocks that agree",
            warning=True,
        )
    return Check("clock", True, detail)
