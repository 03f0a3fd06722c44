"""Customer rows into Nymble customer records (CONTRACT §4.1), column by column: company
fields, addresses and contacts as lists of structs, attributes as a struct."""

from __future__ import annotations

import pyarrow as pa

from pipelines.entities.customers.customer_job import (
    ADDRESS_FIELDS,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    CustomersJob,
)
from pipelines.extract.chunks import Chunk
from pipelines.quality.row_checks import Failure
from pipelines.transform.field_values import FieldValues, entries_column, text_column

__all__ = ["map_customers"]


def map_customers(chunk: Chunk, job: CustomersJob) -> tuple[pa.Table, list[Failure]]:
    table, n = chunk.table, len(chunk.table)
    failures: list[Failure] = []
    fields = FieldValues(job, table, failures)
    columns = {"customerNumber": text_column(table.column(job.key))}
    for target, spec in job.fields.items():
        columns[target] = fields.value(target, spec, CUSTOMER_FIELDS[target], n)
    for name, entries, kinds in (
        ("addresses", job.addresses, ADDRESS_FIELDS),
        ("contacts", job.contacts, CONTACT_FIELDS),
    ):
        if entries:
            columns[name] = entries_column(entries, kinds, fields, n)
    if job.attributes:
        columns["customerAttributes"] = pa.StructArray.from_arrays(
            [text_column(table.column(c)) for c in job.attributes.values()],
            names=list(job.attributes),
        )
    return pa.table(columns), failures
