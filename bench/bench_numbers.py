"""What reading numbers as people write them costs: one 1,000,000-row catalog written twice,
with decimal dots (``1234.56``, the plain default) and German style (``1.234,56``, thousands
dots, ``number: {decimal: ",", thousands: "."}``), both semicolon-separated, the same values.

Three timings per file, medians of ``--repeat`` runs (wall time, and for the in-process
stages the process's CPU time too, steadier on a shared machine), and the speed of the German
file as a share of the plain one's (the target: at least 80%):

- map: ``map_products`` over chunks already in memory, the stage that parses numbers;
- read + map: the CSV streamed from disk and mapped, what parsing a file costs;
- validate: ``nymble-sync validate`` in a child process, the command a user runs.

    python bench/bench_numbers.py [--rows 1000000] [--repeat 5] [--no-validate]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import JOB, OUT  # noqa: E402
from catalog import COLUMNS, generate_catalog  # noqa: E402

from pipelines.entities.products.product_mapping import map_products  # noqa: E402
from pipelines.extract.feed import SourceOpener  # noqa: E402
from pipelines.jobs.job_file import load_job  # noqa: E402

NUMBER_COLUMNS = ["price_retail", "price_wholesale", "price_wholesale_50", "weight", "qty_on_hand"]
GERMAN = '\nnumber: {decimal: ",", thousands: "."}\n'


def german(text: pa.Array) -> pa.Array:
    """``1234567.5`` → ``1.234.567,5``: the mark swapped, then one thousands dot a pass."""
    text = pc.replace_substring(text, ".", ",")
    while True:
        grouped = pc.replace_substring_regex(text, r"^(\d+)(\d{3})([.,]|$)", r"\1.\2\3")
        if grouped.equals(text):
            return grouped
        text = grouped


def make_files(rows: int) -> tuple[Path, Path]:
    """The catalog with dots and with German numbers, both ``;``-separated (made once)."""
    dots, commas = OUT / f"numbers_dots_{rows}.csv", OUT / f"numbers_commas_{rows}.csv"
    if dots.exists() and commas.exists():
        return dots, commas
    plain = OUT / f"catalog_{rows}.csv"
    if not plain.exists():
        generate_catalog(plain, rows)
    types = {name: pa.string() for name in COLUMNS}
    table = pacsv.read_csv(plain, convert_options=pacsv.ConvertOptions(column_types=types))
    options = pacsv.WriteOptions(delimiter=";", quoting_style="none")  # as exports write them
    pacsv.write_csv(table, dots, options)
    for name in NUMBER_COLUMNS:
        at = table.schema.get_field_index(name)
        table = table.set_column(at, name, german(table.column(name).combine_chunks()))
    pacsv.write_csv(table, commas, options)
    return dots, commas


def job_file(source: Path, extra: str = "") -> Path:
    text = (
        JOB.format(path=source).replace("type: csv,", 'type: csv, delimiter: ";", encoding: utf-8,')
        + extra
    )
    path = source.with_suffix(".yml")
    path.write_text(text)
    return path


def time_map(job_path: Path) -> tuple[tuple[float, float], pa.Table]:
    """map_products over chunks read beforehand: (wall, CPU) seconds and what it mapped."""
    job = load_job(job_path)
    _, chunks = SourceOpener(log=lambda _: None).open(job.source)
    chunks = list(chunks)
    wall, cpu = time.perf_counter(), time.process_time()
    tables = []
    for chunk in chunks:
        table, failures = map_products(chunk, job)
        assert not failures, [(f.column, f.message) for f in failures]
        tables.append(table.select(["price", "quantityOnHand", "weight", "prices"]))
    took = (time.perf_counter() - wall, time.process_time() - cpu)
    return took, pa.concat_tables(tables)


def time_read_and_map(job_path: Path) -> tuple[float, float]:
    job = load_job(job_path)
    wall, cpu = time.perf_counter(), time.process_time()
    _, chunks = SourceOpener(log=lambda _: None).open(job.source)
    for chunk in chunks:
        map_products(chunk, job)
    return time.perf_counter() - wall, time.process_time() - cpu


def time_validate(job_path: Path) -> tuple[float, None]:
    state = OUT / "numbers_state"
    env = {**os.environ, "NYMBLE_API_KEY": "bench-key", "NYMBLE_SYNC_HOME": str(state)}
    cmd = [sys.executable, "-m", "pipelines.cli", "validate", str(job_path), "--json"]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"validate failed ({done.returncode}): {done.stdout[-1000:]}")
    return took, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-validate", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    dots, commas = make_files(args.rows)
    plain_job, german_job = job_file(dots), job_file(commas, GERMAN)
    runs = {"map": [], "read + map": [], "validate": []}
    mapped = {}
    time_map(plain_job)  # warm: imports, the page cache
    for _ in range(args.repeat):  # interleaved: a noisy neighbour slows both files alike
        for name, job in (("dots", plain_job), ("commas", german_job)):
            took, mapped[name] = time_map(job)
            runs["map"].append((name, took))
            runs["read + map"].append((name, time_read_and_map(job)))
            if not args.no_validate:
                runs["validate"].append((name, time_validate(job)))
    assert mapped["dots"].equals(mapped["commas"]), "the two files must map to the same values"
    print(
        f"{args.rows:,} rows; {', '.join(NUMBER_COLUMNS)} written German style; "
        f"medians of {args.repeat} runs"
    )
    for stage, timings in runs.items():
        for clock, at in (("wall", 0), ("CPU", 1)):
            got = {n: [t[at] for m, t in timings if m == n] for n in ("dots", "commas")}
            if not got["dots"] or got["dots"][0] is None:
                continue
            plain, comma = (statistics.median(got[n]) for n in ("dots", "commas"))
            print(
                f"  {stage:<11} {clock:<4} dots {plain:6.2f} s   commas {comma:6.2f} s   "
                f"commas at {plain / comma:4.0%} of the speed of dots"
            )


if __name__ == "__main__":
    main()
