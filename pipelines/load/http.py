"""The one place where httpx's errors and the API's refusals become nymble-sync's errors.

Every request of a run, a plan or `doctor` goes through :func:`request`: a timeout or a
network error, a 429 or a 5xx becomes ``RetryableResponse`` (with the server's
``Retry-After``), a 401/403 ``AuthError`` saying what to check. Any other answer is returned
for the caller to read (CONTRACT §5.1–5.3).
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx

from pipelines.contract import RETRY_STATUSES
from pipelines.errors import AuthError, RetryableResponse

__all__ = ["request"]


def request(client: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    """One HTTP request through ``client``, its failures translated (see the module text)."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableResponse(f"timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise RetryableResponse(f"network error ({type(exc).__name__}: {exc})") from exc
    if response.status_code in (401, 403):
        raise AuthError(_auth_message(response), http_status=response.status_code)
    if response.status_code in RETRY_STATUSES:
        raise RetryableResponse(
            f"HTTP {response.status_code}",
            http_status=response.status_code,
            retry_after=_retry_after(response),
        )
    return response


def _auth_message(response: httpx.Response) -> str:
    what = "refused the API key" if response.status_code == 401 else "denied this key the right"
    return (
        f"{response.request.url.host} {what} (HTTP {response.status_code}). Check that "
        "NYMBLE_API_KEY or --api-key-file holds a key of this target's organization "
        "with the Admin role; nothing more was sent."
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
