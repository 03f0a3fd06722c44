"""Cron-sized runs: what a run costs when it has little to do, against the floor of the
libraries it needs and against a plain pandas+httpx loader.

Every figure is a fresh subprocess (median wall time, peak RSS from ``wait4``) against a
loopback sink in its own process that accepts everything: it answers the bulk endpoints with
one ``Created`` result per item in the contract's shape (CONTRACT §2.8), so the API's own work
is out of the figures. Measured in one run:

- floor: ``python -c "import pyarrow.csv, pyarrow.compute, httpx, orjson, sqlalchemy"``;
- a 10-row job whose 10 records changed (a ledger that already exists);
- 100,000 rows with nothing changed, and with 1% changed (alternating between two exports);
- a 100,000-row cold sync (a fresh ledger each time) and the plain loader on the same file
  (``pandas.read_csv`` → dicts → ``httpx.Client.post`` in 500-record batches).

The targets of issue 18 are printed beside the figures as ratios.

    python bench/bench_small.py                  # 7 small runs, 3 of each 100,000-row kind
    python bench/bench_small.py --repeat 3 --repeat-big 1
    PYTHONPATH=/tmp/old python bench/bench_small.py   # the package in /tmp/old/pipelines

CPU seconds (user + system) are printed too: on a shared machine they move less than wall time.
So is the sink's own CPU per 100,000-row cold sync: on 2 cores it competes with the run.

The measured package is byte-compiled first, as ``pip install`` does: where
PYTHONDONTWRITEBYTECODE is set (it is on the machines these sessions run on) a source checkout
is otherwise compiled anew by every run (~0.2 s CPU of a 10-row run), which an installed tool
never pays.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

# The bench process itself stays small (stdlib only): Linux counts the RSS a process had when
# it exec'd a child in that child's peak RSS.

OUT = Path("bench/out/small")
KEY = "bench-key"
FLOOR = "import pyarrow.csv, pyarrow.compute, httpx, orjson, sqlalchemy"
ROWS = 100_000
# -P: the package comes from PYTHONPATH or the install, never from the current directory
# (which `-m` would put first), so PYTHONPATH=DIR measures DIR/pipelines.
PYTHON = [sys.executable, "-P"]
JOB = """job: bench-small-{name}
entity: products
source: {{type: csv, path: {path}}}
key: sku
fields:
  sku: sku
  name: name
  description: description
  category: category
  price: price_retail
  quantityOnHand: qty_on_hand
  minimumOrderQuantity: min_order_qty
  weight: weight
  weightUnit: weight_unit
  upc: upc
  currencyCode: {{value: USD}}
  active: {{column: status, map: {{A: true, I: false}}}}
prices:
  - {{tier: Retail, price: price_retail}}
  - {{tier: Wholesale, price: price_wholesale}}
  - {{tier: Wholesale, price: price_wholesale_50, atQuantity: 50}}
attributes: {{color: color, size: size}}
"""

# The plain loader a user would write without nymble-sync (run in its own interpreter).
PLAIN_LOADER = """
import sys
import httpx
import pandas as pd

path, url, key = sys.argv[1:4]
df = pd.read_csv(path, dtype=str, keep_default_na=False)
df = df.rename(columns={
    "price_retail": "price", "qty_on_hand": "quantityOnHand",
    "min_order_qty": "minimumOrderQuantity", "weight_unit": "weightUnit",
})
df["externalId"] = df["sku"]
df["currencyCode"] = "USD"
df["active"] = df.pop("status") == "A"
records = df.to_dict("records")
with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=60) as client:
    for start in range(0, len(records), 500):
        response = client.post("/api/products/bulk", json=records[start : start + 500])
        response.raise_for_status()
