"""Arrow column -> Postgres binary format (what asyncpg and PgJDBC ask for), one whole column at a time.

`to_binary(array, pg_type)` returns a binary Arrow array with the same nulls. Fixed-width types are one
numpy byte-order conversion; text-like types are their UTF-8 bytes; numeric is vectorised for values
below 10**15 (the rest, and multi-dimensional arrays' headers, take a per-value Python path).
`BINARY_TYPES` lists the type names that can be sent in binary; the encoder falls back to text for others.
"""

from __future__ import annotations

import struct
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.catalog.pg_types import BY_NAME, PgType, element_of
from bemidb.server.codec import text_held_binary
from bemidb.server.codec.arrow_bytes import binary_parts, compact, fixed_width, np_values, validity_of
from bemidb.server.codec.datetime_text import DATE_INFINITY, TS_INFINITY
from bemidb.server.codec.text_format import bignum_text, normalize, to_text

_PG_EPOCH_DAYS = 10957  # 2000-01-01 - 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400_000_000
_INT = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "oid": ">u4", "regclass": ">u4", "regtype": ">u4",
        "regproc": ">u4", "regnamespace": ">u4", "regrole": ">u4", "xid": ">u4", "cid": ">u4", "xid8": ">u8"}
_AS_TEXT = {"text", "varchar", "bpchar", "name", "json", "xml", "unknown", "char"}
BINARY_TYPES = frozenset(_INT) | _AS_TEXT | text_held_binary.TYPES | {"bool", "float4", "float8", "numeric", "bytea", "date", "time",
                                             "timestamp", "timestamptz", "interval", "uuid", "jsonb", "timetz",
                                             "varbit"}


def supports_binary(t: PgType, arrow_type: pa.DataType | None = None) -> bool:
    """Can values of `arrow_type` described as `t` be sent in binary? Text-held values (a declared
    interval or inet stored as a string) only for types whose binary form is their text (or uuid/jsonb)."""
    name = element_of(t).name
    if name not in BINARY_TYPES:
        return False
    leaf = arrow_type
    while leaf is not None and hasattr(leaf, "value_type") and not pa.types.is_dictionary(leaf):
        leaf = leaf.value_type
    if leaf is not None and (pa.types.is_string(leaf) or pa.types.is_large_string(leaf)):
        return name in _AS_TEXT or name in ("jsonb", "uuid") or name in text_held_binary.TYPES
    return True


