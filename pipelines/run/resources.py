"""What a command connects to: the run ledger's default place, the target (the in-process
emulator for ``local``), and the one pooled HTTP client of a run, made on its first request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pipelines.load.lazy_client import LazyClient
from pipelines.targets import Target, fingerprint, resolve_target

__all__ = ["LOCAL_KEY", "client_for", "default_ledger_url", "local_target", "open_target"]

LOCAL_KEY = "local-emulator-key"  # the in-process emulator's own key: not a secret


def default_ledger_url(state_dir: Path) -> str:
    return f"sqlite:///{(state_dir / 'ledger.sqlite').as_posix()}"


@contextmanager
def open_target(
    settings: Any,  # SyncSettings or DoctorSettings: target, state_dir, key file, environ
    *,
    allow_production: bool,
    warn: Callable[[str], None],
) -> Iterator[Target]:
    """The target a command names: the in-process emulator for ``local``, else a resolved
    remote target (``allow_production`` is the caller's decision: writes need consent)."""
    if settings.target == "local":
        with local_target(settings.state_dir) as target:
            yield target
        return
    yield resolve_target(
        settings.target,
        api_key_file=settings.api_key_file,
        environ=settings.environ,
        allow_production=allow_production,
        warn=warn,
    )


@contextmanager
def local_target(state_dir: Path) -> Iterator[Target]:
    """The emulator, in this process, keeping its data in the state directory between runs."""
    from pipelines.emulator import Emulator, EmulatorSettings  # only the local target needs it

    state_dir.mkdir(parents=True, exist_ok=True)
    db = (state_dir / "emulator.sqlite").resolve()
    settings = EmulatorSettings(api_keys={LOCAL_KEY: "org_local"}, db_path=str(db))
    with Emulator.start(settings) as emulator:
        yield Target("local", emulator.base_url, LOCAL_KEY, fingerprint(f"local:{db}", LOCAL_KEY))


def client_for(target: Target, timeout_s: float, concurrency: int) -> LazyClient:
    """One pooled keep-alive client for the whole run (CONTRACT §1.2: key in x-api-key),
    made when the first request goes out: a run with nothing to send makes none."""
    return LazyClient(lambda: _client(target, timeout_s, concurrency))


def _client(target: Target, timeout_s: float, concurrency: int) -> httpx.Client:
    return httpx.Client(
        base_url=target.base_url,
        # Loading the CA certificates costs ~45 ms; a plain-http target (loopback only, see
        # targets.py) has no TLS to verify, and httpx follows no redirect to https.
        verify=target.base_url.startswith("https:"),
        headers={"x-api-key": target.api_key, "user-agent": "nymble-sync/0.1"},
        timeout=httpx.Timeout(timeout_s, connect=10.0),
        limits=httpx.Limits(
            max_connections=max(concurrency, 4) * 2,
            max_keepalive_connections=max(concurrency, 4) * 2,
        ),
    )
