"""Numbers of an unconstrained `numeric` column printed with their own scale, vectorised.

Postgres keeps each numeric value's scale ('1.5', '42', '123456789.123' in one column); the synced column is
a decimal of the largest scale found, so its values are printed with trailing fraction zeros trimmed (which
gives Postgres's text for every value typed without trailing zeros), in text and binary (the dscale field).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.catalog.pg_types import BY_NAME
from bemidb.server.codec.arrow_bytes import overwrite_at
from bemidb.server.codec.binary_format import to_binary


def trimmed_text(arr: pa.Array) -> pa.Array:
    """Decimal (or its text) -> text without trailing fraction zeros: 1.500000 -> 1.5, 42.000000 -> 42."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    text = arr if pa.types.is_string(arr.type) else arr.cast(pa.string())
    return pc.replace_substring_regex(pc.replace_substring_regex(text, r"(\.\d*?)0+$", r"\1"), r"\.$", "")


def trimmed_binary(arr: pa.Array) -> pa.Array:
    """numeric binary with each value's own dscale (the digits are the same: zero groups are never sent)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    numeric = BY_NAME["numeric"]
    if not pa.types.is_decimal128(arr.type) or arr.type.scale <= 0 or not len(arr):
        return to_binary(arr, numeric)
    scale = arr.type.scale
    words = np.frombuffer(arr.buffers()[1], np.int64, count=2 * len(arr), offset=16 * arr.offset)
    raw, high = words[0::2], words[1::2]
    if not (high == (raw >> 63)).all():  # past int64: per value (rare for a pre-scanned column)
        return to_binary(trimmed_text(arr), numeric)
    out = to_binary(arr, numeric)
    unscaled = np.abs(np.where(np.asarray(arr.is_valid()), raw, 0)) if arr.null_count else np.abs(raw)
    zeros = np.zeros(len(arr), np.int16)
    for k in range(1, scale + 1):
        zeros += (unscaled % (10 ** k) == 0).astype(np.int16)
    dscale = (scale - zeros).astype(">i2")
    return overwrite_at(out, 6, dscale.view(np.uint8).reshape(-1, 2))
