"""Customer job files (``entity: customers``): one row per customer, its number as the key,
company fields, addresses and contacts (CONTRACT §4.1), customer attributes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pipelines.errors import Problem
from pipelines.jobs.job_file import parse_job, suggest
from pipelines.jobs.specs import BatchSettings, FieldKind, FieldSpec, JobBase, spec_column

__all__ = [
    "ADDRESS_FIELDS",
    "CONTACT_FIELDS",
    "CUSTOMER_FIELDS",
    "CustomersJob",
    "parse_customers_job",
]

# CONTRACT §4.1 customer fields (customerNumber comes from the job's key).
CUSTOMER_FIELDS: dict[str, FieldKind] = {
    "externalId": "string",
    "companyName": "string",
    "companyEmail": "string",
    "companyPhone": "string",
    "companyFax": "string",
    "pricing": "string",
    "active": "boolean",
    "repNumber": "string",
    "terms": "string",
    "currencyCode": "string",
}
ADDRESS_FIELDS: dict[str, FieldKind] = {
    "address1": "string",
    "address2": "string",
    "city": "string",
    "stateProvince": "string",
    "zipPostalCode": "string",
    "country": "string",
    "addressType": "string",
    "code": "string",
    "default": "boolean",
}
CONTACT_FIELDS: dict[str, FieldKind] = {
    "firstName": "string",
    "lastName": "string",
    "email": "string",
    "phoneNumber": "string",
}


class CustomersJob(JobBase):
    entity: Literal["customers"] = "customers"
    fields: dict[str, FieldSpec]
    addresses: tuple[dict[str, FieldSpec], ...] = ()
    contacts: tuple[dict[str, FieldSpec], ...] = ()
    attributes: dict[str, str] = {}  # → customerAttributes
    BATCH_DEFAULTS = {"max_items": 20}  # customers per unit of work, one PUT each
    batch: BatchSettings = BatchSettings(**BATCH_DEFAULTS)

    def source_columns_used(self) -> dict[str, str]:
        used = {"key": self.key}
        groups = [("fields", self.fields)]
        groups += [(f"addresses[{i}]", a) for i, a in enumerate(self.addresses)]
        groups += [(f"contacts[{i}]", c) for i, c in enumerate(self.contacts)]
        for prefix, specs in groups:
            for target, spec in specs.items():
                column = spec_column(spec)
                if column is not None:
                    used[f"{prefix}.{target}"] = column
        for name, column in self.attributes.items():
            used[f"attributes.{name}"] = column
        if self.watermark is not None:
            used["watermark.column"] = self.watermark.column
        return used


def parse_customers_job(raw: dict[str, Any], path: Path) -> CustomersJob:
    fields = raw.get("fields")
    record_fields = {"customerNumber", *(fields or {}), "addresses", "contacts"}
    return parse_job(CustomersJob, raw, path, _problems(raw), record_fields)


def _problems(raw: dict[str, Any]) -> list[Problem]:
    problems = []
    fields = raw.get("fields")
    if isinstance(fields, dict):
        known = sorted(CUSTOMER_FIELDS)
        problems += [
            Problem(f"fields.{name}", "is not a customer field", suggest(str(name), known))
            for name in fields
            if name not in CUSTOMER_FIELDS
        ]
    for group, names in (("addresses", ADDRESS_FIELDS), ("contacts", CONTACT_FIELDS)):
        for i, entry in enumerate(raw.get(group) or []):
            for name in entry if isinstance(entry, dict) else []:
                if name not in names:
                    fix = suggest(str(name), sorted(names))
                    problems.append(Problem(f"{group}[{i}].{name}", "is not a known key", fix))
    return problems
