"""ERP dates to ISO 8601 UTC text (``2024-05-30T18:05:00Z``, CONTRACT §5.11), vectorized.

Text is parsed with ``pyarrow.compute.strptime`` in the configured format, then read as wall
time in the configured zone (``assume_timezone``: DST gaps and repeats resolve to the earlier
instant); server TIMESTAMP columns skip the parse. Without a format only ISO 8601 is accepted:
``03/04/2024`` may be March or April, and guessing would move orders by a month, so day/month
text without a format is a configuration error naming the column.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.transform.convert import present

__all__ = ["AmbiguousDates", "to_utc_text"]

_ISO = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_ISO_ZONED = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"
_DAY_MONTH = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}( .*)?$"
_UTC_TEXT = "%Y-%m-%dT%H:%M:%SZ"
_TIME_PARTS = ["", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p"]


class AmbiguousDates(ValueError):
    """Day/month text without a configured format; ``example`` is one such value."""

    def __init__(self, example: str, both: bool):
        self.example, self.both = example, both
        how = "parses as both MM/DD and DD/MM" if both else "is a day/month date"
        super().__init__(f"{example!r} {how}; set the column's format, e.g. '%m/%d/%Y %H:%M'")


def to_utc_text(values: pa.Array, fmt: str | None, timezone: str) -> tuple[pa.Array, np.ndarray]:
    """ISO 8601 UTC text per value (null where missing or unparseable) and the mask of present
    values that did not parse. Raises ``AmbiguousDates`` for day/month text without ``fmt``."""
    if pa.types.is_date(values.type):
        values = values.cast(pa.timestamp("s"))
    if pa.types.is_timestamp(values.type):  # server DATETIME/TIMESTAMP columns: no parsing
        return _format(_utc(values, timezone)), np.zeros(len(values), dtype=bool)
    text = values if pa.types.is_string(values.type) else values.cast(pa.string())
    if fmt is None:
        return _iso(text, timezone)
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    bad = present(text) & ~present(parsed)
    return _format(_utc(parsed, timezone)), bad


def _iso(text: pa.Array, timezone: str) -> tuple[pa.Array, np.ndarray]:
    naive_ok = pc.fill_null(pc.match_substring_regex(text, _ISO), False)
    zoned_ok = pc.fill_null(pc.match_substring_regex(text, _ISO_ZONED), False)
    odd = present(text) & ~(
        naive_ok.to_numpy(zero_copy_only=False) | zoned_ok.to_numpy(zero_copy_only=False)
    )
    if odd.any():
        _refuse_day_month(text.filter(pa.array(odd)))
    null = pa.scalar(None, pa.string())
    naive = pc.cast(pc.if_else(naive_ok, text, null), pa.timestamp("us"))
    zoned = pc.cast(
        pc.if_else(zoned_ok, pc.replace_substring_regex(text, "Z$", "+00:00"), null),
        pa.timestamp("us", "UTC"),
    )
    merged = pc.if_else(naive_ok, _utc(naive, timezone), zoned)
    return _format(merged), odd


def _refuse_day_month(odd: pa.Array) -> None:
    day_month = pc.fill_null(pc.match_substring_regex(odd, _DAY_MONTH), False)
    if not pc.any(day_month).as_py():
        return
    candidates = odd.filter(day_month)
    for value in candidates.to_pylist()[:1000]:
        us, eu = _parses(value, "%m/%d/%Y"), _parses(value, "%d/%m/%Y")
        if us and eu:
            raise AmbiguousDates(value, both=True)
    raise AmbiguousDates(candidates[0].as_py(), both=False)


def _parses(value: str, date_part: str) -> bool:
    sep = next((c for c in "/.-" if c in value[:6]), "/")
    part = date_part.replace("/", sep)
    variants = [part + t for t in _TIME_PARTS] + [part.replace("%Y", "%y") + t for t in _TIME_PARTS]
    texts = pa.array([value] * len(variants))
    return any(
        pc.strptime(texts[i : i + 1], format=v, unit="s", error_is_null=True)[0].is_valid
        for i, v in enumerate(variants)
    )


def _utc(values: pa.Array, timezone: str) -> pa.Array:
    if values.type.tz is None:
        values = pc.assume_timezone(
            values, timezone=timezone, ambiguous="earliest", nonexistent="earliest"
        )
    return values.cast(pa.timestamp(values.type.unit, "UTC"))


def _format(values: pa.Array) -> pa.Array:
    seconds = values.cast(pa.timestamp("s", "UTC"), safe=False)  # sub-second parts dropped
    return pc.strftime(seconds, format=_UTC_TEXT)
