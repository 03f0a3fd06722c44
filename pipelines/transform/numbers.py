"""Numbers as people write them (``1.234,50``, ``€ 1.234,50``, ``100,00-``, ``12,5 %``) turned
into the plain text the converters read (``1234.50``, ``-100.00``, ``0.125``), column-wise.

A job's ``number:`` (:class:`~pipelines.jobs.specs.NumberStyle`) declares the decimal mark,
the thousands separator, the currency whose sign or code may stand before or after a number,
and whether a trailing ``%`` divides by 100. A value either fits that style whole or is
rejected naming the format expected: ``1.23`` when ``.`` groups thousands is not guessed to be
1.23 or 123. Only text is rewritten, never through float, so money stays exact; typed columns
(Parquet, SQL, Excel numbers) pass untouched, and so does text when the style is the plain
default, at no cost.

Cost: a column is checked by one regex scan over its values as the lines of one text (a
regex per value costs four times as much), and a value written the usual way (digits,
separators, the mark, a leading minus) is rewritten by deleting and swapping bytes; only
columns holding spaces, signs, currency marks or percentages take more steps.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.jobs.specs import NumberFormat, NumberStyle
from pipelines.quality.row_checks import Failure
from pipelines.transform import number_patterns as patterns
from pipelines.transform.convert import present
from pipelines.transform.text_buffers import as_lines, bytes_used, empty_values, rewrite_bytes

__all__ = [
    "is_plain",
    "is_text",
    "misfit_reasons",
    "plain_numbers",
    "read_number_columns",
    "read_numbers",
]

_NULL = pa.scalar(None, pa.string())
_DOT = (ord(","), ord("."))
_PERCENTAGE = "is a percentage; add percent: true to the job's number: to read it"


def is_plain(style: NumberStyle) -> bool:
    """The default style, what the API writes (``1234.5``): nothing to rewrite."""
    return style.decimal == "." and not style.thousands and not style.currency and not style.percent


def is_text(kind: pa.DataType) -> bool:
    """Whether a source column of this type holds numbers as text (CSV, text cells)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def read_numbers(
    values: pa.Array, column: str, style: NumberStyle
) -> tuple[pa.Array, list[Failure]]:
    """A source column's numbers as plain text, with a ``not_a_number`` failure per reason
    for the values that do not fit ``style`` (those become null). Typed columns pass as
    they are."""
    if not is_text(values.type) or is_plain(style):
        return values, []
    values = _as_string(values)
    plain, bad = plain_numbers(values, style)
    if not bad.any():
        return plain, []
    reasons = misfit_reasons(values, bad, style)
    return plain, [Failure(mask, column, values, "not_a_number", why) for mask, why in reasons]


def read_number_columns(
    columns: dict[str, pa.Array], number: NumberFormat
) -> tuple[dict[str, pa.Array], list[Failure]]:
    """:func:`read_numbers` for several columns of one chunk, each in its style from
    ``number``. Columns of one style are read as one: the regex is compiled and its
    automaton built once a chunk, which on chunks of a few thousand rows costs more than
    the scan."""
    read, failures = dict(columns), []
    together: dict[tuple, list[str]] = {}
    for name, values in columns.items():
        style = number.for_column(name)
        if is_text(values.type) and not is_plain(style):
            key = (style.decimal, style.thousands, style.currency, style.percent)
            together.setdefault(key, []).append(name)
    for names in together.values():
        parts = [_as_string(columns[name]) for name in names]
        whole = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
        plain, found = read_numbers(whole, names[0], number.for_column(names[0]))
        start = 0
        for name, part in zip(names, parts, strict=True):
            read[name] = plain.slice(start, len(part))
            for f in found:
                mask = f.mask[start : start + len(part)]
                if mask.any():
                    failures.append(Failure(mask, name, part, f.rule, f.message))
            start += len(part)
    return read, failures


def _as_string(values: pa.Array) -> pa.Array:
    """Large or dictionary-encoded text as ``pa.string()``."""
    return values if pa.types.is_string(values.type) else values.cast(pa.string())


def plain_numbers(column: pa.Array, style: NumberStyle) -> tuple[pa.Array, np.ndarray]:
    """(plain text such as ``-1234.50``, null where absent or not fitting; mask of present
    values that do not fit ``style``). The plain default returns ``column`` itself."""
    fit = np.zeros(len(column), dtype=bool)
    if is_plain(style) or not len(column):
        return column, fit
    column = _as_string(column)
    empty = empty_values(column)
    if empty is not None:  # missing, as a blank cell always is
        column = pc.if_else(pa.array(empty), _NULL, column)
    if _all_fit(column, patterns.strict(style)):
        return _unmarked(column, style), fit
    used = bytes_used(column)
    if _all_fit(column, patterns.written(style)):
        return _rewritten(column, style, used), fit
    fits = pc.match_substring_regex(column, f"^{patterns.written(style)}$")
    fits = pc.fill_null(fits, False)
    bad = present(column) & ~fits.to_numpy(zero_copy_only=False) & ~_blank(column)
    return _rewritten(pc.if_else(fits, column, _NULL), style, used), bad


