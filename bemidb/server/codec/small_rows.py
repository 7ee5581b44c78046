"""Results of a few rows: DataRows built per value in plain Python, the same bytes as the vectorised path.

A primary-key lookup's one row would pay ~40 numpy/Arrow kernel calls per column in the vectorised path. And
between two DuckDB queries every call into Arrow runs cold (its code is out of the CPU caches): a cast that
takes 2 us in a loop takes ~50 us there. So each column's formatter is chosen once per result shape
(`text_plan`, at the encoder's first small batch), and a batch costs one `to_pylist` per column and Python
string work: no cast, no type dispatch per batch. A column (or a batch's values) no formatter covers -
arrays, intervals, dates beyond year 9999, binary format - takes the vectorised path for that column, which
gives the same bytes (tests/server/test_small_rows.py encodes every supported type both ways).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from bemidb.server.catalog.pg_types import PgType
from bemidb.server.codec.datetime_text import (
    US_MAX,
    US_MIN,
    arrow_timezone,
    timestamp_value_text,
    zoneinfo_of,
)
from bemidb.server.codec.text_format import float_style

# A column's values -> their Postgres text (str or bytes, None = NULL); None: take the vectorised path.
Formatter = Callable[[pa.Array], list | None]

_LENGTH = struct.Struct(">i").pack
_NULL = b"\xff\xff\xff\xff"


def text_plan(typ: pa.DataType, t: PgType, timezone: str) -> Formatter | None:
    """The per-value text formatter of a column of Arrow type `typ` described as `t`, or None."""
    if t.is_array:
        return None
    if isinstance(typ, pa.BaseExtensionType):
        return _EXTENSIONS.get(typ.extension_name)
    if pa.types.is_integer(typ):
        return _ints
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return _strings
    if pa.types.is_boolean(typ):
        return _bools
    if pa.types.is_decimal(typ):
        return _decimals
    if pa.types.is_floating(typ) and typ.bit_width in (32, 64):
        return _floats32 if typ.bit_width == 32 else _floats64
    if pa.types.is_date32(typ):
        return _dates
    if pa.types.is_timestamp(typ):
        return _timestamps(typ, zoneinfo_of(arrow_timezone(timezone)) if typ.tz is not None else None)
    return None


def data_rows(columns: list[list], n: int) -> bytes:
    """n DataRow messages from per-column lists of str/bytes/None."""
    count = struct.pack(">h", len(columns))
    out = []
    for i in range(n):
        parts = [count]
        for column in columns:
            v = column[i]
            if v is None:
                parts.append(_NULL)
            else:
                v = v.encode() if isinstance(v, str) else v
                parts.append(_LENGTH(len(v)))
                parts.append(v)
        body = b"".join(parts)
        out.append(b"D" + _LENGTH(len(body) + 4) + body)
    return b"".join(out)


# --- the formatters: each gives exactly the text the vectorised path (text_format.to_text) gives --------

def _ints(arr: pa.Array) -> list:
    return [None if v is None else str(v) for v in arr.to_pylist()]


def _strings(arr: pa.Array) -> list:
    return arr.to_pylist()


def _bools(arr: pa.Array) -> list:
    return [None if v is None else ("t" if v else "f") for v in arr.to_pylist()]


def _decimals(arr: pa.Array) -> list:
    return [None if v is None else format(v, "f") for v in arr.to_pylist()]


def _float_text(value: float, single: bool) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    shortest = str(np.float32(value)) if single else repr(value)
    magnitude = abs(value)
    exponent = magnitude != 0 and (magnitude < (np.float32(1e-4) if single else 1e-4)
                                   or magnitude >= (np.float32(1e6) if single else 1e15))
    return float_style(shortest, bool(exponent))


def _floats32(arr: pa.Array) -> list:
    return [None if v is None else _float_text(v, True) for v in arr.to_pylist()]


def _floats64(arr: pa.Array) -> list:
    return [None if v is None else _float_text(v, False) for v in arr.to_pylist()]


def _dates(arr: pa.Array) -> list | None:
    """Python's dates span exactly 0001-01-01 .. 9999-12-31, where ISO text is Postgres's text; Arrow refuses
    to convert the others (BC, year > 9999), which the vectorised path prints."""
    try:
        days = arr.to_pylist()
    except (OverflowError, ValueError):
        return None
    return [None if d is None else d.isoformat() for d in days]


def _timestamps(typ: pa.TimestampType, zone) -> Formatter:
    def text(arr: pa.Array) -> list | None:
        # Microseconds as int64: a view when stored so (DuckDB's timestamps are), else Arrow's cast.
        micros = arr.view(pa.int64()) if typ.unit == "us" else \
            arr.cast(pa.timestamp("us", tz=typ.tz), safe=False).cast(pa.int64())
        values = micros.to_pylist()
        if any(us is not None and not US_MIN <= us <= US_MAX for us in values):
            return None
        try:
            return [None if us is None else timestamp_value_text(us, zone) for us in values]
        except OverflowError:  # 0001-01-01 UTC is still year 0 (1 BC) west of Greenwich: the vectorised path
            return None
    return text


def _bool8(arr: pa.Array) -> list:
    return [None if v is None else ("t" if v else "f") for v in arr.storage.to_pylist()]


def _json(arr: pa.Array) -> list:
    return arr.storage.to_pylist()


def _uuids(arr: pa.Array) -> list:
    return [None if v is None else str(uuid.UUID(bytes=v)) for v in arr.storage.to_pylist()]


_EXTENSIONS: dict[str, Formatter] = {"arrow.bool8": _bool8, "arrow.json": _json, "arrow.uuid": _uuids}

__all__ = ["Formatter", "data_rows", "text_plan"]
