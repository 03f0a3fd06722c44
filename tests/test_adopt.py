"""`run --adopt` over real HTTP against the emulator: an org that already holds the catalog
(loaded by another tool, or through another ledger) gets only what really differs; what it
already holds is recorded in the new ledger as acknowledged, so the next plain run sends
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner
from helpers import API_KEY, job_for, run_sync
from orders_helpers import ORDERS_CSV, prepare_target, run_entity

from pipelines.cli import main
from pipelines.errors import ConfigError
from pipelines.ledger import Ledger
from pipelines.ledger.ownership import keys_synced_by_job
from pipelines.run.adopted import ADOPTED_MESSAGE
from pipelines.run.shards import Shard

ROWS = 2_000
HELD = 1_990  # the org holds the first 1,990: the last 10 are missing there
CHANGED = np.arange(7, ROWS, 100)  # 20 rows (1%) whose price differs in the new source
CSV_GOOD = 491  # the sample's good orders (tests/test_orders.py)
SAMPLED = ("AD-00000", "AD-00007", "AD-01999")  # held as the source has it, changed, missing


def catalog(path: Path, rows: int, changed: np.ndarray = CHANGED[:0]) -> Path:
    """A ``rows``-row catalog; the ``changed`` rows cost one cent more."""
    ids = np.arange(rows)
    cents = 1_000 + ids
    cents[changed] += 1
    table = pa.table(
        {
            "sku": [f"AD-{i:05d}" for i in ids],
            "name": [f"Adopted product {i}" for i in ids],
            "description": ["kept as it was"] * rows,
            "category": ["Tools"] * rows,
            "price_retail": [f"{c // 100}.{c % 100:02d}" for c in cents],
            "price_wholesale": ["5.00"] * rows,
            "price_wholesale_50": [""] * rows,
            "qty_on_hand": [str(i % 50) for i in ids],
            "min_order_qty": ["1"] * rows,
            "weight": ["1.5"] * rows,
            "weight_unit": ["lb"] * rows,
            "upc": [f"{i:012d}" for i in ids],
            "status": ["A"] * rows,
            "color": ["Red"] * rows,
            "size": ["M"] * rows,
        }
    )
    pacsv.write_csv(table, path)
    return path


def sent(emulator, route: str = "POST /api/products/bulk") -> tuple[int, int]:
    """(requests to ``route``, items received) so far."""
    stats = emulator.stats()
    return sum(stats["requests"].get(route, {}).values()), stats["items"]["received"]


def test_adopting_an_org_sends_exactly_what_differs_then_nothing(emulator, tmp_path):
    earlier = tmp_path / "earlier-tool"
    earlier.mkdir()
    held = job_for(earlier, catalog(earlier / "held.csv", HELD))
    assert run_sync(held, emulator, earlier).created == HELD  # its own ledger, then lost
    source = catalog(tmp_path / "products.csv", ROWS, CHANGED)
    job = job_for(tmp_path, source)
    before = sent(emulator)

    logged: list[str] = []
    adopted = run_sync(job, emulator, tmp_path, adopt=True, log=logged.append)

    requests, items = np.subtract(sent(emulator), before)
    assert items == len(CHANGED) + ROWS - HELD  # 20 that differ + 10 missing, nothing else
    assert requests == 1
    assert (adopted.created, adopted.updated) == (ROWS - HELD, len(CHANGED))
    assert (adopted.unchanged, adopted.failed, adopted.rejected) == (HELD - len(CHANGED), 0, 0)
    assert adopted.balanced and adopted.status == "succeeded"
    assert any(f"{HELD - len(CHANGED):,} record(s) adopted" in n for n in adopted.notes)
    assert any("1,970 agree, 20 differ, 10 are missing" in line for line in logged)

    with Ledger.connect(f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}") as ledger:
        target = _target_id(ledger)
        keys, _hashes = ledger.acked_state(target_id=target, entity="products")
        mine, _ids = keys_synced_by_job(ledger, job="products", target_id=target, entity="products")
        statuses = {sku: ledger.record_state(sku)[0].status for sku in SAMPLED}
    assert len(keys) == ROWS  # adopted, updated and created: all acknowledged now
    assert len(mine) == ROWS  # and all this job's (mirror mode, `ids`)
    assert statuses == {"AD-00000": "adopted", "AD-00007": "updated", "AD-01999": "created"}

    before = sent(emulator)
    again = run_sync(job, emulator, tmp_path)  # a plain run with the new ledger
    assert sent(emulator) == before  # not one request
    assert (again.unchanged, again.created, again.updated, again.balanced) == (ROWS, 0, 0, True)


def test_why_and_runs_show_tell_an_adopted_record_from_a_sent_one(emulator, tmp_path):
    earlier = tmp_path / "earlier-tool"
    earlier.mkdir()
    run_sync(job_for(earlier, catalog(earlier / "held.csv", HELD)), emulator, earlier)
    job = job_for(tmp_path, catalog(tmp_path / "products.csv", ROWS, CHANGED))
    run = run_sync(job, emulator, tmp_path, adopt=True)
    ledger = f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}"
    runner = CliRunner()

    why = runner.invoke(main, ["why", "AD-00000", "--ledger", ledger, "--json"])
    assert why.exit_code == 0, why.output
    [event] = json.loads(why.output)["events"]
    assert (event["status"], event["message"]) == ("adopted", ADOPTED_MESSAGE)
    changed = runner.invoke(main, ["why", "AD-00007", "--ledger", ledger, "--json"])
    [event] = json.loads(changed.output)["events"]
    assert event["status"] == "updated" and event["message"] != ADOPTED_MESSAGE
    table = runner.invoke(main, ["why", "AD-00000", "--ledger", ledger])
    assert "adopted" in table.output and "last sent" not in table.output

    shown = runner.invoke(main, ["runs", "show", str(run.run_id), "--ledger", ledger, "--json"])
    assert shown.exit_code == 0, shown.output
    counts = json.loads(shown.output)["run"]["counts"]
    assert (counts["unchanged"], counts["updated"], counts["created"]) == (1_970, 20, 10)


def test_adopt_from_the_command_line(emulator, tmp_path):
    earlier = tmp_path / "earlier-tool"
    earlier.mkdir()
    run_sync(job_for(earlier, catalog(earlier / "held.csv", HELD)), emulator, earlier)
    job = job_for(tmp_path, catalog(tmp_path / "products.csv", ROWS, CHANGED))
    args = ["run", str(job), "--target", emulator.base_url, "--adopt", "--json"]
    args += ["--ledger", f"sqlite:///{tmp_path / 'ledger.db'}"]
    env = {"NYMBLE_API_KEY": API_KEY, "NYMBLE_SYNC_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert (summary["unchanged"], summary["updated"], summary["created"]) == (1_970, 20, 10)
    assert (tmp_path / "home" / "adopt" / "products-differences.csv").exists()


def test_adopt_with_full_is_refused_before_anything_is_read(emulator, tmp_path):
    job = job_for(tmp_path, catalog(tmp_path / "products.csv", 10))
    with pytest.raises(ConfigError, match="--adopt .* --full .*choose one"):
        run_sync(job, emulator, tmp_path, adopt=True, full=True)
    assert sent(emulator) == (0, 0)


def test_adopt_per_shard_sends_each_shards_differences_once(emulator, tmp_path):
    earlier = tmp_path / "earlier-tool"
    earlier.mkdir()
    run_sync(job_for(earlier, catalog(earlier / "held.csv", HELD)), emulator, earlier)
    job = job_for(tmp_path, catalog(tmp_path / "products.csv", ROWS, CHANGED))
    before = sent(emulator)
    shards = [run_sync(job, emulator, tmp_path, adopt=True, shard=Shard(k, 2)) for k in (0, 1)]
    assert np.subtract(sent(emulator), before)[1] == 30
    assert sum(s.unchanged for s in shards) == 1_970 and all(s.balanced for s in shards)
    assert sum(s.updated + s.created for s in shards) == 30
    before = sent(emulator)
    again = [run_sync(job, emulator, tmp_path, shard=Shard(k, 2)) for k in (0, 1)]
    assert sent(emulator) == before and sum(s.unchanged for s in again) == ROWS


def test_adopting_an_org_that_holds_the_orders(emulator, tmp_path):
    prepare_target(emulator, tmp_path)  # products and customers, with the first ledger
    assert run_entity(ORDERS_CSV, emulator, tmp_path).created == CSV_GOOD
    fresh = tmp_path / "new-key"
    fresh.mkdir()
    before = sent(emulator, "POST /api/orders/bulk")

    adopted = run_entity(ORDERS_CSV, emulator, fresh, adopt=True)

    assert sent(emulator, "POST /api/orders/bulk") == before  # the org holds every order
    assert (adopted.unchanged, adopted.created, adopted.updated) == (CSV_GOOD, 0, 0)
    assert adopted.balanced
    again = run_entity(ORDERS_CSV, emulator, fresh)
    assert sent(emulator, "POST /api/orders/bulk") == before
    assert (again.unchanged, again.created, again.updated) == (CSV_GOOD, 0, 0)


def _target_id(ledger: Ledger) -> str:
    return ledger.recent_runs(limit=1)[0].target_id