def to_binary(arr: pa.Array, t: PgType) -> pa.Array:
    """Postgres binary wire format of every value of `arr` described as `t`; nulls stay null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        return pc.take(to_binary(arr.dictionary, t), arr.indices)
    if isinstance(arr.type, pa.BaseExtensionType):
        plain = normalize(arr)
        if plain is arr:  # opaque DuckDB types without a plain Arrow form
            return _opaque(arr, t)
        arr = plain
    name = t.name
    if t.is_array:
        return _arrays(arr, element_of(t))
    if name in _INT:
        values = np_values(arr.cast(pa.int64()) if not pa.types.is_integer(arr.type) else arr, 0)
        limits = np.iinfo(np.dtype(_INT[name]))
        if len(values) and (values.min() < limits.min or values.max() > limits.max):
            # A column declared narrower than its values (hint): never send wrapped-around bytes.
            raise ValueError(f"value out of range for type {name}")
        return _fixed(values, _INT[name], arr)
    if name == "bool":
        return fixed_width(np_values(arr, False).astype(np.uint8)[:, None], arr)
    if name in ("float4", "float8"):
        return _fixed(np_values(arr, 0.0), ">f4" if name == "float4" else ">f8", arr)
    if name == "date":
        days = np_values(arr.cast(pa.date32()).cast(pa.int32()), 0).astype(np.int64)
        days = np.where(days == DATE_INFINITY, 2**31 - 1,  # Postgres's date +-infinity are INT32_MAX/MIN
                        np.where(days == -DATE_INFINITY, -(2**31), days - _PG_EPOCH_DAYS))
        return _fixed(days, ">i4", arr)
    if name == "time":
        return _fixed(np_values(arr.cast(pa.time64("us"), safe=False).cast(pa.int64()), 0), ">i8", arr)
    if name in ("timestamp", "timestamptz"):
        us = np_values(arr.cast(pa.timestamp("us", tz=arr.type.tz), safe=False).cast(pa.int64()), 0)
        inf = np.abs(us) == TS_INFINITY
        shifted = us - _PG_EPOCH_US
        if inf.any():  # Postgres's -infinity is INT64_MIN, DuckDB's is -INT64_MAX
            shifted = np.where(inf, np.where(us > 0, np.int64(2**63 - 1), np.int64(-(2**63))), shifted)
        return _fixed(shifted, ">i8", arr)
    if name == "interval":
        return _intervals(arr)
    if name == "uuid":
        return _uuids(arr)
    if name == "numeric":
        fast = _decimals(arr) if pa.types.is_decimal128(arr.type) else None
        return fast if fast is not None else _python_each(arr, numeric_binary)
    if name == "bytea":
        return arr.cast(pa.binary()) if not pa.types.is_binary(arr.type) else arr
    if name in text_held_binary.TYPES and pa.types.is_string(arr.type):
        return text_held_binary.to_binary(arr, name)
    text = to_text(arr, t).cast(pa.binary())
    if name == "jsonb":  # jsonb binary = version byte 1 + the JSON text
        return pc.binary_join_element_wise(b"\x01", text, b"")
    return text


def _fixed(values: np.ndarray, dtype: str, nulls_from: pa.Array) -> pa.Array:
    big_endian = values.astype(dtype)
    return fixed_width(big_endian.view(np.uint8).reshape(len(values), big_endian.itemsize), nulls_from)


def _intervals(arr: pa.Array) -> pa.Array:
    """interval: int64 microseconds, int32 days, int32 months."""
    n = len(arr)
    out = np.zeros((n, 16), np.uint8)
    if pa.types.is_duration(arr.type):
        micros = np_values(arr.cast(pa.duration("us"), safe=False).cast(pa.int64()), 0)
        days = months = np.zeros(n, np.int64)
    else:
        months, days, nanos = month_day_nano(arr)
        micros = np.where(nanos < 0, -(-nanos // 1000), nanos // 1000)  # truncate toward zero
    out[:, 0:8] = micros.astype(">i8").view(np.uint8).reshape(n, 8)
    out[:, 8:12] = days.astype(">i4").view(np.uint8).reshape(n, 4)
    out[:, 12:16] = months.astype(">i4").view(np.uint8).reshape(n, 4)
    return fixed_width(out, arr)


_MDN = np.dtype([("months", "<i4"), ("days", "<i4"), ("nanos", "<i8")])


def month_day_nano(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three fields of a month_day_nano_interval array straight from its buffer (nulls read as 0)."""
    fields = np.frombuffer(arr.buffers()[1], _MDN, count=len(arr), offset=16 * arr.offset)
    valid = np.asarray(arr.is_valid()) if arr.null_count else True
    return (np.where(valid, fields["months"], 0).astype(np.int64), np.where(valid, fields["days"], 0).astype(np.int64),
            np.where(valid, fields["nanos"], 0))


