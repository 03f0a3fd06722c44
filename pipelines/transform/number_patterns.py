"""The regular expressions (RE2 syntax, as Arrow runs them) that say what a number written
in a :class:`~pipelines.jobs.specs.NumberStyle` looks like, the currency marks a style may
carry, and the example that names a style in messages (``1.234,56``)."""

from __future__ import annotations

import numpy as np

from pipelines.contract import ISO_4217
from pipelines.jobs.specs import NumberStyle

__all__ = [
    "ANY_CURRENCY",
    "ANY_SPACES",
    "CURRENCY_SIGNS",
    "SPACE_BYTES",
    "currency_of",
    "example",
    "marks",
    "mark_bytes",
    "separators",
    "strict",
    "tokens",
    "written",
]

# Signs written for a currency besides its ISO code. A sign several currencies share
# (``$``, ``kr``) is accepted for each of them.
CURRENCY_SIGNS: dict[str, tuple[str, ...]] = {
    "EUR": ("€",),
    "USD": ("US$", "$"),
    "CAD": ("CA$", "C$", "$"),
    "AUD": ("AU$", "A$", "$"),
    "GBP": ("£",),
    "CHF": ("SFr.", "Fr."),
    "JPY": ("¥", "円"),
    "SEK": ("kr",),
    "NOK": ("kr",),
    "DKK": ("kr.", "kr"),
    "PLN": ("zł",),
    "CZK": ("Kč",),
}
# Spaces people put in and around numbers: the ASCII ones but the line break (a column is
# checked as the lines of one text), no-break (U+00A0) and narrow no-break (U+202F, French
# thousands).
_SPACES = r"[\t\f\v\r \x{00A0}\x{202F}]*"
_SPACE_SEPARATORS = (" ", "\u00a0", "\u202f")
# A declared space separator takes any of the three; ``'`` also the typographic U+2019.
_THOUSANDS = {
    " ": r"[ \x{00A0}\x{202F}]",
    "\u00a0": r"[ \x{00A0}\x{202F}]",
    "\u202f": r"[ \x{00A0}\x{202F}]",
    "'": r"['\x{2019}]",
    ".": r"\.",
    ",": ",",
}
# Every space a fitting value may hold, to be taken out; and the bytes that tell one may be
# there (non-ASCII ones: once currency signs are gone, only U+00A0, U+202F, U+2019 remain).
ANY_SPACES = r"[\s\x{00A0}\x{202F}\x{2019}]+"
SPACE_BYTES = np.zeros(256, dtype=bool)
SPACE_BYTES[[0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]] = True
SPACE_BYTES[0x80:] = True


def _number(style: NumberStyle) -> str:
    """Digits, grouped by threes (1–3 leading) or not at all, and the decimal mark."""
    digits = r"\d+"
    if style.thousands:
        digits = rf"(?:\d{{1,3}}(?:{_THOUSANDS[style.thousands]}\d{{3}})+|\d+)"
    mark = _escaped(style.decimal)
    return rf"(?:{digits}(?:{mark}\d*)?|{mark}\d+)"


def strict(style: NumberStyle) -> str:
    """A number with at most a minus in front: what most exports write, and what needs
    no more than separators out and the mark a dot."""
    return rf"-?{_number(style)}"


def written(style: NumberStyle) -> str:
    """Anything the style accepts: spaces around, a sign in front or a minus behind (SAP's
    ``100,00-``), the currency's mark before or after, a trailing ``%``."""
    s, number = _SPACES, _number(style)
    percent = rf"(?:{s}%)?" if style.percent else ""
    signed = rf"(?:[+-]{s}{number}{percent}|{number}(?:{s}-)?{percent})"
    body = signed
    if style.currency:
        cur = marks(style.currency)
        body = rf"(?:{cur}{s}{signed}|[+-]{s}{cur}{s}{number}{percent}|{signed}(?:{s}{cur})?)"
    return rf"{s}{body}{s}"


def tokens(currency: str) -> tuple[str, ...]:
    """The currency's code and signs."""
    return (currency, *CURRENCY_SIGNS.get(currency, ()))


def marks(currency: str) -> str:
    """Any of the currency's marks, the longest first (``US$`` before ``$``)."""
    ordered = sorted(set(tokens(currency)), key=len, reverse=True)
    return "(?:" + "|".join(_escaped(t) for t in ordered) + ")"


def mark_bytes(currency: str) -> list[int]:
    """Bytes of the currency's marks that a number never holds (a letter, ``€``'s last
    byte …): where none occurs, no mark needs taking out."""
    shared = set(b"0123456789.,'+-% \t") | set(" \u00a0\u202f\u2019".encode())
    return sorted({b for t in tokens(currency) for b in t.encode()} - shared)


def separators(style: NumberStyle) -> tuple[bytes, bool]:
    """What to take out of a number that fits :func:`strict`: the separator's byte, and
    whether its non-ASCII characters (only separators: a no-break space, ``’``) go too."""
    if style.thousands in _SPACE_SEPARATORS:
        return b" ", True
    return style.thousands.encode(), style.thousands == "'"


def _escaped(token: str) -> str:
    """RE2 syntax: ``re.escape`` would also escape non-ASCII letters, which RE2 refuses."""
    return "".join("\\" + c if c.isascii() and not c.isalnum() else c for c in token)


def example(style: NumberStyle) -> str:
    """How the style writes 1234.56, for messages: ``1.234,56``, ``1'234.56, optionally
    with SFr., Fr. or CHF before or after``."""
    thousands = " " if style.thousands in _SPACE_SEPARATORS else style.thousands
    text = f"1{thousands}234{style.decimal}56"
    if style.currency:
        *signs, last = (*CURRENCY_SIGNS.get(style.currency, ()), style.currency)
        either = f"{', '.join(signs)} or {last}" if signs else last
        text += f", optionally with {either} before or after"
    if style.percent:
        text += f", or as a percentage: 12{style.decimal}5 %"
    return text


_SIGN_OWNERS: dict[str, list[str]] = {}
for _code, _signs in CURRENCY_SIGNS.items():
    for _sign in _signs:
        _SIGN_OWNERS.setdefault(_sign, []).append(_code)
# The first currency mark in a text: a known sign, or three capitals (an ISO code or not).
ANY_CURRENCY = (
    "(?P<mark>"
    + "|".join(_escaped(s) for s in sorted(_SIGN_OWNERS, key=len, reverse=True))
    + r"|[A-Z]{3})"
)


def currency_of(mark: str) -> list[str]:
    """The ISO codes a mark found by :data:`ANY_CURRENCY` stands for (none: not a currency)."""
    return [mark] if mark in ISO_4217 else _SIGN_OWNERS.get(mark, [])
