"""The end of an orders run that held N orders (a migration before its customers exist):
``record_held`` writing them into a fresh ledger, then a second run's call where half are
held again, a quarter were read and cleared, a tenth given up (and the rest not read).

Each figure is a fresh subprocess of the measured package: wall time of collecting the held
orders as a run does (old: one ``Waiting`` object per order; new: spilled columns) and of
each ``record_held`` call, and the child's peak RSS (``os.wait4``), beside its RSS before
the first call (the synthetic input alone).

    python bench/bench_held.py                                 # N=100,000 and 1,000,000
    python bench/bench_held.py --n 100000 --backends sqlite
    PYTHONPATH=/tmp/oldheld python bench/bench_held.py --label old   # the package before
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("NYMBLE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Run in the measured package's interpreter: old and new record_held take different inputs.
CHILD = r"""
import json, sys, time
import numpy as np
import pyarrow as pa
from pipelines.ledger import Ledger
from pipelines.ledger import held_records as module

url, n = sys.argv[1], int(sys.argv[2])
CHUNK = 50_000  # orders a chunk holds, as a run's chunks hand them over

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024

rng = np.random.default_rng(7)
keys = np.unique(rng.integers(-(2**62), 2**62, int(n * 1.01)))[:n]
rng.shuffle(keys)
base = hwm_mb()  # the interpreter, its imports and the keys

def texts(rows):
    # A chunk's columns, made per chunk as a run reads them: the input is never whole.
    return (pa.array([f"SO-{i:09d}" for i in rows]),
            pa.array([f"CUST-{i % 50_000:06d}" for i in rows]),
            pa.array([f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00" for i in rows]))

def collect(rows):
    # As a run's References does, chunk by chunk: rows are positions in the inputs.
    if hasattr(module, "Waiting"):
        out = []
        for lo in range(0, len(rows), CHUNK):
            part = rows[lo : lo + CHUNK]
            k = keys[part]
            i, v, m = (a.to_pylist() for a in texts(part.tolist()))
            out += [module.Waiting(int(k[j]), i[j], "unknown_customer", v[j], m[j])
                    for j in range(len(k))]
        return out
    from pipelines.ledger.held_columns import HeldColumns
    out = HeldColumns()
    for lo in range(0, len(rows), CHUNK):
        part = rows[lo : lo + CHUNK]
        i, v, m = texts(part.tolist())
        out.append(keys[part], i, "unknown_customer", v, m)
    return out

def given(rows):
    if hasattr(module, "Waiting"):
        return [module.Waiting(int(k), "x", "unknown_customer", None) for k in keys[rows]]
    return keys[rows]

out = {"base_mb": base}
with Ledger.connect(url) as ledger:
    for step, (held, gave, read) in enumerate([
        (np.arange(n), np.arange(0), np.arange(0)),
        # Half held again, a quarter read and cleared, a tenth given up, the rest not read.
        (np.arange(n // 2), np.arange(3 * n // 4, 3 * n // 4 + n // 10),
         np.arange(n // 2, 3 * n // 4 + n // 10)),
    ]):
        t = time.perf_counter()
        waiting = collect(held)
        t1 = time.perf_counter()
        module.record_held(ledger, job="orders", target_id="t", run_id=step + 1,
                           waiting=waiting, given_up=given(gave), read=keys[read])
        t2 = time.perf_counter()
        del waiting
        out[f"collect{step + 1}_s"] = round(t1 - t, 2)
        out[f"record{step + 1}_s"] = round(t2 - t1, 2)
    with ledger._begin() as conn:
        count = module.sa.text("SELECT count(*) FROM nymble_held")
        out["rows_after"] = conn.execute(count).scalar()
print(json.dumps(out))
"""


def run_child(url: str, n: int, timeout: float) -> dict:
    start = time.perf_counter()
    # From elsewhere than the checkout: ``-c`` puts the working directory first on the path,
    # which would shadow the package PYTHONPATH names.
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return {"timeout_s": timeout}
        time.sleep(0.05)
    out = proc.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        return {"failed": os.waitstatus_to_exitcode(status)}
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["peak_mb"] = round(usage.ru_maxrss / 1024, 1)
    return result


def pg_schema() -> tuple[str, sa.Engine, str]:
    engine = sa.create_engine(PG_URL)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}", engine, schema


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--label", default="new")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per child")
    args = parser.parse_args()
    for n in args.n:
        for backend in args.backends:
            with tempfile.TemporaryDirectory() as tmp:
                if backend == "sqlite":
                    result = run_child(f"sqlite:///{tmp}/ledger.sqlite", n, args.timeout)
                else:
                    url, engine, schema = pg_schema()
                    try:
                        result = run_child(url, n, args.timeout)
                    finally:
                        with engine.begin() as conn:
                            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                        engine.dispose()
            print(json.dumps({"label": args.label, "backend": backend, "n": n, **result}))


if __name__ == "__main__":
    main()
