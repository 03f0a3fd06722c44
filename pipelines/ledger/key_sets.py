"""Membership of 64-bit key hashes in a sorted array, without sorting the keys asked about.

``np.isin`` sorts both sides on every call: against the millions of orders a migration may
hold, once per chunk, that is most of a chunk's time. A binary search per key is not.
"""

from __future__ import annotations

import numpy as np

__all__ = ["in_sorted"]


def in_sorted(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """True where ``keys`` are in ``sorted_keys`` (ascending)."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys
