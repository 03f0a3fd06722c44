"""Customers go one ``PUT /api/customers`` each (CONTRACT §4.1, §6.20: no bulk endpoint).

``PutEach`` offers the ``send(bodies) -> BatchResult`` of :class:`pipelines.load.Sender`, so
the Dispatcher runs several batches of customers in flight under the shared Pacer, and sends
every body through that Sender's retry policy and its one place of httpx error translation,
as a ``PUT``.
"""

from __future__ import annotations

import httpx

from pipelines.errors import TransportError
from pipelines.load.pacing import Pacer
from pipelines.load.sender import BatchResult, ItemOutcome, RetryPolicy, Sender, describe_refusal

__all__ = ["PutEach"]


class PutEach:
    def __init__(
        self, client: httpx.Client, endpoint: str, *, policy: RetryPolicy, pacer: Pacer, stop=None
    ):
        self.pacer = pacer
        self._sender = Sender(client, endpoint, method="PUT", policy=policy, pacer=pacer, stop=stop)

    def send(self, bodies: list[bytes]) -> BatchResult:
        """One request per body, in order; 201 is created, another 2xx updated, a refusal
        fails that body only with the API's message."""
        result = BatchResult(outcomes=[])
        for body in bodies:
            result.outcomes.append(self._one(body, result))
        return result

    def _one(self, body: bytes, result: BatchResult) -> ItemOutcome:
        try:
            response = self._sender.post_with_retries(body, result)
        except TransportError as exc:
            result.errors.append(str(exc))
            return ItemOutcome("failed", str(exc))
        result.http_status = response.status_code
        if response.status_code == 201:
            return ItemOutcome("created")
        if response.is_success:
            return ItemOutcome("updated")
        return ItemOutcome("failed", describe_refusal(response))
