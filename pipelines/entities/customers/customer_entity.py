"""Customers as an entity of the one engine: one row per customer, keyed by its number, sent
one ``PUT /api/customers`` each (CONTRACT §4.1, §6.20: no bulk route)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import orjson

from pipelines.admit.acked_state import AckedState
from pipelines.contract import API_PATHS, PUT_ENDPOINTS
from pipelines.entities import EntityPlugin, EntityRun, SampleDiff
from pipelines.entities.customers.customer_checks import check_customers, customer_warnings
from pipelines.entities.customers.customer_job import CustomersJob, parse_customers_job
from pipelines.entities.customers.customer_mapping import map_customers
from pipelines.extract.chunks import Chunk, empty_table
from pipelines.load.api_reader import ApiReader
from pipelines.load.pacing import Pacer
from pipelines.load.put_each import PutEach
from pipelines.quality.row_warnings import RowWarning
from pipelines.transform.prepared import Prepared, prepared
from pipelines.transform.projection import Projection, read_state
from pipelines.transform.record_diff import changed_fields

if TYPE_CHECKING:
    from pipelines.run.stopping import StopRequest

__all__ = ["PLUGIN", "CustomersRun"]


class CustomersRun(EntityRun):
    job: CustomersJob
    id_field = "customerNumber"

    def prepare(self, chunk: Chunk) -> Prepared:
        table, failures = map_customers(chunk, self.job)
        failures += check_customers(table, self.job)
        return prepared(chunk, table, table.column("customerNumber").combine_chunks(), failures)

    def warnings(self, prepared: Prepared) -> list[RowWarning]:
        return customer_warnings(prepared.table, prepared.chunk.table, self.job)

    def sender(self, pacer: Pacer, stop: StopRequest | None = None) -> PutEach:
        policy, endpoint = self.ctx.options.policy, PUT_ENDPOINTS["customers"]
        return PutEach(self.ctx.client, endpoint, policy=policy, pacer=pacer, stop=stop)

    def api_state(self, reader: ApiReader) -> AckedState:
        customers = ApiReader(reader.client, API_PATHS["customers"])
        return read_state(customers.listing(), self.projection())

    def sample(self, reader: ApiReader, external_id: str, body: bytes) -> SampleDiff:
        stored = ApiReader(reader.client, API_PATHS["customers"]).one(external_id)
        if stored is None:
            return SampleDiff(external_id, {}, found=False)
        old = self.projection().canonical(stored)
        return SampleDiff(external_id, changed_fields(old, orjson.loads(body)))

    def projection(self) -> Projection:
        """Customers as this job maps them: the schema of an empty chunk, mapped."""
        used = set(self.job.source_columns_used().values())
        empty = empty_table(used)
        mapped, _ = map_customers(Chunk(empty, np.empty(0, np.int64), ""), self.job)
        return Projection(mapped.schema, key="customerNumber")


PLUGIN = EntityPlugin("customers", parse_customers_job, CustomersRun)
