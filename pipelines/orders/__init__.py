"""Historical order import and customer sync: job files, grouping of lines into orders, exact
money, ERP dates, reference checks, and the runs that send them (see ``run``)."""

from pipelines.orders.config import CustomersJob, OrdersJob, load_entity_job
from pipelines.orders.run import run_customers, run_orders, sync_entity

__all__ = [
    "CustomersJob",
    "OrdersJob",
    "load_entity_job",
    "run_customers",
    "run_orders",
    "sync_entity",
]
