"""Do two result sets hold the same answer? Row count and values, rounded sensibly.

Engines differ in ways that do not change the answer: numeric vs double (avg, division), numeric vs bigint
(extract), char(n) padding, the order of rows that tie on the ORDER BY key. Values are normalised for those and
numbers compared with a relative tolerance; anything else is a real difference.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

REL_TOL = 1e-6  # doubles vs exact numerics: avg() and divisions agree to ~15 digits, never fewer than 6
ABS_TOL = 1e-9


def _value(v):
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, Decimal)):
        return float(v)
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, str):
        return v.rstrip()  # char(n) comes back blank-padded from Postgres, not necessarily elsewhere
    return v


def normalise(rows) -> list[tuple]:
    return [tuple(_value(v) for v in row) for row in rows]


def _same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def _same_row(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))


def _sort_key(row: tuple):
    # Round numbers for the key so that 1.0000001 and 0.9999999 land next to each other.
    return tuple((0, round(v, 2)) if isinstance(v, float) else (1, str(v)) for v in row)


def difference(actual, expected) -> str | None:
    """None when they match, else a one-line description of the first difference."""
    got, want = normalise(actual), normalise(expected)
    if len(got) != len(want):
        return f"{len(got)} rows, expected {len(want)}"
    if all(_same_row(a, b) for a, b in zip(got, want, strict=True)):
        return None
    # Ties on the ORDER BY key may come back in either order: compare as sorted multisets.
    got_sorted, want_sorted = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    for index, (a, b) in enumerate(zip(got_sorted, want_sorted, strict=True)):
        if not _same_row(a, b):
            return f"row {index} (sorted): got {a!r}, expected {b!r}"
    return None
