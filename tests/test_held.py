"""Orders waiting for a reference are held across runs and listed (`nymble-sync held`); a
job's hold policy gives up on them after a number of runs, rejects them for good, and lets
the incremental watermark move on."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner
from helpers import API_KEY, run_sync
from orders_helpers import ERP, ORDERS_SQL, PRODUCTS, edited_job, rejects_by_id, run_entity

from pipelines.cli import main
from pipelines.ledger import Ledger
from pipelines.ops import run_reports
from pipelines.run.commands import PlanSettings, plan
from pipelines.run.resources import default_ledger_url


def test_a_hold_policy_gives_up_and_the_watermark_moves_on(emulator, tmp_path):
    """No customer is loaded: every order with a customer waits. Held by two runs, the third
    gives up on them, and the fourth reads from the newest order on."""
    erp = tmp_path / "erp.sqlite"
    shutil.copy(ERP, erp)
    url = f"sqlite:///{erp}"
    assert run_sync(PRODUCTS, emulator, tmp_path).created == 1994
    job = edited_job(tmp_path, ORDERS_SQL, hold={"max_runs": 2})
    state = tmp_path / "state"

    first = run_entity(job, emulator, tmp_path, url=url)
    assert first.created == 0 and first.held > 4900
    held = cli_held(job, state)
    assert len(held) == first.held and {h["runs"] for h in held} == {1}
    assert {h["rule"] for h in held} == {"unknown_customer"}
    mark = watermark(state)
    assert mark == min(h["watermark"] for h in held)  # the earliest held order holds it back

    second = run_entity(job, emulator, tmp_path, url=url)
    assert second.held == first.held
    assert {h["runs"] for h in cli_held(job, state)} == {2}

    predicted = plan_of(job, emulator, tmp_path, url)  # the plan foresees the policy
    assert (predicted.held, predicted.reject) == (0, second.rejected)
    third = run_entity(job, emulator, tmp_path, url=url)
    assert third.held == 0 and third.rejected == second.rejected
    rules = {r["rule"] for r in rejects_by_id(third.rejects_path).values()}
    assert "gave_up_waiting" in rules and "unknown_customer" not in rules
    assert cli_held(job, state) == []
    assert watermark(state) > mark  # no held order holds it back any more

    fourth = run_entity(job, emulator, tmp_path, url=url)
    assert fourth.rows_read < 20  # the overlap of an hour at the newest order, not everything
    moved = watermark(state)

    # Read again in full, the orders given up on stay given up: not held anew, and the
    # watermark is not wound back to them.
    full = run_entity(job, emulator, tmp_path, url=url, full=True)
    assert (full.held, full.given_up) == (0, third.given_up)
    assert cli_held(job, state) == [] and watermark(state) >= moved


def test_held_orders_leave_the_list_once_their_customer_exists(emulator, api, tmp_path):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(ERP, erp)
    url = f"sqlite:///{erp}"
    assert run_sync(PRODUCTS, emulator, tmp_path).created == 1994
    run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    waiting = cli_held(ORDERS_SQL, tmp_path / "state")
    customer = waiting[0]["value"]
    body = {"customerNumber": customer, "companyName": "X", "companyEmail": "x@y.z",
            "pricing": "Retail"}  # fmt: skip
    assert api.put("/api/customers", json=body).is_success
    again = run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    released = [h for h in waiting if h["value"] == customer]
    assert again.created == len(released) > 0
    still = {h["external_id"] for h in cli_held(ORDERS_SQL, tmp_path / "state")}
    assert not still & {h["external_id"] for h in released}
    assert len(still) == len(waiting) - len(released)


def test_runs_show_lists_what_the_run_held_up_to_a_limit(emulator, tmp_path, monkeypatch):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(ERP, erp)
    url = f"sqlite:///{erp}"
    assert run_sync(PRODUCTS, emulator, tmp_path).created == 1994
    result = run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    waiting = cli_held(ORDERS_SQL, tmp_path / "state")
    assert result.held == len(waiting) > 3
    monkeypatch.setattr(run_reports, "SHOWN_HELD", 3)
    env = {"NYMBLE_SYNC_HOME": str(tmp_path / "state")}
    args = ["runs", "show", str(result.run_id)]
    shown = json.loads(CliRunner().invoke(main, [*args, "--json"], env=env).stdout)
    assert shown["held_total"] == len(waiting)
    assert [h["external_id"] for h in shown["held"]] == [h["external_id"] for h in waiting[:3]]
    text = CliRunner().invoke(main, args, env=env).stdout
    assert f"{len(waiting):,} record(s) this run held back" in text
    assert "(the first 3: `nymble-sync held JOB` lists all)" in text


def cli_held(job, state) -> list[dict]:
    env = {"NYMBLE_SYNC_HOME": str(state)}
    result = CliRunner().invoke(main, ["held", str(job), "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def watermark(state) -> str:
    with Ledger.connect(default_ledger_url(state), create=False) as ledger:
        [run] = ledger.recent_runs(limit=1)
        return ledger.get_watermark(job=run.job, target_id=run.target_id)


def plan_of(job, emulator, tmp_path, url):
    return plan(
        PlanSettings(
            job_path=job,
            target=emulator.base_url,
            state_dir=tmp_path / "state",
            environ={"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": url},
            log=lambda _: None,
        )
    )