def _all_fit(column: pa.Array, value: str) -> bool:
    """Whether every value matches ``value``, in one scan of the column as lines of one
    text (a null is an empty line)."""
    text = as_lines(column)
    lines = rf"\A(?:(?:{value})?(?:\n|\z))*\z"
    return text is not None and pc.match_substring_regex(text, lines)[0].as_py()


def _blank(column: pa.Array) -> np.ndarray:
    """Missing, as a blank cell always is."""
    blank = pc.match_substring_regex(column, r"^[\s\x{00A0}\x{202F}]*$")
    return pc.fill_null(blank, False).to_numpy(zero_copy_only=False)


def _unmarked(text: pa.Array, style: NumberStyle, extra: bytes = b"") -> pa.Array:
    """Separators (and the bytes in ``extra``) out, the decimal mark a dot."""
    separator, non_ascii = patterns.separators(style)
    swap = _DOT if style.decimal == "," else None
    return rewrite_bytes(text, separator + extra, swap, drop_non_ascii=non_ascii)


def _rewritten(text: pa.Array, style: NumberStyle, used: np.ndarray) -> pa.Array:
    """Fitting values (the rest are null) to plain text: marks and spaces out, then
    separators and a ``+``, the decimal mark a dot, a trailing minus in front and a
    percentage shifted two places. ``used`` says which bytes occur, so steps that would
    change nothing are skipped."""
    if style.currency and used[patterns.mark_bytes(style.currency)].any():
        text = pc.replace_substring_regex(text, patterns.marks(style.currency), "")
    if used[patterns.SPACE_BYTES].any():
        text = pc.replace_substring_regex(text, patterns.ANY_SPACES, "")
    text = _unmarked(text, style, b"+" if used[ord("+")] else b"")
    hundredths = None
    if style.percent and used[ord("%")]:
        hundredths = pc.fill_null(pc.ends_with(text, "%"), False)
        text = pc.replace_substring(text, "%", "")
    if used[ord("-")]:
        text = _minus_in_front(text)
    if hundredths is not None and pc.any(hundredths).as_py():
        text = pc.if_else(hundredths, _divided_by_100(text), text)
    return text


def _minus_in_front(text: pa.Array) -> pa.Array:
    trailing = pc.fill_null(pc.ends_with(text, "-"), False)
    if not pc.any(trailing).as_py():
        return text
    moved = pc.binary_join_element_wise("-", pc.utf8_slice_codeunits(text, 0, -1), "")
    return pc.if_else(trailing, moved, text)


def _divided_by_100(text: pa.Array) -> pa.Array:
    r"""Shift the decimal point two places left in the text (``-12.5`` → ``-0.125``): three
    zeros in front make room, then the leading zeros but one go. (RE2 rewrites take ``\1``
    to ``\9``, one digit each: ``\1000`` is group 1, then ``000``.)"""
    padded = pc.replace_substring_regex(text, r"^(-?)(\d*)\.?(\d*)$", r"\1000\2.\3")
    return pc.replace_substring_regex(padded, r"^(-?)0*(\d+)(\d\d)\.(\d*)$", r"\1\2.\3\4")


def misfit_reasons(
    column: pa.Array, bad: np.ndarray, style: NumberStyle
) -> list[tuple[np.ndarray, str]]:
    """Why each flagged value does not fit, as disjoint (mask, message) pairs: another
    currency's mark (named), a currency or percentage the style does not declare, or the
    format expected. Only the flagged values are looked at."""
    at = np.flatnonzero(bad)
    values = column.take(pa.array(at))
    found = pc.extract_regex(values, patterns.ANY_CURRENCY).field("mark")
    reasons: list[tuple[np.ndarray, str]] = []
    left = np.ones(len(at), dtype=bool)
    for mark in pc.unique(found.drop_null()).to_pylist():
        why = _currency_reason(mark, style)
        if why is not None:
            hit = left & pc.fill_null(pc.equal(found, mark), False).to_numpy(zero_copy_only=False)
            reasons.append((hit, why))
            left &= ~hit
    if not style.percent:
        percent = pc.fill_null(pc.match_substring(values, "%"), False)
        hit = left & percent.to_numpy(zero_copy_only=False)
        reasons.append((hit, _PERCENTAGE))
        left &= ~hit
    reasons.append((left, f"is not a number written as {patterns.example(style)}"))
    return [(_spread(hit, at, len(column)), why) for hit, why in reasons if hit.any()]


def _currency_reason(mark: str, style: NumberStyle) -> str | None:
    owners = patterns.currency_of(mark)
    if not owners or (style.currency and mark in patterns.tokens(style.currency)):
        return None  # a word that is no currency, or the column's own: the format is wrong
    if style.currency:
        return f"is in another currency ({mark}), not {style.currency}"
    return (
        f"carries a currency ({mark}); add currency: {owners[0]} to the job's number: to strip it"
    )


def _spread(hit: np.ndarray, at: np.ndarray, length: int) -> np.ndarray:
    mask = np.zeros(length, dtype=bool)
    mask[at[hit]] = True
    return mask
