"""`why KEY`: a record found by its key in any case, as the API matches keys (CONTRACT §6.22),
in the ledger (SQLite, PostgreSQL, MariaDB) and in the rejects files; an exact match first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from helpers import run_sync

from pipelines.cli import main
from pipelines.ledger import Ledger
from pipelines.ledger.history import case_spellings
from pipelines.transform.serialize import key_hashes

RUN = dict(
    job="wares",
    target_id="t-1",
    target_label="https://api.example.test",
    entity="products",
    source="wares.csv",
    full=False,
)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
        pytest.param("mysql_url", id="mariadb", marks=pytest.mark.services),
    ]
)
def ledger(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path}/ledger.db"
        if request.param == "sqlite"
        else request.getfixturevalue(request.param)
    )
    with Ledger.connect(url) as opened:
        yield opened


def record(ledger: Ledger, ids: list[str], status: str = "created", batch: str = "b") -> int:
    run_id = ledger.begin_run(**RUN)
    ledger.record_outcomes(
        run_id,
        batch_id=batch * 32,
        target_id=RUN["target_id"],
        entity=RUN["entity"],
        external_ids=ids,
        key_hashes=key_hashes(pa.array(ids)),
        content_hashes=np.arange(len(ids), dtype=np.int64),
        statuses=[status] * len(ids),
        messages=[None] * len(ids),
    )
    return run_id


def found(ledger: Ledger, key: str) -> list[tuple[str, int]]:
    return [(e.external_id, e.run_id) for e in ledger.record_history(key)]


LONG = "Widget-Blue-Large-Europe"  # 19 letters: too many spellings to hash, stored ids read


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("ART-10004", "art-10004"),
        ("ART-10004", "Art-10004"),
        ("art-10004", "ART-10004"),
        (LONG, LONG.lower()),
        ("ÄRT-1", "ärt-1"),  # not ASCII: stored ids read
    ],
    ids=["lower", "mixed", "upper", "long", "unicode"],
)
def test_a_key_asked_in_another_case_finds_the_record_as_stored(ledger, stored, asked):
    first = record(ledger, ["OTHER-1", stored, "OTHER-2"])
    second = record(ledger, [stored], "updated", batch="c")
    assert found(ledger, asked) == [(stored, second), (stored, first)]
    [state] = ledger.record_state(asked)
    assert (state.external_id, state.status) == (stored, "updated")
    assert found(ledger, "OTHER-3") == []


def test_an_exact_match_wins_over_spellings_in_other_cases(ledger):
    upper = record(ledger, ["ART-1"])
    lower = record(ledger, ["art-1"], batch="c")
    assert found(ledger, "ART-1") == [("ART-1", upper)]
    assert found(ledger, "art-1") == [("art-1", lower)]
    both = found(ledger, "Art-1")
    assert sorted(both) == [("ART-1", upper), ("art-1", lower)]
    states = ledger.record_state("Art-1")
    assert sorted(s.external_id for s in states) == ["ART-1", "art-1"]


def test_long_ids_fall_back_to_reading_the_stored_ids_only_without_an_exact_match(ledger):
    run_id = record(ledger, [LONG, LONG.upper()])
    assert found(ledger, LONG) == [(LONG, run_id)]
    assert sorted(found(ledger, LONG.lower())) == [(LONG.upper(), run_id), (LONG, run_id)]


def test_case_spellings_cover_every_case_of_each_letter_and_stop_at_the_limit():
    assert case_spellings("a-1") == ["a-1", "A-1"]
    assert sorted(case_spellings("ab")) == ["AB", "Ab", "aB", "ab"]
    assert case_spellings("12-34") == ["12-34"]
    assert len(case_spellings("abcdefghijkl")) == 4096
    assert case_spellings("abcdefghijklm") is None
    assert case_spellings("äb") is None


# --- through the CLI, after real syncs against the emulator ---------------------------------

JOB = Path("mappings/products.yml")
CREATED_SKU = "FST-10012-SV"
REJECTED_SKU = "FST-11243-GN"  # a negative price in the sample: rejected before sending


def why(state: Path, *args: str):
    env = {"NYMBLE_SYNC_HOME": str(state), "NYMBLE_LEDGER_URL": None}
    return CliRunner(env=env).invoke(main, ["why", *args])


def test_why_finds_a_sent_record_and_a_rejected_row_by_their_key_in_any_case(emulator, tmp_path):
    run_sync(JOB, emulator, tmp_path)
    state = tmp_path / "state"

    story = json.loads(why(state, CREATED_SKU.lower(), "--json").stdout)
    assert story["external_id"] == CREATED_SKU.lower()
    assert story["matched_ids"] == [CREATED_SKU]
    assert [(e["external_id"], e["status"]) for e in story["events"]] == [(CREATED_SKU, "created")]
    text = why(state, CREATED_SKU.lower()).stdout
    assert f"{CREATED_SKU} (no exact match" in text and "last sent" in text

    rejected = json.loads(why(state, REJECTED_SKU.lower(), "--json").stdout)
    assert [(r["external_id"], r["rule"]) for r in rejected["rejects"]] == [
        (REJECTED_SKU, "negative_price")
    ]
    exact = json.loads(why(state, REJECTED_SKU, "--json").stdout)
    assert exact["matched_ids"] == [REJECTED_SKU] and len(exact["rejects"]) == 1
    unknown = why(state, "fst-00000-xx")
    assert unknown.exit_code == 0 and "never sent" in unknown.stdout
