"""Identifiers and timestamps the emulator generates (§6.23, §5.11)."""

from __future__ import annotations

import uuid
import zlib
from datetime import UTC, datetime

__all__ = ["new_guid", "product_ids", "utc_now"]

_MASK = 0xFFFFFFFF
_GOLDEN = 0x9E3779B1  # odd, so n -> n * _GOLDEN mod 2**32 is a bijection


def product_ids(org: str, first: int, count: int) -> list[str]:
    """`prod_<8 hex>` for counter values first..first+count-1: unique per org for the first
    2**32 values, random-looking, and cheap to make in bulk."""
    salt = zlib.crc32(org.encode())
    return ["prod_%08x" % (((n * _GOLDEN) & _MASK) ^ salt) for n in range(first, first + count)]


def new_guid() -> str:
    return str(uuid.uuid4())


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds and a `Z` suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
