"""The historical order import end to end, over real HTTP against the emulator: CSV files
spilled and grouped, the ERP database through SQL (SQLite here, PostgreSQL and MariaDB when
the servers are up), exact money, ERP dates, reference checks and incremental reads."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
import yaml
from orders_helpers import (
    ERP,
    ORDERS_CSV,
    ORDERS_SQL,
    edited_job,
    order,
    order_count,
    prepare_target,
    read_csv,
    rejects_by_id,
    run_entity,
)

from pipelines.entities.orders.grouping import ITEMS, group_sorted, merge_sorted, spill_grouped
from pipelines.errors import JobFileError, SourceError
from pipelines.extract.chunks import Chunk
from pipelines.jobs.job_file import load_job as load_entity_job
from pipelines.ledger import Ledger

SAMPLE = Path("sample_data")
# The sample's defects among orders 1-500 (sample_data/make_erp.py), and the orders whose SKU
# is a product the products job rejects (rows 602 and 1375 of products.csv).
DEFECTS = {
    "37": ("unknown_sku", "line 2: DIS-99999-XX"),
    "88": ("unknown_customer", "CUST-0999"),
    "142": ("no_items", ""),
    "215": ("below_minimum", "line 1: 0"),
    "377": ("duplicate_orderNumber", "SO-100366"),
}
REJECTED_PRODUCT_SKUS = {"FST-11243-GN", "ELC-12416-RD"}
CSV_GOOD = 491  # 500 orders - 5 defects - 4 orders with a rejected product's SKU


# --- CSV: the import, twice --------------------------------------------------------------------


def test_importing_twice_updates_and_never_duplicates(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    first = run_entity(ORDERS_CSV, emulator, tmp_path)
    assert first.balanced and (first.rows_read, first.created, first.failed) == (500, CSV_GOOD, 0)
    assert order_count(api) == CSV_GOOD
    second = run_entity(ORDERS_CSV, emulator, tmp_path)
    assert (second.unchanged, second.created, second.updated, second.batches) == (CSV_GOOD, 0, 0, 0)
    forced = run_entity(ORDERS_CSV, emulator, tmp_path, full=True)
    assert (forced.updated, forced.created) == (CSV_GOOD, 0)
    assert order_count(api) == CSV_GOOD


def test_defects_are_rejected_before_sending_naming_what_is_wrong(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    summary = run_entity(ORDERS_CSV, emulator, tmp_path)
    rejects = rejects_by_id(summary.rejects_path)
    for external_id, (rule, value) in DEFECTS.items():
        assert (rejects[external_id]["rule"], rejects[external_id]["value"]) == (rule, value)
        if external_id != "377":
            assert order(api, f"SO-{100000 + int(external_id)}") is None
    assert order(api, "SO-100366")["externalId"] == "366"  # 377 repeated its number
    assert "DIS-99999-XX" in rejects["37"]["value"] and "CUST-0999" in rejects["88"]["value"]
    unknown = {r["value"].split(": ")[1] for r in rejects.values() if r["rule"] == "unknown_sku"}
    assert unknown == REJECTED_PRODUCT_SKUS | {"DIS-99999-XX"}
    assert summary.failed == 0  # nothing was refused by the API: it never saw them


def test_an_order_waiting_for_its_sku_lands_once_the_product_exists(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    run_entity(ORDERS_CSV, emulator, tmp_path)
    assert order(api, "SO-100037") is None
    # DIS-99999-XX through a products job (the ledger knows it); FST-11243-GN straight through
    # the API (only a lookup finds it).
    catalog = tmp_path / "more.csv"
    header = (SAMPLE / "products.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    catalog.write_text(header + "\nDIS-99999-XX,Display,,Display,9.99,8.00,,5,1,1,lb,,A,,\n")
    products = edited_job(
        tmp_path, Path("mappings/products.yml"), "more.yml", source__path=str(catalog), job="more"
    )
    from helpers import run_sync

    assert run_sync(products, emulator, tmp_path).created == 1
    body = {"sku": "FST-11243-GN", "name": "Washer", "price": 1.5, "externalId": "FST-11243-GN"}
    assert api.put("/api/products", json=body).is_success
    again = run_entity(ORDERS_CSV, emulator, tmp_path)
    assert (again.created, again.unchanged) == (4, CSV_GOOD)  # 37, 7, 174, 488
    assert order(api, "SO-100037")["items"][1]["sku"] == "DIS-99999-XX"
    assert order(api, "SO-100007") is not None


def test_a_held_order_the_source_no_longer_returns_stays_held(emulator, api, tmp_path):
    """After a run, the held orders it read again and sent leave the held list; one the
    source no longer returns stays held, since the run cannot know its customer exists."""
    erp = tmp_path / "erp.sqlite"
    shutil.copy(ERP, erp)
    url = f"sqlite:///{erp}"
    from helpers import run_sync

    from pipelines.ledger.held_records import held_records
    from pipelines.run.resources import default_ledger_url

    def held() -> dict[str, str]:
        with Ledger.connect(default_ledger_url(tmp_path / "state"), create=False) as ledger:
            return {h.external_id: h.value for h in held_records(ledger)}

    assert run_sync(Path("mappings/products.yml"), emulator, tmp_path).created == 1994
    assert run_entity(ORDERS_SQL, emulator, tmp_path, url=url).held > 4900  # no customers yet
    before = held()
    customer = "CUST-0042"
    hers = sorted((k for k, v in before.items() if v == customer), key=int)
    assert len(hers) > 3
    with sqlite3.connect(erp) as db:  # the ERP drops one of her orders
        db.execute("DELETE FROM orders WHERE order_id = ?", (int(hers[0]),))
    body = {"customerNumber": customer, "companyName": "X", "companyEmail": "x@y.z",
            "pricing": "Retail"}  # fmt: skip
    assert api.put("/api/customers", json=body).is_success

    again = run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    after = held()
    assert again.created == len(hers) - 1
    assert hers[0] in after and not set(hers[1:]) & set(after)
    assert set(after) == set(before) - set(hers[1:])  # the others still wait


def test_a_status_change_in_the_source_reimports_as_an_update(emulator, api, tmp_path, state_on):
    prepare_target(emulator, tmp_path)
    source = tmp_path / "orders.csv"
    shutil.copy(SAMPLE / "orders.csv", source)
    job = edited_job(tmp_path, ORDERS_CSV, source__path=str(source))
    run_entity(job, emulator, tmp_path)
    assert order(api, "SO-100001")["orderStatus"] == "Shipped"
    text = source.read_text(encoding="utf-8").replace(
        "\n1,SO-100001,CUST-0192,01/02/2023 01:58,S,", "\n1,SO-100001,CUST-0192,01/02/2023 01:58,X,"
    )
    source.write_text(text, encoding="utf-8")
    second = run_entity(job, emulator, tmp_path)
    assert (second.updated, second.created, second.unchanged) == (1, 0, CSV_GOOD - 1)
    assert order(api, "SO-100001")["orderStatus"] == "Cancelled"  # X is a void (§3.6)
    assert order_count(api) == CSV_GOOD


def test_money_arrives_exactly_and_dates_as_utc(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    run_entity(ORDERS_CSV, emulator, tmp_path)
    headers = {r["order_id"]: r for r in read_csv(SAMPLE / "orders.csv")}
    lines: dict[str, list[dict]] = {}
    for line in read_csv(SAMPLE / "order_lines.csv"):
        lines.setdefault(line["order_id"], []).append(line)
    chicago = ZoneInfo("America/Chicago")
    statuses = {"C": "Complete", "S": "Shipped", "X": "Cancelled", "O": "Pending"}
    rejected = {"7", "30", "174", "488", *DEFECTS}
    picked = ["1", "2", "3", "303", "499", *map(str, range(100, 500, 37))]
    for order_id in [i for i in picked if i not in rejected]:
        head, got = headers[order_id], order(api, headers[order_id]["order_number"])
        local = datetime.strptime(head["order_date"], "%m/%d/%Y %H:%M").replace(tzinfo=chicago)
        assert got["orderDate"] == local.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert got["orderStatus"] == statuses[head["status"]]
        assert got["shippingDetails"]["shippingTotal"] == Decimal(head["ship_total"])
        assert [(i["sku"], i["quantity"], i["price"]) for i in got["items"]] == [
            (li["sku"], int(li["qty"]), Decimal(li["unit_price"])) for li in lines[order_id]
        ]
    assert order(api, "SO-100303")["items"][0]["price"] == Decimal("12.345")
    assert str(order(api, "SO-100303")["items"][0]["price"]) == "12.345"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def test_an_unreadable_line_rejects_its_order_rather_than_sending_it_short(emulator, tmp_path):
    orders, lines = tmp_path / "orders.csv", tmp_path / "lines.csv"
    orders.write_text("".join(_lines(SAMPLE / "orders.csv")[:4]))
    kept = [
        li
        for li in _lines(SAMPLE / "order_lines.csv")
        if li.split(",")[0] in ("order_id", "1", "2", "3")
    ]
    broken = next(i for i, li in enumerate(kept) if li.startswith("2,"))
    kept[broken] = kept[broken].rstrip("\n") + ",extra\n"
    lines.write_text("".join(kept))
    job = edited_job(
        tmp_path,
        ORDERS_CSV,
        source__path=str(orders),
        items__source__path=str(lines),
        references={"check": False},
    )
    summary = run_entity(job, emulator, tmp_path)
    assert summary.balanced and (summary.rows_read, summary.rejected) == (3, 1)
    rejects = {(r["external_id"], r["rule"]): r for r in read_csv(Path(summary.rejects_path))}
    assert rejects[("2", "malformed_line")]["source"] == str(orders)
    assert rejects[("2", "malformed_row")]["source"] == str(lines)  # the line names its order
    assert "line row(s) could not be read" in " ".join(summary.notes)


# --- SQL: SQLite, PostgreSQL, MariaDB ---------------------------------------------------------

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("pg_url", id="postgresql", marks=pytest.mark.services),
    pytest.param("mysql_url", id="mariadb", marks=pytest.mark.services),
]


@pytest.fixture(params=BACKENDS)
def erp_url(request):
    if request.param == "sqlite":
        return f"sqlite:///{ERP}"
    from test_sql_source import load_erp  # server types: NUMERIC(12,3) money, TIMESTAMP dates

    url = request.getfixturevalue(request.param)
    load_erp(url)
    return url


def test_sql_import_matches_the_csv_import_on_every_backend(emulator, api, tmp_path, erp_url):
    prepare_target(emulator, tmp_path)
    run_entity(ORDERS_CSV, emulator, tmp_path)  # orders 1-500, through files
    summary = run_entity(ORDERS_SQL, emulator, tmp_path, url=erp_url)
    assert summary.balanced and summary.failed == 0
    assert summary.rows_read == 5000
    # Orders 1-500 came through CSV already: same bodies from SQL (money, dates, statuses), so
    # nothing of them is sent again, whatever the backend's types.
    assert summary.unchanged == CSV_GOOD
    assert order_count(api) == CSV_GOOD + summary.created
    assert order(api, "SO-100303")["items"][0]["price"] == Decimal("12.345")
    with sqlite3.connect(ERP) as db:
        (date_text,) = db.execute("SELECT order_date FROM orders WHERE order_id = 4321").fetchone()
    local = datetime.strptime(date_text, "%m/%d/%Y %H:%M").replace(
        tzinfo=ZoneInfo("America/Chicago")
    )
    want = local.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert order(api, "SO-104321")["orderDate"] == want


def test_incremental_sql_reads_from_the_watermark_minus_the_overlap(emulator, api, tmp_path):
    erp = tmp_path / "erp.sqlite"
    shutil.copy(ERP, erp)
    url = f"sqlite:///{erp}"
    prepare_target(emulator, tmp_path)
    first = run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    ledger = Ledger.connect(f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite'}")
    target_id = ledger.recent_runs(limit=1)[0].target_id
    held = ledger.get_watermark(job="orders_sql", target_id=target_id)
    # orders waiting for a SKU or customer hold the watermark back, so the next run reads them
    assert held is not None and held < "2025-01-01"
    missing = {
        r["value"].split(": ")[-1]
        for r in rejects_by_id(first.rejects_path).values()
        if r["rule"] == "unknown_sku"
    }
    for sku in missing:
        assert api.put("/api/products", json={"sku": sku, "name": sku, "price": 1}).is_success
    body = {
        "customerNumber": "CUST-0999",
        "companyName": "X",
        "companyEmail": "x@y.z",
        "pricing": "Retail",
    }
    assert api.put("/api/customers", json=body).is_success
    second = run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    assert second.created == len(missing) and second.created > 0 or second.created > 30
    top = ledger.get_watermark(job="orders_sql", target_id=target_id)
    with sqlite3.connect(erp) as db:
        (latest,) = db.execute("SELECT max(updated_at) FROM orders").fetchone()
        assert top == latest
        db.execute(
            "UPDATE orders SET status = 'X', updated_at = '2030-01-01 00:00:00' "
            "WHERE order_id = 4000"
        )
    third = run_entity(ORDERS_SQL, emulator, tmp_path, url=url)
    # only the edited order and those within the hour's overlap are read; the overlap, unchanged,
    # is not sent again
    assert third.rows_read < 20 and (third.updated, third.created) == (1, 0)
    assert third.unchanged == third.rows_read - 1 - third.rejected
    assert order(api, "SO-104000")["orderStatus"] == "Cancelled"
    assert ledger.get_watermark(job="orders_sql", target_id=target_id) == "2030-01-01 00:00:00"
    ledger.close()


def test_denormalized_sql_rows_give_the_same_orders(emulator, api, tmp_path):
    prepare_target(emulator, tmp_path)
    run_entity(ORDERS_SQL, emulator, tmp_path)
    job = edited_job(
        tmp_path,
        ORDERS_SQL,
        source__query="sql/orders_denormalized.sql",
        source__chunk_rows=777,
        items__source=None,
        watermark=None,
    )
    again = run_entity(job, emulator, tmp_path, full=False)
    assert again.rows_read == 5000 and again.created + again.updated == 0
    assert again.unchanged == 5000 - again.rejected


# --- grouping, directly -----------------------------------------------------------------------


def _chunks(table: pa.Table, size: int, first_row: int = 2) -> list[Chunk]:
    import numpy as np

    return [
        Chunk(
            table.slice(i, size),
            np.arange(i + first_row, i + first_row + min(size, len(table) - i)),
            "t",
        )
        for i in range(0, len(table), size)
    ]


HEADERS = pa.table({"k": [1, 2, 3, 5, 8], "h": list("abcde")})
LINES = pa.table({"k": [1, 1, 2, 3, 3, 3, 4, 8], "sku": list("pqrstuvw")})
EXPECTED = {1: ["p", "q"], 2: ["r"], 3: ["s", "t", "u"], 5: [], 8: ["w"]}  # 4: no header


def _as_dict(chunks) -> dict:
    out = {}
    for chunk in chunks:
        for key, items in zip(
            chunk.table["k"].to_pylist(), chunk.table[ITEMS].to_pylist(), strict=True
        ):
            out[key if not isinstance(key, str) else int(key)] = [i["sku"] for i in items]
    return out


@pytest.mark.parametrize("header_rows,line_rows", [(1, 1), (2, 3), (5, 8), (3, 2)])
def test_merge_carries_lines_across_chunk_boundaries(header_rows, line_rows):
    merged = merge_sorted(
        _chunks(HEADERS, header_rows), _chunks(LINES, line_rows), "k", "k", ["sku"]
    )
    assert _as_dict(merged) == EXPECTED


@pytest.mark.parametrize("rows", [1, 2, 3, 8])
def test_denormalized_rows_carry_the_last_order_to_the_next_chunk(rows):
    flat = pa.table(
        {"k": [1, 1, 2, 3, 3, 3, 5, 8], "sku": ["p", "q", "r", "s", "t", "u", None, "w"]}
    )
    assert _as_dict(group_sorted(_chunks(flat, rows), "k", ["sku"])) == EXPECTED


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_spilled_files_in_any_order_group_the_same(parts):
    rng = __import__("random").Random(parts)
    shuffled = [LINES.take([i]) for i in rng.sample(range(len(LINES)), len(LINES))]
    lines = pa.concat_tables(shuffled).cast(pa.schema([("k", pa.string()), ("sku", pa.string())]))
    headers = HEADERS.cast(pa.schema([("k", pa.string()), ("h", pa.string())]))
    grouped = spill_grouped(
        _chunks(headers, 2),
        _chunks(lines, 3),
        key="k",
        line_key="k",
        item_columns=["sku"],
        parts=parts,
    )
    # an order's lines keep the lines file's row order
    assert {k: sorted(v) for k, v in _as_dict(grouped).items()} == EXPECTED


def test_a_stream_that_is_not_sorted_stops_the_run():
    unsorted = pa.table({"k": [1, 3, 2], "sku": list("abc")})
    with pytest.raises(SourceError, match="not sorted by the order key"):
        list(merge_sorted(_chunks(HEADERS, 5), _chunks(unsorted, 3), "k", "k", ["sku"]))


# --- the job file -----------------------------------------------------------------------------


def test_day_month_dates_without_a_format_are_a_configuration_error(emulator, tmp_path):
    job = edited_job(tmp_path, ORDERS_CSV, fields__orderDate="order_date")
    with pytest.raises(JobFileError, match="fields.orderDate: column 'order_date'.*both MM/DD"):
        run_entity(job, emulator, tmp_path)


def test_a_date_mapped_without_a_time_zone_is_reported_before_reading(tmp_path):
    """Naive ERP timestamps taken as UTC without a word would move every order by hours."""
    spec = yaml.safe_load(ORDERS_CSV.read_text())
    del spec["timezone"]
    job = tmp_path / "no_zone.yml"
    job.write_text(yaml.safe_dump(spec))
    with pytest.raises(JobFileError) as caught:
        load_entity_job(job)
    text = str(caught.value)
    assert "fields.orderDate: maps a date but the job names no time zone" in text
    assert "column 'order_date'" in text and "timezone: <IANA zone>" in text

    spec["fields"]["orderDate"]["timezone"] = "Europe/Berlin"  # a zone on the field is enough
    job.write_text(yaml.safe_dump(spec))
    assert load_entity_job(job).fields["orderDate"].timezone == "Europe/Berlin"


def test_a_date_format_without_directives_repeats_it_and_shows_how(tmp_path):
    date = {"column": "order_date", "format": "DD.MM.YYYY"}
    job = edited_job(tmp_path, ORDERS_CSV, fields__orderDate=date)
    with pytest.raises(JobFileError, match=r"format 'DD.MM.YYYY' has no strptime directive.*%d"):
        load_entity_job(job)


def test_job_file_mistakes_are_reported_at_once(tmp_path):
    job = edited_job(
        tmp_path,
        ORDERS_CSV,
        timezone="America/Chicgo",
        watermark={"column": "u"},
        fields__orderStaus="status",
    )
    with pytest.raises(JobFileError) as caught:
        load_entity_job(job)
    text = str(caught.value)
    assert "did you mean 'orderStatus'" in text
    assert "did you mean 'America/Chicago'" in text
    assert "incremental reads need a source of type sql" in text
