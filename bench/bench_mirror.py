"""Mirror mode at catalog scale: what a `missing: deactivate` run costs (wall, CPU, peak RSS)
when the ledger holds ``--records`` products owned by the job and the feed lost 0.1% of them.

The ledger is a real run's: a first sync of the whole catalog (job ``bench-products``)
against the counting sink (``counting_sink.py``), so every record's content hash is the
one the feed gives and the measured runs send nothing but what mirror mode decides. Each
measured run starts from a copy of that state (ledger and memo) and a fresh sink on the
same port (the target's fingerprint is its URL): the sink holds no product, so the
vanished products are reported as no longer at the target and nothing is sent: the
figures are those of deciding what vanished (reading the feed's keys, the keys the job
owns, the join, the cap).

    python bench/bench_mirror.py                          # 1,000,000 records, 1 round
    python bench/bench_mirror.py --records 3000000 --repeat 3
    PYTHONPATH=/tmp/old python bench/bench_mirror.py      # the package in /tmp/old/pipelines
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_small import JOB, KEY, PYTHON, byte_compile, package, timed  # noqa: E402

OUT = Path("bench/out/mirror")
DROP_EVERY = 1000  # the feed loses every 1000th row: 0.1%
SINK = Path(__file__).parent / "counting_sink.py"


def write_feeds(out: Path, records: int) -> tuple[Path, Path]:
    """The whole catalog (made in a child process: this one stays small) and the feed that
    lost every ``DROP_EVERY``-th row, copied line by line."""
    whole, feed = out / f"catalog_{records}.csv", out / f"feed_{records}.csv"
    if not whole.exists():
        cmd = [sys.executable, str(Path(__file__).parent / "catalog.py"), "--rows", str(records)]
        subprocess.run([*cmd, "--out", str(whole)], check=True, capture_output=True)
    with whole.open("rb") as src, feed.open("wb") as dst:
        dst.write(src.readline())  # the header
        for i, line in enumerate(src):
            if i % DROP_EVERY != DROP_EVERY - 1:
                dst.write(line)
    return whole, feed


def job_file(out: Path, name: str, source: Path) -> Path:
    text = JOB.format(name="x", path=source).replace("job: bench-small-x", "job: bench-products")
    job = out / f"job_{name}.yml"
    job.write_text(text + "missing: deactivate\n")
    return job


def start_sink(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(SINK), "--port", str(port)])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the counting sink did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait()


def sync(job: Path, state: Path, url: str) -> tuple[object, dict]:
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
    cmd = [*PYTHON, "-m", "pipelines.cli", "run", str(job), "--target", url, "--json"]
    sample, out = timed(cmd, env)
    return sample, json.loads(out)


def vanished(summary: dict) -> int:
    """Deactivations sent plus vanished products the target no longer holds (all of them
    here: the sink is fresh)."""
    gone = 0
    for note in summary.get("notes", []):
        found = re.match(r"([\d,]+) vanished record", note)
        if found:
            gone += int(found.group(1).replace(",", ""))
    return summary.get("deactivated", 0) + gone


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where inputs and states go")
    parser.add_argument("--records", type=int, default=1_000_000, help="catalog size")
    parser.add_argument("--repeat", type=int, default=1, help="measured mirror runs")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the first sync's state from a former call"
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    where = package()
    byte_compile(where)
    args.out.mkdir(parents=True, exist_ok=True)
    whole, feed = write_feeds(args.out, args.records)
    first, mirror = job_file(args.out, "whole", whole), job_file(args.out, "feed", feed)
    pristine, state = args.out / "state_pristine", args.out / "state"
    port_file = args.out / "port"  # the target's fingerprint is its URL: the same port
    if args.reuse and port_file.exists():
        port = int(port_file.read_text())
        print(f"package: {where}; the first sync's state kept")
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        port_file.write_text(str(port))
        shutil.rmtree(pristine, ignore_errors=True)
        sink = start_sink(port)
        try:
            sample, summary = sync(first, pristine, f"http://127.0.0.1:{port}")
            print(f"package: {where}; first sync of {args.records:,} records: "
                  f"{sample.wall_s:.1f} s, created {summary.get('created')}")  # fmt: skip
        finally:
            stop(sink)
    url = f"http://127.0.0.1:{port}"
    samples, counts = [], []
    for _ in range(args.repeat):
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(pristine, state)
        sink = start_sink(port)
        try:
            sample, summary = sync(mirror, state, url)
        finally:
            stop(sink)
        samples.append(sample)
        counts.append(vanished(summary))
    wall = statistics.median(s.wall_s for s in samples)
    cpu = statistics.median(s.cpu_s for s in samples)
    rss = statistics.median(s.peak_mb for s in samples)
    print(
        f"  mirror run, {args.records:,} records, {len(samples)} round(s): {wall:.2f} s wall "
        f"{cpu:.2f} s CPU {rss:.0f} MB peak RSS; vanished {counts}"
    )


if __name__ == "__main__":
    main()