"""


# -- the sink -------------------------------------------------------------------------------


def serve_sink(port: int) -> None:
    """Accept every bulk item as created (CONTRACT §2.8); answer anything else 200 ``{}``."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import orjson

    class Sink(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the API
        # Headers and body go out as two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK (~40 ms a request), and the sink would be the bottleneck.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            items = orjson.loads(body) if body else []
            results = [
                {
                    "index": i,
                    "externalId": item.get("externalId"),
                    "sku": item.get("sku"),
                    "status": "Created",
                    "productId": f"prod_{i}",
                }
                for i, item in enumerate(items if isinstance(items, list) else [])
            ]
            self._answer(
                {
                    "totalCount": len(results),
                    "createdCount": len(results),
                    "updatedCount": 0,
                    "failedCount": 0,
                    "results": results,
                }
            )

        def do_GET(self) -> None:  # noqa: N802
            self._answer({})

        do_PUT = do_POST  # noqa: N815

        def _answer(self, payload: dict) -> None:
            data = orjson.dumps(payload)
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()


def start_sink() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve-sink", str(port)])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the sink did not start")


# -- measuring ------------------------------------------------------------------------------


class Runner:
    """Runs ``nymble-sync run`` in fresh interpreters against the sink."""

    def __init__(self, url: str, sink_pid: int):
        self.url, self.sink_pid = url, sink_pid

    def sink_cpu(self) -> float:
        """CPU seconds the sink has used so far (Linux; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.sink_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def sync(self, job: Path, state: Path, *, expect_sent: int) -> Sample:
        env = {**os.environ, "NYMBLE_API_KEY": KEY, "NYMBLE_SYNC_HOME": str(state)}
        cmd = [*PYTHON, "-m", "pipelines.cli", "run", str(job), "--target", self.url]
        sample, out = timed([*cmd, "--json"], env)
        sent = json.loads(out)["sent"]
        if sent != expect_sent:
            raise RuntimeError(f"{job.name}: sent {sent}, expected {expect_sent}")
        return sample


class Sample(NamedTuple):
    wall_s: float
    peak_mb: float
    cpu_s: float  # user + system: less shaken than wall time by a busy machine


def timed(cmd: list[str], env: dict | None = None) -> tuple[Sample, bytes]:
    """Wall seconds, peak RSS and CPU seconds of one fresh subprocess, and its stdout."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} exited {code}: {err[-2000:].decode()}")
    return Sample(wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime), out


def median_of(samples: list[Sample]) -> Sample:
    return Sample(*(statistics.median(column) for column in zip(*samples, strict=True)))


# -- inputs ---------------------------------------------------------------------------------


