"""CSV read speed and peak RSS: a plain catalog, and catalogs with rows longer than a read block.

Each read runs in a child process of its own (``read_csv`` over the whole file, nothing else),
so its peak RSS is the read's own. Prints the median of ``--repeat`` reads per file.

    python bench/bench_long_rows.py                  # 1M plain rows, and the long-row files
    python bench/bench_long_rows.py --repeat 5 --only plain

Files (made once in bench/out, never committed):
- ``plain``: the 1,000,000-row catalog of ``catalog.py`` (~250 MB), no row longer than a block.
- ``giants``: 100,000 catalog rows with a 2 MiB HTML description every 2,000 rows (50 rows).
- ``dense``: 50,000 catalog rows with a 300 kB description every 100 rows (500 rows): the
  case where long rows come often, and the reader must not reopen Arrow's stream for each.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("bench/out")
FILES = {
    "plain": (1_000_000, 0, 0),  # rows, every how many rows a long one, its description bytes
    "giants": (100_000, 2_000, 2 << 20),
    "dense": (50_000, 100, 300_000),
}
CHILD = """
import sys, time
from pathlib import Path
from pipelines.extract.files import read_csv
lines = []
began = time.perf_counter()
rows = sum(len(c.table) for c in read_csv(Path(sys.argv[1]), encoding="utf-8", log=lines.append,
                                          block_bytes=1 << 20))
print(rows, time.perf_counter() - began, len(lines))
"""


def make(name: str) -> Path:
    rows, every, size = FILES[name]
    # the plain catalog is bench_sync's own, made by the same generator
    path = OUT / (f"catalog_{rows}.csv" if not every else f"long_rows_{name}.csv")
    if path.exists():
        return path
    sys.path.insert(0, str(Path(__file__).parent))
    from catalog import generate_catalog

    generate_catalog(path, rows)
    if every:
        _lengthen(path, every, size)
    return path


def _lengthen(path: Path, every: int, size: int) -> None:
    """Give every ``every``-th row a multi-line HTML description of ``size`` characters."""
    block = '<p class="spec">Heavy-duty, "weatherproof"; 3/8" drive.</p>\n'
    html = (block * (size // len(block) + 1))[: size - 1] + "."
    tmp = path.with_suffix(".tmp")
    with path.open(encoding="utf-8", newline="") as src, tmp.open("w", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst, lineterminator="\n")
        writer.writerow(next(reader))
        for number, row in enumerate(reader, start=1):
            if number % every == 0:
                row[2] = html
            writer.writerow(row)
    tmp.replace(path)


def read_once(path: Path) -> tuple[int, float, int, float]:
    """(rows, seconds, long-row log lines, peak RSS in MB) of one read in a child process."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"read failed: {out!r}")
    rows, seconds, logged = out.split()
    return int(rows), float(seconds), int(logged), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="report the median read")
    parser.add_argument("--only", choices=list(FILES), nargs="+", default=list(FILES))
    args = parser.parse_args()
    for name in args.only:
        path = make(name)
        os.sync()  # the file is on disk before it is read, as a nightly export is
        size_mb = path.stat().st_size / 1e6
        runs = [read_once(path) for _ in range(args.repeat)]
        seconds = statistics.median(r[1] for r in runs)
        rss = statistics.median(r[3] for r in runs)
        rows, logged = runs[0][0], runs[0][2]
        print(
            f"{name:<7} {rows:>9,} rows {size_mb:7.0f} MB  read {seconds:6.2f} s "
            f"(median of {args.repeat}: {', '.join(f'{r[1]:.2f}' for r in runs)})  "
            f"{rows / seconds:>9,.0f} rows/s {size_mb / seconds:5.0f} MB/s  "
            f"peak RSS {rss:5.0f} MB  long rows logged {logged}"
        )
        time.sleep(0.5)


if __name__ == "__main__":
    main()
