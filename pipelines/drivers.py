"""Which database drivers nymble-sync installs, and what to tell a user whose URL needs one
that is missing: one table for the run ledger and for SQL sources alike."""

from __future__ import annotations

__all__ = ["extra_advice"]

# The extras of pyproject.toml that install a server's driver: (label, extra, driver, scheme).
_EXTRAS = {
    "postgresql": ("PostgreSQL", "postgres", "psycopg 3", "postgresql+psycopg"),
    "postgres": ("PostgreSQL", "postgres", "psycopg 3", "postgresql+psycopg"),
    "mysql": ("MySQL", "mysql", "PyMySQL", "mysql+pymysql"),
    "mariadb": ("MySQL", "mysql", "PyMySQL", "mariadb+pymysql"),
}


def extra_advice(backend: str) -> str | None:
    """What to install for ``backend`` (a URL's backend name), or None when no extra of
    nymble-sync provides its driver."""
    if backend not in _EXTRAS:
        return None
    label, extra, driver, scheme = _EXTRAS[backend]
    return (
        f"install the {label} extra: pip install 'nymble-sync[{extra}]' "
        f"(driver {driver}; use a URL starting {scheme}://)"
    )
