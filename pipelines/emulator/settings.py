"""Typed settings of the emulator and the parsers that build them from CLI options."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .limit_headers import HeaderStyle, ResetForm
from .limiters import Algorithm

__all__ = [
    "EmulatorSettings",
    "FaultConfig",
    "fault_config_from_mapping",
    "parse_api_keys",
    "parse_fault_specs",
    "settings_from_options",
]

_LIST_FIELDS = frozenset({"unknown_tiers", "fail_skus"})
_NONE_WORDS = frozenset({"", "none", "null", "off"})


class FaultConfig(BaseModel):
    """Faults injected on `/api/...` routes; everything is off by default.

    Randomness comes from one `random.Random(seed)`, so a run with the same seed and the same
    sequence of requests sees the same faults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    rate_limit: float | None = Field(default=None, gt=0)
    # How `rate_limit` (requests/s per organization) is enforced and announced; see limiters.py
    # and limit_headers.py. The defaults are the emulator's original behaviour.
    rate_limit_algorithm: Algorithm = "token_bucket"
    rate_limit_window_s: float = Field(default=1.0, gt=0)
    rate_limit_headers: HeaderStyle = "none"
    rate_limit_reset: ResetForm = "delta"
    throttle_rate: float = Field(default=0, ge=0, le=1)
    error_rate: float = Field(default=0, ge=0, le=1)
    latency_ms: float = Field(default=0, ge=0)
    jitter_ms: float = Field(default=0, ge=0)
    drop_rate: float = Field(default=0, ge=0, le=1)
    commit_then_fail_rate: float = Field(default=0, ge=0, le=1)
    commit_then_fail_mode: Literal["drop", "delay"] = "drop"
    commit_then_fail_delay_s: float = Field(default=30, ge=0)
    unknown_tiers: list[str] = Field(default_factory=list)
    fail_skus: list[str] = Field(default_factory=list)


class EmulatorSettings(BaseModel):
    """Everything a running emulator needs; `api_keys` maps key -> organization."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_keys: dict[str, str] = Field(default_factory=dict)
    db_path: str | None = None
    max_bulk_items: int = Field(default=1000, ge=1)
    max_bulk_orders: int = Field(default=500, ge=1)
    max_body_bytes: int = Field(default=30_000_000, ge=1)
    strict_order_skus: bool = True
    auto_create_categories: bool = True
    faults: FaultConfig = Field(default_factory=FaultConfig)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "fault"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def fault_config_from_mapping(values: dict[str, Any]) -> FaultConfig:
    """Build a FaultConfig from a JSON-like mapping; list fields may be comma-separated strings.

    Raises ValueError naming every bad key or value.
    """
    prepared = dict(values)
    for key in _LIST_FIELDS & prepared.keys():
        if isinstance(prepared[key], str):
            prepared[key] = [p.strip() for p in prepared[key].split(",") if p.strip()]
    if (
        isinstance(prepared.get("rate_limit"), str)
        and prepared["rate_limit"].lower() in _NONE_WORDS
    ):
        prepared["rate_limit"] = None
    try:
        return FaultConfig.model_validate(prepared)
    except ValidationError as exc:
        raise ValueError(f"invalid fault setting: {_describe(exc)}") from exc


def parse_fault_specs(specs: list[str]) -> FaultConfig:
    """Parse `--fault KEY=VALUE` options (later keys override earlier ones) into a FaultConfig."""
    values: dict[str, Any] = {}
    known = FaultConfig.model_fields
    for spec in specs:
        key, sep, value = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"fault spec {spec!r} must look like KEY=VALUE, e.g. error_rate=0.1")
        if key not in known:
            raise ValueError(f"unknown fault {key!r}; known faults: {', '.join(known)}")
        values[key] = value.strip()
    return fault_config_from_mapping(values)


def parse_api_keys(specs: list[str]) -> dict[str, str]:
    """Parse `--api-key KEY=ORG` options into a key -> organization mapping."""
    keys: dict[str, str] = {}
    for spec in specs:
        key, sep, org = spec.partition("=")
        if not sep or not key.strip() or not org.strip():
            raise ValueError(
                f"api key spec {spec!r} must look like KEY=ORG, e.g. secret123=org_acme"
            )
        keys[key.strip()] = org.strip()
    return keys


def settings_from_options(
    api_keys: list[str],
    db: str | None,
    faults: list[str],
    max_bulk_items: int | None = None,
) -> EmulatorSettings:
    """Build EmulatorSettings from raw CLI option values (shared by `nymble-sync emulator`)."""
    extra: dict[str, Any] = {}
    if max_bulk_items is not None:
        extra["max_bulk_items"] = max_bulk_items
    try:
        return EmulatorSettings(
            api_keys=parse_api_keys(api_keys),
            db_path=db,
            faults=parse_fault_specs(faults),
            **extra,
        )
    except ValidationError as exc:
        raise ValueError(f"invalid emulator setting: {_describe(exc)}") from exc
