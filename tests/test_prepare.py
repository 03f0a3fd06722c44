"""prepare_in_parallel: chunks prepared on worker threads come back in source order."""

from __future__ import annotations

import threading
import time

import pytest

from pipelines.run.parallel import prepare_in_parallel


def _slow_first(n: int) -> int:
    time.sleep(0.02 * (n % 3 == 0))  # every third chunk finishes after the one behind it
    return n


def test_in_order_steps_and_results_follow_the_source_order():
    seen: list[int] = []
    results = list(
        prepare_in_parallel(range(12), _slow_first, in_order=lambda n: seen.append(n) or -n)
    )
    assert seen == list(range(12))
    assert results == [-n for n in range(12)]


def test_a_source_error_comes_after_the_chunks_read_before_it():
    def source():
        yield from range(5)
        raise ValueError("row 7: bad")

    got = []
    with pytest.raises(ValueError, match="row 7"):
        for n in prepare_in_parallel(source(), _slow_first):
            got.append(n)
    assert got == list(range(5))


@pytest.mark.parametrize("failing", ["prepare", "in_order"])
def test_an_error_on_a_worker_stops_the_stream_at_its_chunk(failing):
    def fail_on_6(n: int) -> int:
        if n == 6:
            raise LookupError(f"{failing} of chunk 6")
        return _slow_first(n)

    steps = {"prepare": _slow_first, "in_order": lambda n: n, failing: fail_on_6}
    got = []
    with pytest.raises(LookupError, match="chunk 6"):
        for n in prepare_in_parallel(range(50), steps["prepare"], in_order=steps["in_order"]):
            got.append(n)
    assert got == list(range(6))


def test_an_error_in_the_callers_loop_does_not_leave_workers_waiting():
    started = time.monotonic()
    with pytest.raises(KeyError):
        for n in prepare_in_parallel(range(50), _slow_first, in_order=lambda n: n):
            if n == 2:
                raise KeyError(n)
    assert time.monotonic() - started < 5
    assert not [t for t in threading.enumerate() if t.name.startswith(("prepare", "read"))]


def test_leaving_early_closes_the_source_and_reads_no_further():
    read, closed = [], threading.Event()

    def feed():
        try:
            for n in range(1000):
                read.append(n)
                yield n
        finally:
            closed.set()

    source = feed()  # held here, so only an explicit close can end it
    for n in prepare_in_parallel(source, _slow_first, workers=2):
        if n == 3:
            break
    assert closed.wait(5)
    assert max(read) <= 3 + 2  # the chunk in hand and at most `workers` read ahead


def test_an_error_closing_the_source_is_not_lost():
    class Feed:
        def __init__(self):
            self.items = iter(range(3))

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.items)

        def close(self):
            raise OSError("the export's share went away")

    got = []
    with pytest.raises(OSError, match="share went away"):
        for n in prepare_in_parallel(Feed(), _slow_first):
            got.append(n)
    assert got == [0, 1, 2]