def make_inputs(rows: int) -> dict[str, Path]:
    """The 100,000-row export and its 1% delta (made once), the 10-row feeds, job files."""
    base, delta = OUT / f"catalog_{rows}.csv", OUT / f"catalog_{rows}_delta.csv"
    if not base.exists() or not delta.exists():
        subprocess.run(
            [sys.executable, "bench/catalog.py", "--rows", str(rows), "--out", str(base)]
            + ["--delta", str(delta), "--fraction", "0.01"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    with base.open(newline="") as f:
        header, *body = list(itertools.islice(csv.reader(f), 11))
    paths = {"base": base, "delta": delta}
    quantity = header.index("qty_on_hand")
    for n in range(2):  # two 10-row feeds that differ in every row's quantity
        paths[f"ten_{n}"] = ten = OUT / f"ten_{n}.csv"
        with ten.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(row[:quantity] + [str(100 + n)] + row[quantity + 1 :] for row in body)
    jobs = {}
    for name, path in paths.items():
        group = "ten" if name.startswith("ten") else "big"
        jobs[name] = OUT / f"job_{name}.yml"
        jobs[name].write_text(JOB.format(name=group, path=path.resolve()))
    os.sync()  # the exports are on disk before anything is timed, as a nightly file is
    return jobs


# -- the scenarios --------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> dict[str, Sample]:
    OUT.mkdir(parents=True, exist_ok=True)
    jobs = make_inputs(ROWS)
    sink, url = start_sink()
    runner = Runner(url, sink.pid)
    results: dict[str, Sample] = {}
    try:
        state = OUT / "state_ten"
        shutil.rmtree(state, ignore_errors=True)
        runner.sync(jobs["ten_1"], state, expect_sent=10)  # the ledger exists, as under cron
        floor, ten = [], []
        for i in range(args.repeat):  # alternated, so that both see the same machine
            floor.append(timed([sys.executable, "-c", FLOOR])[0])
            ten.append(runner.sync(jobs[f"ten_{i % 2}"], state, expect_sent=10))
        results["floor"], results["10 rows"] = median_of(floor), median_of(ten)
        cold, sink_cpu = [], []
        for _ in range(args.repeat_big):
            state = OUT / "state_big"
            shutil.rmtree(state, ignore_errors=True)
            before = runner.sink_cpu()
            cold.append(runner.sync(jobs["base"], state, expect_sent=ROWS))
            sink_cpu.append(runner.sink_cpu() - before)
        results["100k cold"] = median_of(cold)
        results["sink, per cold"] = Sample(0.0, 0.0, statistics.median(sink_cpu))
        results["100k unchanged"] = median_of(
            [runner.sync(jobs["base"], state, expect_sent=0) for _ in range(args.repeat_big)]
        )
        delta = [  # base → delta → base: each run finds 1% changed
            runner.sync(jobs["delta" if i % 2 == 0 else "base"], state, expect_sent=ROWS // 100)
            for i in range(args.repeat_big)
        ]
        results["100k 1% changed"] = median_of(delta)
        plain = [sys.executable, "-c", PLAIN_LOADER, str(OUT / f"catalog_{ROWS}.csv"), url, KEY]
        results["pandas+httpx"] = median_of([timed(plain)[0] for _ in range(args.repeat_big)])
    finally:
        sink.terminate()
        sink.wait()
    return results


def package() -> str:
    """Where the measured runs load ``pipelines`` from."""
    done = subprocess.run(
        [*PYTHON, "-c", "import pipelines; print(pipelines.__file__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(done.stdout.strip()).parent)


def byte_compile(where: str) -> None:
    """Write the package's .pyc files, as ``pip install`` does (they are git-ignored)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], check=True)


def report(results: dict[str, Sample], where: str, load_before: float) -> None:
    print(f"package: {where} (byte-compiled)")
    print(f"{'medians':<18} {'wall s':>8} {'peak MB':>8} {'CPU s':>8}")
    for name, r in results.items():
        if name == "sink, per cold":  # CPU only: the sink serves every run
            print(f"{name:<18} {'-':>8} {'-':>8} {r.cpu_s:8.2f}")
            continue
        print(f"{name:<18} {r.wall_s:8.2f} {r.peak_mb:8.0f} {r.cpu_s:8.2f}")
    floor, ten = results["floor"], results["10 rows"]
    delta, cold, plain = results["100k 1% changed"], results["100k cold"], results["pandas+httpx"]
    # The same ratios in CPU seconds, where they mean something: on a busy machine they drift
    # far less than wall time (the threads of a 100,000-row run count twice on 2 cores, so
    # its CPU says little about its wall time).
    checks = [
        ("10-row time / floor", ten.wall_s / floor.wall_s, ten.cpu_s / floor.cpu_s, "<= 1.15"),
        ("10-row RSS / floor", ten.peak_mb / floor.peak_mb, None, "<= 1.15"),
        ("1% delta - floor (s)", delta.wall_s - floor.wall_s, delta.cpu_s - floor.cpu_s, "<= 0.35"),
        ("cold: pandas / ours", plain.wall_s / cold.wall_s, None, ">= 3"),
        ("cold RSS / pandas RSS", cold.peak_mb / plain.peak_mb, None, "<= 1"),
    ]
    print(f"\n{'':<24} {'value':>6}  {'target':<15} {'':<6}  {'by CPU s':>8}")
    for name, value, by_cpu, target in checks:
        bound = float(target.split()[1])
        met = value <= bound if target.startswith("<=") else value >= bound
        cpu = f"{by_cpu:8.2f}" if by_cpu is not None else ""
        print(f"{name:<24} {value:6.2f}  target {target:<8} {'met' if met else 'MISSED':<6}  {cpu}")
    load = f"{load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    print(f"\nload average: {load} (2 cores; above ~1, times drift)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="floor and 10-row runs")
    parser.add_argument("--repeat-big", type=int, default=3, help="each 100,000-row kind")
    parser.add_argument("--serve-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(args.serve_sink)
        return
    where = package()
    byte_compile(where)
    load_before = os.getloadavg()[0]
    report(run_all(args), where, load_before)


if __name__ == "__main__":
    main()
