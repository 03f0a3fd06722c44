"""A local emulator of the Nymble Commerce API, served over real HTTP on loopback.

Start it with `Emulator.start(settings)` (tests) or `serve_forever(...)` (the CLI); see
CONTRACT.md for the API it follows and `/_emulator/...` for its own admin routes.
"""

from __future__ import annotations

from .server import Emulator, serve_forever
from .settings import (
    EmulatorSettings,
    FaultConfig,
    parse_api_keys,
    parse_fault_specs,
    settings_from_options,
)

__all__ = [
    "Emulator",
    "EmulatorSettings",
    "FaultConfig",
    "parse_api_keys",
    "parse_fault_specs",
    "serve_forever",
    "settings_from_options",
]
