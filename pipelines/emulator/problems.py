"""RFC 9110 problem-details responses, shaped as CONTRACT.md §5.1 shows them."""

from __future__ import annotations

import orjson

from .messages import Response

__all__ = ["ProblemError", "problem", "validation_problem"]

_RFC9110 = "https://tools.ietf.org/html/rfc9110#section-"
_KINDS: dict[int, tuple[str, str]] = {
    400: (_RFC9110 + "15.5.1", "One or more validation errors occurred"),
    401: (_RFC9110 + "15.5.2", "Unauthorized"),
    403: (_RFC9110 + "15.5.4", "Forbidden"),
    404: (_RFC9110 + "15.5.5", "Not Found"),
    405: (_RFC9110 + "15.5.6", "Method Not Allowed"),
    409: (_RFC9110 + "15.5.10", "Conflict"),
    413: (_RFC9110 + "15.5.14", "Payload Too Large"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: (_RFC9110 + "15.6.1", "An error occurred while processing your request"),
    502: (_RFC9110 + "15.6.3", "Bad Gateway"),
    503: (_RFC9110 + "15.6.4", "Service Unavailable"),
}


def problem(
    status: int,
    errors: dict[str, list[str]] | None = None,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem-details response with `Content-Type: application/problem+json`."""
    type_, title = _KINDS.get(status, (_RFC9110 + "15", "Error"))
    body: dict[str, object] = {"type": type_, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return Response(
        status,
        orjson.dumps(body),
        content_type="application/problem+json; charset=utf-8",
        headers=headers or {},
    )


def validation_problem(errors: dict[str, list[str]]) -> Response:
    return problem(400, errors=errors)


class ProblemError(Exception):
    """Raised by handlers and stores to answer with a problem-details response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response

    @classmethod
    def of(cls, status: int, errors: dict[str, list[str]] | None = None, detail: str | None = None):
        return cls(problem(status, errors=errors, detail=detail))
