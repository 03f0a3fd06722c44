"""Contract checks on mapped customers (CONTRACT §4.1), as masks."""

from __future__ import annotations

import pyarrow as pa

from pipelines.entities.customers.customer_job import CustomersJob
from pipelines.quality.row_checks import (
    Failure,
    combined,
    field_columns,
    key_too_long,
    required_values,
    unknown_currency,
)

__all__ = ["check_customers"]

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
