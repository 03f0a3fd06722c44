"""Memory and the collector over a command's life: freed memory given back to the operating
system, so a long run's peak RSS stays flat; the code a command loads kept out of the cyclic
garbage collector's way, so a small run costs little more than its imports.

Measured on a 1,000,000-row sync (`bench/bench_sync.py`): Arrow's default allocator (mimalloc)
kept tens of MB of freed buffers, and glibc's heap kept freed record bodies (>512 bytes, so
outside Python's own allocator) until trimmed. jemalloc returning pages after a second plus a
trim after each window of records brought the peak from ~410 MB to ~350 MB (~330 MB with
immediate decay, which made the delta run a third slower).

Measured on a 10-row run (`bench/bench_small.py`): loading the code makes ~half a million
objects that live until exit; the collector walked them ~0.1 s while they loaded and again
~0.2 s at exit (CPU seconds: 1.14 → 0.82 with :func:`loading_code` and :func:`before_exit`).
Arrow picks the allocator of its own C++ code (a CSV reader's blocks, conversions) once, as
pyarrow loads; left at mimalloc while pyarrow's calls use jemalloc, a run set up both: ~4 MB
of a 10-row run's 125 MB peak. :func:`loading_code` names jemalloc before pyarrow loads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.abc import MetaPathFinder

__all__ = [
    "before_exit",
    "defer_pandas",
    "loading_code",
    "return_freed_memory",
    "use_returning_allocator",
]

# Freed Arrow pages go back after this long: 0 costs a third more time in a CPU-bound delta
# run (every kernel call maps fresh pages); a second keeps most of the memory benefit.
DECAY_MS = 1000


# Loaded by every command: in sys.modules already, the process is not a fresh command's.
_RUN_CODE = "pipelines.run.commands"
# Where pyarrow's wheels are built with jemalloc (the others would print a warning each run).
_JEMALLOC_PLATFORMS = ("linux",)


@contextmanager
def loading_code() -> Iterator[None]:
    """Around a command's imports, at the edge (the CLI): no collection while they load (what
    they make lives until exit), then all of it frozen (``gc.freeze``), so that no later
    collection walks it again; and, before pyarrow loads, jemalloc named Arrow's default
    allocator (a choice set in ``ARROW_DEFAULT_MEMORY_POOL`` is kept). Only in a process that
    loads the code for this command: one that had it already (a test runner, a program using
    the library) is left as it is."""
    if _RUN_CODE in sys.modules:
        yield
        return
    if "pyarrow" not in sys.modules and sys.platform in _JEMALLOC_PLATFORMS:
        # what use_returning_allocator sets for pyarrow's calls, for Arrow's own code as well
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def before_exit() -> None:
    """Just before the CLI exits, in a process that froze its code as it loaded: freeze the
    rest too, so the interpreter's last collection walks none of it (what reference counting
    frees is still freed and atexit handlers run; only the search for cycles is skipped)."""
    if gc.get_freeze_count():
        gc.freeze()


def use_returning_allocator() -> None:
    """Process-wide, so called once at the edge (the CLI), before any Arrow work."""
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(DECAY_MS)
    except NotImplementedError:  # a pyarrow build without jemalloc keeps its default
        pass


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # find_library runs ldconfig in a subprocess: once per process, not once per call.
    name = ctypes.util.find_library("c")
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def return_freed_memory() -> None:
    """Ask glibc to release freed heap pages (a no-op where there is no malloc_trim).

    A trim walks the whole heap (~1-2 ms here): call it after large frees, not per chunk.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _NoPandas(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is deferred", name="pandas")
        return None


def defer_pandas() -> None:
    """Keep pandas out of a run that does not use it: ~40 MB of RSS and ~0.4 s.

    pyarrow imports pandas on its first conversion of a Python value, only to ask whether the
    value is a pandas object. Here that first probe finds no pandas, which pyarrow remembers
    for such probes only: `Table.to_pandas()` and `import pandas` (the expectation suites) still
    import it when they are called.
    """
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(blocker)
