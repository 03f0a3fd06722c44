"""A cron-sized feed against a big ledger: what 100 rows cost when the ledger holds the
acknowledged state of 1,000,000 records of the same target and entity (another job's
nightly catalog), against the same 100 rows with a ledger of only their own records.

The big ledger is written directly (as a 1,000,000-row sync would leave it: one outcome row
per 500-record batch), for the sink's URL. Each figure is a fresh ``nymble-sync run``
subprocess against the loopback sink of ``bench_small.py``: medians of wall time, CPU and
peak RSS, of runs with one changed row and runs with nothing changed, taken in turns.

    python bench/bench_big_ledger.py                      # 1,000,000 records, 7 rounds
    python bench/bench_big_ledger.py --records 200000 --repeat 3
    PYTHONPATH=/tmp/old python bench/bench_big_ledger.py  # the package in /tmp/old/pipelines
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_small import (  # noqa: E402 - the bench folder is not a package
    JOB,
    KEY,
    PYTHON,
    byte_compile,
    package,
    start_sink,
    timed,
)

OUT = Path("bench/out/big_ledger")
FEED_ROWS = 100
BATCH = 500

# Run in a fresh interpreter of the measured package: the ledger's schema is that package's.
WRITE_LEDGER = """
import sys
import numpy as np
import pyarrow as pa
from pipelines.ledger import Ledger
from pipelines.targets import fingerprint
from pipelines.transform.serialize import key_hashes

state, url, key, records, batch = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
ledger = Ledger.connect(f"sqlite:///{state}/ledger.sqlite")
scope = {"target_id": fingerprint(url, key), "entity": "products"}
run = ledger.begin_run(job="big-catalog", target_label=url, source="catalog.csv", full=False,
                       **scope)
rng = np.random.default_rng(1)
for start in range(1, records + 1, batch):
    ids = [f"SKU-{i:07d}" for i in range(start, min(start + batch, records + 1))]
    ledger.record_outcomes(run, batch_id=f"b{start}", external_ids=ids,
                           key_hashes=key_hashes(pa.array(ids)),
                           content_hashes=rng.integers(1, 2**62, len(ids)),
                           statuses=["created"] * len(ids), messages=[None] * len(ids), **scope)
ledger.finish_run(run, status="succeeded", counts={}, rejects_path=None, elapsed_s=1.0)
ledger.close()
"""


def write_ledger(state: Path, url: str, records: int) -> None:
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    cmd = [*PYTHON, "-c", WRITE_LEDGER, str(state), url, KEY, str(records), str(BATCH)]
    subprocess.run(cmd, check=True)


def write_feeds(out: Path) -> tuple[Path, Path]:
    """The first FEED_ROWS rows of a catalog, and the same with one price changed. Made in a
    child process: this one stays small (a child's peak RSS counts its parent's at exec)."""
    plain, changed = out / "feed.csv", out / "feed_changed.csv"
    catalog = Path(__file__).parent / "catalog.py"
    cmd = [sys.executable, str(catalog), "--rows", str(FEED_ROWS), "--out", str(plain)]
    subprocess.run(cmd, check=True, capture_output=True)
    with plain.open(newline="") as f:
        rows = list(csv.reader(f))
    rows[50][rows[0].index("price_retail")] = "9999.99"
    with changed.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return plain, changed


def run(job: Path, state: Path, url: str, expect_sent: int):
    env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
    cmd = [*PYTHON, "-m", "pipelines.cli", "run", str(job), "--target", url, "--json"]
    sample, out = timed(cmd, env)
    sent = json.loads(out)["sent"]
    if sent != expect_sent:
        raise RuntimeError(f"{job.name}: sent {sent}, expected {expect_sent}")
    return sample


def measure(state: Path, jobs: tuple[Path, Path], url: str, repeat: int) -> dict[str, list]:
    """A first run (the feed's records get their content), then rounds of: one row changed,
    changed back (both send 1 record), nothing changed (sends none)."""
    plain, changed = jobs
    run(plain, state, url, expect_sent=FEED_ROWS)
    found: dict[str, list] = {"1 changed": [], "unchanged": []}
    for _ in range(repeat):
        found["1 changed"].append(run(changed, state, url, expect_sent=1))
        found["1 changed"].append(run(plain, state, url, expect_sent=1))
        found["unchanged"].append(run(plain, state, url, expect_sent=0))
    return found


def report(name: str, found: dict[str, list]) -> dict[str, tuple[float, float, float]]:
    medians = {}
    for kind, samples in found.items():
        wall = statistics.median(s.wall_s for s in samples)
        cpu = statistics.median(s.cpu_s for s in samples)
        rss = statistics.median(s.peak_mb for s in samples)
        medians[kind] = (wall, cpu, rss)
        print(f"  {name:<28} {kind:<10} {wall:7.2f} s wall {cpu:7.2f} s CPU {rss:6.0f} MB")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    where = package()
    byte_compile(where)
    plain, changed = write_feeds(args.out)
    jobs = []
    for path in (plain, changed):
        job = args.out / f"job_{path.stem}.yml"
        job.write_text(JOB.format(name="feed", path=path))  # one job name: one memo
        jobs.append(job)
    sink, url = start_sink()
    try:
        print(f"package: {where}; {FEED_ROWS} rows, medians of {args.repeat}")
        big, small = args.out / "state_big", args.out / "state_small"
        write_ledger(big, url, args.records)
        write_ledger(small, url, 0)
        alone = report("ledger of its own records", measure(small, jobs, url, args.repeat))
        beside = report(f"beside {args.records:,} records", measure(big, jobs, url, args.repeat))
        for kind in alone:
            extra = beside[kind][0] - alone[kind][0]
            more = beside[kind][2] - alone[kind][2]
            print(f"  the big ledger costs, {kind}: {extra:+.2f} s wall, {more:+.0f} MB")
    finally:
        sink.terminate()
        sink.wait()


if __name__ == "__main__":
    main()
