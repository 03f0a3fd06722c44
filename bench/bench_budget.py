"""What the shared rate budget costs per request: one lease of one token is one round trip
to the ledger (an atomic UPDATE), on SQLite, PostgreSQL and MariaDB.

Each case takes ``--takes`` tokens one lease at a time from a budget whose rate is far
above what the loop can ask for (so nothing waits and the figure is the ledger's work
alone), and prints the median cost per token over ``--repeat`` rounds. A database that is
not reachable is skipped.

    .venv/bin/python bench/bench_budget.py [--takes 2000] [--repeat 5]
    PYTHONPATH=DIR .venv/bin/python -P bench/bench_budget.py    # another checkout's code
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH first

import pipelines  # noqa: E402
from pipelines.ledger import Ledger  # noqa: E402
from pipelines.ledger.rate_budget import RateBudget  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


def per_token_ms(url: str, takes: int, repeat: int) -> float:
    """Median milliseconds per token, leases of one token, nothing waiting."""
    rounds = []
    with Ledger.connect(url) as ledger:
        budget = RateBudget(ledger, f"bench-{uuid.uuid4().hex[:8]}", 1_000_000.0)
        budget.lease = 1  # one round trip per token: the dearest case
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(takes):
                budget.take()
            rounds.append((time.perf_counter() - started) / takes * 1000)
    return statistics.median(rounds)


def scratch(url: str):
    """A fresh schema (PostgreSQL) or database (MariaDB) for one case, and its cleanup."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if url.startswith("postgresql"):
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
                target = f"{url}?options=-csearch_path%3D{name}"
                drop = f'DROP SCHEMA "{name}" CASCADE'
            else:
                conn.execute(sa.text(f"CREATE DATABASE `{name}`"))
                target, drop = url.rsplit("/", 1)[0] + f"/{name}", f"DROP DATABASE `{name}`"
    except sa.exc.OperationalError as exc:
        engine.dispose()
        return None, lambda: None, str(exc).splitlines()[0]

    def cleanup() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(drop))
        engine.dispose()

    return target, cleanup, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--takes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"package: {Path(pipelines.__file__).parent}")
    print(f"ms per token (lease of 1), median of {args.repeat} rounds of {args.takes:,}")
    with tempfile.TemporaryDirectory() as tmp:
        cost = per_token_ms(f"sqlite:///{tmp}/ledger.db", args.takes, args.repeat)
        print(f"  sqlite      {cost:6.3f}")
    for name, url in (("postgresql", PG_URL), ("mariadb", MYSQL_URL)):
        target, cleanup, problem = scratch(url)
        if target is None:
            print(f"  {name:<11} skipped: {problem}")
            continue
        try:
            print(f"  {name:<11} {per_token_ms(target, args.takes, args.repeat):6.3f}")
        finally:
            cleanup()


if __name__ == "__main__":
    main()
