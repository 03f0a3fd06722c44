"""Giving freed memory back to the operating system, so a long run's peak RSS stays flat.

Measured on a 1,000,000-row sync (`bench/bench_sync.py`): Arrow's default allocator (mimalloc)
kept tens of MB of freed buffers, and glibc's heap kept freed record bodies (>512 bytes, so
outside Python's own allocator) until trimmed. jemalloc returning pages after a second plus a
trim after each window of records brought the peak from ~410 MB to ~350 MB (~330 MB with
immediate decay, which made the delta run a third slower).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pyarrow as pa

__all__ = ["return_freed_memory", "use_returning_allocator"]

# Freed Arrow pages go back after this long: 0 costs a third more time in a CPU-bound delta
# run (every kernel call maps fresh pages); a second keeps most of the memory benefit.
DECAY_MS = 1000


def use_returning_allocator() -> None:
    """Process-wide, so called once at the edge (the CLI), before any Arrow work."""
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(DECAY_MS)
    except NotImplementedError:  # a pyarrow build without jemalloc keeps its default
        pass


def return_freed_memory() -> None:
    """Ask glibc to release freed heap pages (a no-op where there is no malloc_trim)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
