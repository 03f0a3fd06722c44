"""The emulator's state: settings, stores, fault injector, stats, and request dispatch."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .customer_store import CustomerStore
from .db import Database
from .faults import FaultInjector
from .invoice_store import InvoiceStore
from .messages import Request, Response
from .order_store import OrderStore
from .problems import ProblemError, problem
from .product_store import ProductStore
from .router import Route, Router
from .settings import EmulatorSettings, FaultConfig
from .stats import Stats

__all__ = ["EmulatorApp", "demo_keys"]

DEMO_ORG = "org_demo"


def demo_keys() -> dict[str, str]:
    """One random demo key for `org_demo`, used when no key is configured."""
    return {f"demo_{secrets.token_hex(8)}": DEMO_ORG}


class EmulatorApp:
    """Everything a request handler needs; one per running emulator."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self.api_keys = dict(settings.api_keys) or demo_keys()
        self.db = Database(settings.db_path)
        self.products = ProductStore(self.db, settings.auto_create_categories)
        self.customers = CustomerStore(self.db)
        self.orders = OrderStore(self.db, self.products, settings.strict_order_skus)
        self.invoices = InvoiceStore(self.db)
        self.stats = Stats()
        self.injector = FaultInjector(settings.faults)
        self.stopping = threading.Event()
        # Bulk bodies are handled one at a time. SQLite releases the GIL for every row it writes;
        # with other threads parsing bodies meanwhile, the writer waits for the GIL row after row
        # (a convoy) and throughput drops. Serializing the CPU-bound work avoids that.
        self.bulk_lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition()
        self.router = Router()

    def authenticate(self, headers: Mapping[str, str]) -> str | None:
        """The organization of the `x-api-key` or `Authorization: Bearer` credential (§1.2)."""
        key = headers.get("x-api-key")
        if not key:
            scheme, _, token = (headers.get("authorization") or "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        return self.api_keys.get(key.strip()) if key else None

    def dispatch(self, route: Route | None, request: Request, other_method: bool) -> Response:
        if route is None:
            return problem(405 if other_method else 404)
        try:
            return route.handler(request)
        except ProblemError as exc:
            return exc.response
        except Exception:  # a bug must still answer like the real API would: a 500
            if self.stopping.is_set():
                raise  # the database is closing under us; just hang up
            return problem(500)

    def set_faults(self, config: FaultConfig) -> None:
        self.injector = FaultInjector(config)

    def reset(self) -> None:
        """Forget all data and counters; the fault config stays but restarts from its seed."""
        with self.db.reading():  # no write may slip in between the two
            self.db.reset()
            self.products.reload()
        self.stats.reset()
        self.set_faults(self.injector.config)

    def stats_snapshot(self) -> dict:
        snap = self.stats.snapshot()
        records = {
            org: dict.fromkeys(("products", "customers", "orders", "invoices"), 0)
            for org in sorted(set(self.api_keys.values()))
        }
        records.update(self.db.record_counts())
        return {
            "requests": snap["requests"],
            "records": records,
            "faults": snap["faults"],
            "items": snap["items"],
        }

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Track a request being handled, so `close` can wait for it."""
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)
        self.db.close()
