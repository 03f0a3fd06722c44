"""Where records go: a named environment or a URL, the API key for it, and the fingerprint
that scopes ledger state to it.

Production is never a default and needs explicit consent; plain http is refused except on
loopback; the key is read from the environment or a file and is never printed, logged or
stored (the ledger stores a fingerprint of base URL and key).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .contract import ENVIRONMENTS
from .errors import ConfigError, TargetError

__all__ = ["API_KEY_ENV", "Target", "fingerprint", "read_api_key", "resolve_target"]

API_KEY_ENV = "NYMBLE_API_KEY"


@dataclass(frozen=True)
class Target:
    name: str  # "local", "sandbox", "production" or "url"
    base_url: str
    api_key: str = field(repr=False)
    id: str = ""  # opaque; safe to store and print

    @property
    def label(self) -> str:
        """How summaries, the ledger and metrics name the target: never a key, and a URL
        without any ``user:password@`` it was given with."""
        if self.name == "local":
            return "local emulator"
        parts = urlsplit(self.base_url)
        if parts.username is None and parts.password is None:
            return self.base_url
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit(parts._replace(netloc=netloc))


def fingerprint(scope: str, api_key: str) -> str:
    """An id for (where, which key) that reveals neither: ledger state is scoped by it."""
    key_part = hashlib.sha256(api_key.encode()).hexdigest()
    return hashlib.sha256(f"{scope}\n{key_part}".encode()).hexdigest()[:24]


def resolve_target(
    target: str,
    *,
    api_key_file: Path | None,
    environ: Mapping[str, str],
    allow_production: bool,
    warn: Callable[[str], None],
) -> Target:
    """Resolve a remote target (sandbox, production or a URL); ``local`` is the caller's."""
    if target in ENVIRONMENTS:
        name, base_url = target, ENVIRONMENTS[target]
    elif "://" in target:
        name, base_url = "url", _checked_url(target)
    else:
        known = ", ".join(["local", *ENVIRONMENTS])
        raise TargetError(f"unknown target {target!r}: use one of {known}, or a URL")
    if base_url.rstrip("/") == ENVIRONMENTS["production"] and not allow_production:
        raise TargetError(
            "refusing to write to production without --allow-production "
            "(or allow_production: true in the job file)"
        )
    key = read_api_key(api_key_file, environ, warn=warn)
    base_url = base_url.rstrip("/")
    return Target(name, base_url, key, fingerprint(base_url, key))


def read_api_key(
    path: Path | None, environ: Mapping[str, str], *, warn: Callable[[str], None]
) -> str:
    if path is not None:
        try:
            mode = path.stat().st_mode
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the API key file {path}: {exc.strerror}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            warn(f"{path} is readable by other users; run: chmod 600 {path}")
    else:
        key = environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise ConfigError(f"no API key: set {API_KEY_ENV} or pass --api-key-file PATH")
    return key


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"target URL {url!r} must look like https://host[:port]")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise TargetError(
            f"refusing plain http to {parts.hostname}: API keys would cross "
            "the network unencrypted; use https (http is allowed on loopback)"
        )
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("NYMBLE_SYNC_HOME", ".nymble-sync"))