_UNHEX = np.full(256, 0, np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _UNHEX[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _UNHEX[_c] = 10 + _i


def _uuids(arr: pa.Array) -> pa.Array:
    """uuid: the 16 raw bytes (DuckDB hands uuids over as canonical 36-character strings)."""
    if pa.types.is_fixed_size_binary(arr.type):
        return arr.cast(pa.binary())
    n = len(arr)
    text = arr.fill_null("00000000-0000-0000-0000-000000000000") if arr.null_count else arr
    offsets, data = binary_parts(text)
    if not (np.diff(offsets) == 36).all():  # not canonical: parse each one
        import uuid

        return _python_each(arr, lambda v: uuid.UUID(v).bytes)
    chars = data.reshape(n, 36)
    hexdigits = np.concatenate([chars[:, 0:8], chars[:, 9:13], chars[:, 14:18], chars[:, 19:23], chars[:, 24:36]],
                               axis=1)
    nibbles = _UNHEX[hexdigits]
    raw = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return fixed_width(raw, arr)


def _opaque(arr: pa.Array, t: PgType) -> pa.Array:
    """timetz (int64 micros, int32 seconds west of UTC) and varbit (int32 bit count, bits) from DuckDB's
    opaque layouts; anything else as its text."""
    kind = getattr(arr.type, "type_name", "")
    if kind == "time_tz":
        def timetz(raw: bytes) -> bytes:
            bits = int.from_bytes(raw, "little")
            return struct.pack(">qi", bits >> 24, -(57599 - (bits & 0xFFFFFF)))
        return _python_each(arr.storage, timetz)
    if kind == "bit":
        def varbit(raw: bytes) -> bytes:
            nbits = 8 * (len(raw) - 1) - raw[0] if raw else 0
            value = int.from_bytes(raw[1:], "big") & ((1 << nbits) - 1) if nbits else 0
            return struct.pack(">i", nbits) + (value << ((-nbits) % 8)).to_bytes((nbits + 7) // 8, "big")
        return _python_each(arr.storage, varbit)
    if kind in ("bignum", "varint"):
        return _python_each(arr.storage, lambda raw: numeric_binary(Decimal(bignum_text(raw))))
    return to_text(arr, t).cast(pa.binary())


def _python_each(arr: pa.Array, fmt) -> pa.Array:
    return pa.array([None if v is None else fmt(v) for v in arr.to_pylist()], pa.binary())


_GROUPS = 5  # base-10000 digit groups the fast path handles: |unscaled| * 10**pad < 10**18 < 10000**5


def _decimals(arr: pa.Array) -> pa.Array | None:
    """numeric binary for a decimal128 column, vectorised when every unscaled value is below 10**15 (money,
    quantities, TPC-H sums); None means: use the per-value path."""
    scale = arr.type.scale
    if scale < 0 or not len(arr):
        return None
    raw = np.frombuffer(arr.buffers()[1], np.int64, count=2 * len(arr), offset=16 * arr.offset).reshape(-1, 2)
    low, high = raw[:, 0], raw[:, 1]
    valid = np.asarray(arr.is_valid()) if arr.null_count else np.ones(len(arr), bool)
    unscaled = np.where(valid, low, 0)
    if not ((high == (low >> 63)) | ~valid).all() or not (np.abs(unscaled) < 10**15).all():
        return None
    pad = (-scale) % 4  # the fraction is padded to whole groups of 4 digits
    fraction_groups = (scale + pad) // 4
    magnitude = np.abs(unscaled) * 10**pad
    largest = int(magnitude.max())
    count = 1
    while count < _GROUPS and largest >= 10000**count:  # only as many groups as the largest value needs
        count += 1
    groups = np.empty((len(arr), count), np.int64)  # most significant first
    for k in range(count):
        groups[:, count - 1 - k] = magnitude // 10000**k % 10000
    nonzero = groups != 0
    any_digit = nonzero.any(axis=1)
    first = np.argmax(nonzero, axis=1)
    last = count - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    ndigits = np.where(any_digit, last - first + 1, 0)
    weight = np.where(any_digit, count - 1 - first - fraction_groups, 0)
    n = len(arr)
    matrix = np.empty((n, 8 + 2 * count), np.uint8)
    matrix[:, 0:2] = ndigits.astype(">i2").view(np.uint8).reshape(n, 2)
    matrix[:, 2:4] = weight.astype(">i2").view(np.uint8).reshape(n, 2)
    matrix[:, 4:6] = np.where(unscaled < 0, 0x4000, 0).astype(">u2").view(np.uint8).reshape(n, 2)
    matrix[:, 6:8] = np.frombuffer(struct.pack(">h", scale), np.uint8)
    matrix[:, 8:] = groups.astype(">u2").view(np.uint8).reshape(n, 2 * count)
    columns = np.arange(count)[None, :]
    kept_groups = (columns >= first[:, None]) & (columns <= last[:, None]) & any_digit[:, None]
    keep = np.concatenate([np.ones((n, 8), bool), np.repeat(kept_groups, 2, axis=1)], axis=1)
    return compact(matrix, keep, arr)


def numeric_binary(value) -> bytes:
    """numeric: ndigits, weight, sign, dscale, then base-10000 digits (int16 each)."""
    if not isinstance(value, Decimal):
        value = Decimal(value)
    if value.is_nan():
        return struct.pack(">hhHh", 0, 0, 0xC000, 0)
    if value.is_infinite():
        return struct.pack(">hhHh", 0, 0, 0xD000 if value > 0 else 0xF000, 0)
    sign, digits, exp = value.as_tuple()
    dscale = max(0, -exp)
    text = "".join(map(str, digits))
    # Align the integer part to groups of 4 on the left and the fraction to groups of 4 on the right.
    int_len = len(text) + exp  # digits before the decimal point (may be <= 0)
    int_part = text[:int_len] if int_len > 0 else ""
    frac_part = text[int_len:] if int_len >= 0 else "0" * (-int_len) + text
    if exp > 0:
        int_part = text + "0" * exp
        frac_part = ""
    int_part = int_part.lstrip("0")
    int_pad = (-len(int_part)) % 4
    int_groups = [int(("0" * int_pad + int_part)[i:i + 4]) for i in range(0, len(int_part) + int_pad, 4)]
    frac_groups = [int((frac_part + "0" * ((-len(frac_part)) % 4))[i:i + 4]) for i in range(0, len(frac_part), 4)]
    groups = int_groups + frac_groups
    weight = len(int_groups) - 1
    while groups and groups[0] == 0:  # leading zero groups (values below 1)
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f">hhHh{len(groups)}H", len(groups), weight, 0x4000 if sign else 0, dscale, *groups)


def _arrays(arr: pa.Array, element: PgType) -> pa.Array:
    """1-D arrays: ndim, has_null, element OID, then (length, lower bound 1), then length-prefixed elements.
    Empty arrays are ndim 0, as Postgres sends them."""
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        arr = arr.cast(pa.large_list(arr.type.value_type))
    values = arr.values
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type) or \
            pa.types.is_fixed_size_list(values.type):
        return _nested_arrays(arr, element)
    offsets = np.asarray(arr.offsets)
    start, end = int(offsets[0]), int(offsets[-1])
    inner = values.slice(start, end - start)
    element_bytes = length_prefixed(to_binary(inner, element))
    counts = np.diff(offsets).astype(np.int64)
    list_offsets = (offsets - start).astype(np.int32)
    per_list = pa.ListArray.from_arrays(pa.array(list_offsets, pa.int32()), element_bytes)
    body = pc.binary_join(per_list, b"")
    nulls_in = pc.is_null(inner).cast(pa.int64()) if inner.null_count else None
    has_null = np.zeros(len(arr), np.int64)
    if nulls_in is not None:
        cumulative = np.concatenate([[0], np.cumsum(np.asarray(nulls_in))])
        has_null = (cumulative[list_offsets[1:]] - cumulative[list_offsets[:-1]] > 0).astype(np.int64)
    n = len(arr)
    header = np.zeros((n, 20), np.uint8)
    header[:, 0:4] = np.where(counts > 0, 1, 0).astype(">i4").view(np.uint8).reshape(n, 4)
    header[:, 4:8] = has_null.astype(">i4").view(np.uint8).reshape(n, 4)
    header[:, 8:12] = np.frombuffer(struct.pack(">i", BY_NAME[element.name].oid), np.uint8)
    header[:, 12:16] = counts.astype(">i4").view(np.uint8).reshape(n, 4)
    header[:, 16:20] = np.frombuffer(struct.pack(">i", 1), np.uint8)
    head = fixed_width(header)
    short = fixed_width(header[:, :12])  # empty arrays stop after the element OID
    head = pc.if_else(pa.array(counts > 0), head, short)
    out = pc.binary_join_element_wise(head, body, b"")
    if arr.null_count:
        out = pc.if_else(arr.is_valid(), out, pa.scalar(None, pa.binary()))
    return out


def _nested_arrays(arr: pa.Array, element: PgType) -> pa.Array:
    """Multi-dimensional arrays: dimensions from the nested list lengths (Python, per array), element bytes
    vectorised over the flattened leaves. Ragged nesting is not a Postgres array: sent as its outer length."""
    leaves, depth = arr, 0
    while pa.types.is_list(leaves.type) or pa.types.is_large_list(leaves.type) \
            or pa.types.is_fixed_size_list(leaves.type):
        leaves, depth = leaves.flatten(), depth + 1
    element_bytes = length_prefixed(to_binary(leaves, element)).to_pylist()
    has_null = [v == b"\xff\xff\xff\xff" for v in element_bytes]
    position = 0
    out = []
    for value in arr.to_pylist():
        if value is None:
            out.append(None)
            continue
        dims, level = [], value
        while isinstance(level, list):
            dims.append(len(level))
            level = level[0] if level else None
        count = _leaf_count(value, depth)  # the real count keeps later rows aligned even for ragged input
        items = element_bytes[position:position + count]
        nulls = any(has_null[position:position + count])
        position += count
        if not count:
            out.append(struct.pack(">iii", 0, 0, element.oid))
            continue
        header = struct.pack(f">iii{2 * len(dims)}i", len(dims), int(nulls), element.oid,
                             *[x for d in dims for x in (d, 1)])
        out.append(header + b"".join(items))
    return pa.array(out, pa.binary())


def _leaf_count(value, depth: int) -> int:
    """Leaf elements under a nested list `depth` levels deep (a null inner list holds none)."""
    if depth == 0:
        return 1
    if value is None:
        return 0
    return sum(_leaf_count(v, depth - 1) for v in value)


def length_prefixed(values: pa.Array) -> pa.Array:
    """Each value preceded by its int32 length; nulls become just length -1 (the wire's element form)."""
    values = values.cast(pa.binary()) if not pa.types.is_binary(values.type) else values
    offsets, _ = binary_parts(values)
    lengths = np.diff(offsets).astype(np.int64)
    if values.null_count:
        lengths = np.where(np.asarray(values.is_valid()), lengths, -1)
        values = values.fill_null(b"")
    prefix = fixed_width(lengths.astype(">i4").view(np.uint8).reshape(len(lengths), 4))
    return pc.binary_join_element_wise(prefix, values, b"")


__all__ = ["BINARY_TYPES", "length_prefixed", "numeric_binary", "supports_binary", "to_binary", "validity_of"]
