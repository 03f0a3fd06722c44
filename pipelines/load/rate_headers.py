"""What a server's rate-limit headers announce, read into one :class:`Quota`.

Three header families are read, the first present winning:

- ``RateLimit`` (one field): the structured form of draft-ietf-httpapi-ratelimit-headers -08
  onwards, ``"default";r=3;t=1`` (remaining, seconds to reset; the member with the least
  remaining wins when there are several), with ``RateLimit-Policy: "default";q=20;w=1`` (quota
  per window, matched by name); or the -07 dictionary ``limit=20, remaining=3, reset=1``.
- ``RateLimit-Limit``, ``-Remaining``, ``-Reset`` (drafts -00 to -06), the window from
  ``RateLimit-Policy: 20;w=1`` or from a ``;w=`` after the limit.
- ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` (GitHub, Twitter and most others), the reset
  as delta seconds or as a Unix time (in seconds, or milliseconds), told apart by size;
  ``X-RateLimit-Reset-After`` (delta seconds) wins over it when both are sent.

``retry_after_s`` reads ``Retry-After`` as delta seconds or as an HTTP date.

Values that cannot be read are left out (a server's odd header never fails a request).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = ["Quota", "read_quota", "refusal_quota", "retry_after_s"]

_EPOCH_S = 1e9  # a reset this large is a Unix time (2001 onwards), not a delta
_EPOCH_MS = 1e12  # ... and this large, one in milliseconds
_PRECISE_S = 2.0  # a reset in whole seconds below this says only "within a second or two"
_MEMBERS = re.compile(r'(?:[^,"]|"[^"]*")+')  # list members: commas outside quotes
_PREFIXES = ("ratelimit", "x-ratelimit")
_PREFIXES_B = (b"ratelimit", b"x-ratelimit")


@dataclass(frozen=True, slots=True)
class Quota:
    """One response's announcement. ``reset_s``: seconds from its arrival until more requests
    fit; ``window_s``: the policy's window, when one is announced; ``coarse``: the reset was
    given in whole seconds and is too short for that to say when exactly."""

    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None
    window_s: float | None = None
    coarse: bool = False


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        return None
    return value if value == value and value >= 0 else None  # NaN and negatives are noise


def _members(value: str) -> list[tuple[str, dict[str, str]]]:
    """A structured-field list: each member's item (a name or a number) and its parameters;
    a dictionary member ``key=value`` comes back as ``("", {key: value})``."""
    members = []
    for raw in _MEMBERS.findall(value):
        first, *params = (p.strip() for p in raw.split(";"))
        pairs = dict(p.split("=", 1) for p in params if "=" in p)
        if "=" in first and not first.startswith('"'):
            key, val = first.split("=", 1)
            members.append(("", {key.strip(): val, **pairs}))
        elif first:
            members.append((first.strip('"'), pairs))
    return members


def _structured(fields: Mapping[str, str], now: float) -> Quota:
    """``RateLimit`` (draft -07 dictionary or -08+ list) with ``RateLimit-Policy``."""
    members = _members(fields["ratelimit"])
    named = [(name, p) for name, p in members if name]
    if not named:  # -07: limit=, remaining=, reset=
        merged = {k: v for _, p in members for k, v in p.items()}
        window = _policy_window(fields.get("ratelimit-policy"), _number(merged.get("limit")))
        reset = merged.get("reset")
        return _quota(merged.get("limit"), merged.get("remaining"), reset, window, now)
    name, params = min(named, key=_least_remaining)
    policies = dict(_members(fields.get("ratelimit-policy", "")))
    policy = policies.get(name, {})
    window = _number(policy.get("w"))
    return _quota(policy.get("q"), params.get("r"), params.get("t"), window, now)


def _least_remaining(member: tuple[str, dict[str, str]]) -> float:
    remaining = _number(member[1].get("r"))
    return float("inf") if remaining is None else remaining


def _policy_window(value: str | None, limit: float | None) -> float | None:
    """The window of the policy whose quota is ``limit`` (else of the first policy)."""
    policies = _members(value or "")
    for quota, params in policies:
        if limit is not None and _number(quota) == limit and "w" in params:
            return _number(params["w"])
    return _number(policies[0][1].get("w")) if policies else None


def _draft(fields: Mapping[str, str], prefix: str, now: float) -> Quota:
    """``RateLimit-*`` or ``X-RateLimit-*``: a limit (perhaps ``20, 20;w=1``), remaining, reset."""
    limit = fields.get(prefix + "limit")
    window = None
    if limit is not None and ("," in limit or ";" in limit):  # "10, 10;w=1" (drafts -00 to -02)
        members = _members(limit)
        limit = members[0][0] if members else None
        window = _policy_window(fields[prefix + "limit"], _number(limit))
    if window is None and prefix + "policy" in fields:
        window = _policy_window(fields[prefix + "policy"], _number(limit))
    reset = fields.get(prefix + "reset-after") or fields.get(prefix + "reset")
    return _quota(limit, fields.get(prefix + "remaining"), reset, window, now)


def _quota(
    limit: str | None, remaining: str | None, reset: str | None, window: float | None, now: float
) -> Quota:
    seconds = _number(reset)
    whole = seconds is not None and seconds == int(seconds)
    if seconds is not None and seconds >= _EPOCH_S:
        seconds = max(0.0, seconds / (1000 if seconds >= _EPOCH_MS else 1) - now)
    coarse = whole and seconds is not None and seconds < _PRECISE_S
    return Quota(_number(limit), _number(remaining), seconds, window or None, coarse)


def _fields(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """The rate-limit fields, by lower-case name, in one pass over the headers."""
    raw = getattr(headers, "raw", None)  # httpx.Headers: bytes, decoded only when wanted
    if raw is not None:
        return {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in raw
            if name[:1] in b"rRxX" and name.lower().startswith(_PREFIXES_B)
        }
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {n.lower(): v for n, v in items if n.lower().startswith(_PREFIXES)}


def read_quota(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], now: float | None = None
) -> Quota | None:
    """The quota announced by ``headers`` (an ``httpx.Headers``, a mapping or name/value
    pairs), or None when they announce none. ``now`` (Unix time; default the clock) turns a
    reset given as a Unix time into seconds."""
    fields = _fields(headers)
    if not fields:
        return None
    now = time.time() if now is None else now
    if "ratelimit" in fields:
        return _structured(fields, now)
    if any(name.startswith("ratelimit-") for name in fields):
        return _draft(fields, "ratelimit-", now)
    return _draft(fields, "x-ratelimit-", now)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds from ``now`` (Unix time; default the clock): delta seconds
    or an HTTP date (RFC 9110 §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" and obsolete forms: the RFC says they are UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def refusal_quota(refusal: BaseException) -> Quota | None:
    """The quota announced with a refused request, when the HTTP layer kept its headers
    (a ``headers`` attribute on the error); None otherwise."""
    headers = getattr(refusal, "headers", None)
    return read_quota(headers) if headers else None
