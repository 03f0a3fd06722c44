"""Numbers read back from the API keep their exact value (CONTRACT §5.11): an amount a double
cannot hold (12345678901234.5678) reaches `plan --against-api` and `reconcile` as sent, while
every everyday number is parsed by orjson as before."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

import orjson
import pytest
from helpers import API_KEY
from orders_helpers import ORDERS_CSV, ROOT, edited_job, order, prepare_target, run_entity

from pipelines.contract import API_PATHS
from pipelines.load.api_reader import ApiReader
from pipelines.load.decimal_json import loads_exact
from pipelines.run.commands import PlanSettings, ReconcileSettings, plan, reconcile

LONG = "12345678901234.5678"  # 18 significant digits: a double reads 12345678901234.568


def test_everyday_bodies_parse_as_orjson_parses_them() -> None:
    body = orjson.dumps(
        {"data": [{"price": 19.99, "qty": 3, "upc": "000123456789", "w": 1e-7}] * 3}
    )
    assert loads_exact(body) == orjson.loads(body)
    assert type(loads_exact(body)["data"][0]["price"]) is float


def test_a_long_number_is_a_decimal_and_only_it() -> None:
    body = b'{"a": 12345678901234.5678, "b": 19.99, "c": 1.10, "n": 123456789012345678901234,'
    body += b' "s": "0000111122223333", "e": 1.23456789012345678e+30, "tiny": 1e-7,'
    body += b' "r": 1.2345678901234567e+30}'
    parsed = loads_exact(body)
    assert parsed["a"] == Decimal(LONG) and isinstance(parsed["a"], Decimal)
    assert (parsed["b"], parsed["c"], parsed["tiny"]) == (19.99, 1.1, 1e-7)
    assert all(type(parsed[k]) is float for k in ("b", "c", "tiny"))
    assert parsed["n"] == 123456789012345678901234
    assert parsed["s"] == "0000111122223333"
    assert parsed["e"] == Decimal("1.23456789012345678e+30")
    assert parsed["r"] == 1.2345678901234567e30 and type(parsed["r"]) is float  # its repr
    assert orjson.loads(body)["a"] != Decimal(LONG)  # what the reads gave before


@pytest.mark.parametrize("body", [b'{"a": NaN, "b": 12345678901234567}', b'{"a": 1', b"[1,"])
def test_what_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        loads_exact(body)


def test_a_long_amount_reaches_plan_against_api_and_reconcile_exactly(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    lines = tmp_path / "order_lines.csv"
    shutil.copy(ROOT / "sample_data" / "order_lines.csv", lines)
    text = lines.read_text(encoding="utf-8")
    assert "\n1,1,PWT-12677-SV,24,73.46\n" in text
    lines.write_text(
        text.replace("\n1,1,PWT-12677-SV,24,73.46\n", f"\n1,1,PWT-12677-SV,1,{LONG}\n")
    )
    job = edited_job(tmp_path, ORDERS_CSV, items__source__path=str(lines))
    assert run_entity(job, emulator, tmp_path).created > 0
    held = order(api, "SO-100001")
    assert held is not None and held["items"][0]["price"] == Decimal(LONG)  # stored exactly

    reader = ApiReader(api, API_PATHS["orders"])
    [read] = [o for page in reader.listing(("ExternalId", "equals", "1")) for o in page]
    assert read["items"][0]["price"] == Decimal(LONG)

    environ = {"NYMBLE_API_KEY": API_KEY, "ERP_DATABASE_URL": "sqlite://"}
    common = {"job_path": job, "target": emulator.base_url, "state_dir": tmp_path / "state"}
    common |= {"environ": environ, "log": lambda _: None}
    planned = plan(PlanSettings(**common, against_api=True, sample=100))
    assert len(planned.samples) == planned.update  # every update is shown
    # Orders sent without a currency differ (the API fills USD); order 1 must not.
    assert "1" not in {d.external_id for d in planned.samples}
    assert not [d for d in planned.samples if set(d.changes) != {"currencyCode"}]
    checked = reconcile(ReconcileSettings(**common))
    assert checked.agrees and checked.differ == 0, json.dumps(checked.samples)
