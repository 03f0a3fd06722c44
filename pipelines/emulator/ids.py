"""Identifiers and timestamps the emulator generates (§6.23, §5.11)."""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime

__all__ = ["new_guid", "product_id", "utc_now"]

_MASK = 0xFFFFFFFF


def _mix32(value: int) -> int:
    # Each step is a bijection on 32 bits, so distinct counters give distinct ids.
    value = (value * 0x9E3779B1) & _MASK
    value ^= value >> 16
    value = (value * 0x85EBCA6B) & _MASK
    return value ^ (value >> 13)


def product_id(org: str, number: int) -> str:
    """`prod_<8 hex>`, unique per org for the first 2**32 numbers, random-looking."""
    return f"prod_{_mix32((number ^ zlib.crc32(org.encode())) & _MASK):08x}"


def new_guid() -> str:
    return str(uuid.uuid4())


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds and a `Z` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
