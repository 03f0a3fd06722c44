"""Contract checks on mapped customers (CONTRACT §4.1), as masks, and warnings about values
sent as they are but worth a look."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.entities.customers.customer_job import CustomersJob
from pipelines.quality.row_checks import (
    Failure,
    combined,
    field_columns,
    key_too_long,
    required_values,
    unknown_currency,
)
from pipelines.quality.row_warnings import RowWarning
from pipelines.transform.convert import normalize_text

__all__ = ["check_customers", "customer_warnings"]

_CUSTOMER_REQUIRED = ("companyName", "companyEmail", "pricing")  # §4.1 "Req." column


def check_customers(table: pa.Table, job: CustomersJob) -> list[Failure]:
    columns = field_columns(job.fields)
    failures = [
        required_values(table.column("customerNumber"), job.key, "customerNumber"),
        key_too_long(combined(table.column("customerNumber")), job.key),
    ]
    for name in _CUSTOMER_REQUIRED:
        if name not in table.column_names:
            continue  # the job file need not map it; the API will say so for every customer
        failures.append(required_values(table.column(name), columns.get(name), name))
    if "currencyCode" in table.column_names:
        failures.append(
            unknown_currency(combined(table.column("currencyCode")), columns.get("currencyCode"))
        )
    return [f for f in failures if f is not None and f.mask.any()]


def customer_warnings(table: pa.Table, source: pa.Table, job: CustomersJob) -> list[RowWarning]:
    """Values the API takes as they are but worth a look (CONTRACT §4.1): an email without
    an "@" (no format is checked), a customer without a billing or a shipping address when
    the job maps addresses ("include at least one billing address and one shipping
    address"). ``table`` holds the mapped customers, ``source`` the chunk's source rows."""
    found = []
    columns = field_columns(job.fields)
    if "companyEmail" in table.column_names:
        emails = _text(table.column("companyEmail"))
        found.append(_no_at(emails, columns.get("companyEmail"), "companyEmail"))
    for i, contact in enumerate(job.contacts):
        column = contact.get("email")
        if isinstance(column, str):  # a column, not a constant
            emails = normalize_text(source.column(column).combine_chunks())
            found.append(_no_at(emails, column, f"contacts[{i}].email"))
    if job.addresses and "addresses" in table.column_names:
        found.append(_missing_address(table.column("addresses").combine_chunks()))
    return [w for w in found if w.mask.any()]


def _no_at(emails: pa.Array, column: str | None, field: str) -> RowWarning:
    at = pc.fill_null(pc.match_substring(emails, "@"), True).to_numpy(zero_copy_only=False)
    return RowWarning(
        ~at,
        column,
        emails,
        "email_without_at",
        f"{field} has no '@': the API stores it as it is, but no mail can reach it",
    )


def _missing_address(addresses: pa.ListArray) -> RowWarning:
    """Customers lacking a billing or a shipping address, by ``addressType``."""
    n = len(addresses)
    kinds = _text(pc.struct_field(addresses.flatten(), "addressType"))
    parents = pc.list_parent_indices(addresses).to_numpy(zero_copy_only=False)
    lowered = pc.fill_null(pc.utf8_lower(kinds), "")
    has = {}
    for kind in ("billing", "shipping"):
        has[kind] = np.zeros(n, dtype=bool)
        has[kind][parents[pc.equal(lowered, kind).to_numpy(zero_copy_only=False)]] = True
    lacking = pc.if_else(
        pa.array(~has["billing"] & ~has["shipping"]),
        "billing and shipping",
        pc.if_else(pa.array(~has["billing"]), "billing", "shipping"),
    )
    return RowWarning(
        ~(has["billing"] & has["shipping"]),
        None,
        lacking,
        "missing_address",
        "no billing or no shipping address (the value names the one missing); the API "
        "asks for at least one of each",
    )


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    values = combined(values)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values if pa.types.is_string(values.type) else values.cast(pa.string())
