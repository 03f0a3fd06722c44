"""The request and response values that pass between the HTTP layer and the route handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .exact_json import dumps

__all__ = ["Request", "Response", "json_response", "no_content"]


@dataclass(frozen=True)
class Request:
    """One parsed request. `query` keys are lower-cased (query names are case-insensitive)."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, list[str]]
    body: bytes
    org: str | None = None

    def query_value(self, name: str) -> str | None:
        """The last value of a query parameter, by lower-case name."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, dumps(payload), headers=headers or {})


def no_content() -> Response:
    return Response(204, b"", content_type="")
