import re
from pathlib import Path

import pytest

from pipelines.errors import JobFileError
from pipelines.jobs.job_file import check_columns, load_job

GOOD = """
entity: products
source: {type: csv, path: products.csv}
key: sku
fields:
  sku: sku
  price: price_retail
  currencyCode: {value: USD}
  active: {column: status, map: {A: true, I: false}}
prices:
  - {tier: Retail, price: price_retail}
  - {tier: Wholesale, price: price_wholesale_50, atQuantity: 50}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yml"
    path.write_text(text)
    return path


def test_the_shipped_product_job_files_parse():
    paths = [p for p in Path("mappings").glob("*.yml") if "entity: products" in p.read_text()]
    assert paths
    for path in paths:
        assert load_job(path).entity == "products"


def test_a_good_job_parses_into_typed_models(tmp_path):
    job = load_job(write(tmp_path, GOOD))
    assert job.job == "job"  # defaults to the file name
    assert job.fields["currencyCode"].value == "USD"
    assert job.fields["active"].map == {"A": True, "I": False}
    assert [p.atQuantity for p in job.prices] == [1, 50]


def test_every_mistake_is_reported_at_once_with_key_and_fix(tmp_path):
    bad = GOOD.replace("sku: sku\n", "skuu: sku\n").replace("type: csv", "type: xls")
    bad = bad.replace("atQuantity: 50", "atQuantity: 0") + "colour: blue\n"
    with pytest.raises(JobFileError) as err:
        load_job(write(tmp_path, bad))
    text = str(err.value)
    assert str(tmp_path / "job.yml") in text
    assert "fields.skuu: is not a Nymble product field (did you mean 'sku'?)" in text
    assert "source type 'xls' is not supported: use 'csv', 'parquet', 'sql' or 'xlsx'" in text
    assert "prices.1.atQuantity" in text
    assert "colour: is not a known key" in text
    assert "fields.sku: is required: every product needs a SKU" in text
    assert len(err.value.problems) == 5


def test_a_field_spec_of_the_wrong_shape_names_the_accepted_shapes(tmp_path):
    with pytest.raises(JobFileError, match=r"fields.price: must be a column name, \{value"):
        load_job(write(tmp_path, GOOD.replace("price: price_retail\n", "price: 12\n", 1)))


def test_unknown_source_columns_get_a_close_match(tmp_path):
    job = load_job(write(tmp_path, GOOD))
    with pytest.raises(JobFileError) as err:
        columns = ["sku", "price_retial", "status", "price_wholesale_50"]
        check_columns(job, job.source_columns_used(), columns, source="products.csv")
    assert err.value.problems[0].key == "fields.price"
    assert "did you mean 'price_retial'?" in str(err.value)
    assert len(err.value.problems) == 2  # fields.price and prices[0].price


def test_not_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(JobFileError, match="not valid YAML"):
        load_job(write(tmp_path, "entity: [products"))


def test_a_missing_job_file_is_a_clear_error(tmp_path):
    with pytest.raises(JobFileError, match="cannot read"):
        load_job(tmp_path / "nope.yml")


def test_a_partial_batch_keeps_the_entity_defaults(tmp_path):
    """Orders go 50 a call unless the job says otherwise, even when `batch:` names only
    its concurrency."""
    spec = Path("mappings/orders_csv.yml").read_text()
    path = tmp_path / "orders.yml"
    path.write_text(re.sub(r"(?m)^batch:.*$", "batch: {concurrency: 8}", spec))
    job = load_job(path)
    assert (job.batch.max_items, job.batch.concurrency) == (50, 8)
    path.write_text(re.sub(r"(?m)^batch:.*$", "batch: {max_items: 10}", spec))
    assert load_job(path).batch.max_items == 10


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{type: csv, path: p.csv, encoding: utf8x}",
            "source.encoding: encoding 'utf8x' is not known; use auto",
        ),
        (
            "{type: csv, path: p.csv, encoding: hex}",
            "source.encoding: encoding 'hex' is not known; use auto",
        ),
        (
            "{type: csv, path: p.csv, delimiter: ';;'}",
            "source.delimiter: delimiter ';;' is not one ASCII character; use e.g. ',', ';'",
        ),
        (
            "{type: xlsx, path: p.xlsx, sheet: 0}",
            "source.sheet: sheet 0 is not a position: positions count from 1",
        ),
        ("{type: tsv, path: p.tsv}", "source type 'tsv' is not supported: use 'csv', 'parquet'"),
    ],
)
def test_a_bad_source_option_repeats_the_value_and_what_is_supported(tmp_path, source, expected):
    with pytest.raises(JobFileError) as err:
        load_job(write(tmp_path, GOOD.replace("{type: csv, path: products.csv}", source)))
    assert expected in str(err.value)
    assert "Value error" not in str(err.value)  # pydantic's prefix says nothing to a user


@pytest.mark.parametrize(("given", "meant"), [("tab", "\t"), (";", ";"), ("pipe", "|")])
def test_a_delimiter_may_be_named(tmp_path, given, meant):
    text = GOOD.replace("path: products.csv}", f"path: products.csv, delimiter: '{given}'}}")
    assert load_job(write(tmp_path, text)).source.delimiter == meant
