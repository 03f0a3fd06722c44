"""Secrets out of every message a user or a system outside sees: URL passwords, and the
values of environment variables named like secrets. One function, for errors, crash
reports, alerts and metrics alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["MASK", "scrub"]

MASK = "***"
_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
# Shorter values are not plausible secrets, and masking them would shred the text (a "1").
_MIN_SECRET_LEN = 4
# user:password@ inside any URL-looking text. Greedy up to the last @ of the word, so a
# password holding an unencoded @ is masked whole; masking too much is the safe side.
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)\S*@", re.IGNORECASE)


def scrub(text: str, environ: Mapping[str, str]) -> str:
    """``text`` with URL passwords and the values of ``*_KEY``/``*_TOKEN``/``*_SECRET``/
    ``*_PASSWORD`` variables in ``environ`` replaced by ``***``."""
    # Longest first, so a secret that contains another one is masked whole.
    for secret in sorted(_secret_values(environ), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_CREDENTIALS.sub(rf"\1{MASK}@", text)


def _secret_values(environ: Mapping[str, str]) -> set[str]:
    values: set[str] = set()
    for name, value in environ.items():
        if not name.upper().endswith(_SECRET_SUFFIXES) or len(value) < _MIN_SECRET_LEN:
            continue
        # A secret quoted into a URL appears percent-encoded.
        values.update({value, quote(value, safe="")})
    return values
