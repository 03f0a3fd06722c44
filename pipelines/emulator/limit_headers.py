"""The rate-limit headers a limiter's verdict is announced with, in the families APIs use.

- ``x_ratelimit``: ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (the de-facto headers of
  GitHub, Twitter and many others). The reset is in seconds with milliseconds: a delta, or with
  ``rate_limit_reset=epoch`` the Unix time of the reset. No window is announced.
- ``ietf_draft``: ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset`` and
  ``RateLimit-Policy: 20;w=1`` (draft-ietf-httpapi-ratelimit-headers-03 to -06): whole delta
  seconds, rounded up, as the draft requires.
- ``ietf_structured``: ``RateLimit: "default";r=3;t=1`` and
  ``RateLimit-Policy: "default";q=20;w=1`` (the structured fields of draft -08 onwards): whole
  seconds, rounded up.

``Retry-After`` on a refusal is added by the caller, in whole seconds (at least 1).
"""

from __future__ import annotations

import math
from typing import Literal

from .limiters import Verdict

__all__ = ["HeaderStyle", "ResetForm", "limit_headers"]

HeaderStyle = Literal["none", "x_ratelimit", "ietf_draft", "ietf_structured"]
ResetForm = Literal["delta", "epoch"]


def _number(value: float) -> str:
    """1 -> "1", 0.5 -> "0.5": windows and limits as a reader would write them."""
    return f"{value:g}"


def limit_headers(
    style: HeaderStyle, verdict: Verdict, window_s: float, reset_form: ResetForm, wall_now: float
) -> dict[str, str]:
    """The headers of ``style`` for ``verdict`` (none for ``"none"``)."""
    if style == "none":
        return {}
    limit, remaining = str(verdict.limit), str(max(0, verdict.remaining))
    if style == "x_ratelimit":
        reset = verdict.reset_s + (wall_now if reset_form == "epoch" else 0.0)
        return {
            "X-RateLimit-Limit": limit,
            "X-RateLimit-Remaining": remaining,
            "X-RateLimit-Reset": f"{reset:.3f}",
        }
    seconds = str(math.ceil(verdict.reset_s))
    window = _number(window_s)
    if style == "ietf_draft":
        return {
            "RateLimit-Limit": limit,
            "RateLimit-Remaining": remaining,
            "RateLimit-Reset": seconds,
            "RateLimit-Policy": f"{limit};w={window}",
        }
    return {
        "RateLimit": f'"default";r={remaining};t={seconds}',
        "RateLimit-Policy": f'"default";q={limit};w={window}',
    }
