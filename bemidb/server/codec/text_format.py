"""Arrow column -> Postgres text format, exactly as Postgres 15 prints each type, one whole column at a time.

`to_text(array, pg_type, timezone)` returns a string/binary Arrow array with the same nulls. The common
cases are vectorised (Arrow casts, RE2 regex passes, numpy byte tables; dates and times in datetime_text);
only rare values (floats whose notation differs from Arrow's, BC and year > 9999 dates, infinities) and rare
types (struct/map as JSON, DuckDB opaque types) take a Python path, and only for the values that need it.
Results of a few rows take the per-value twin, codec/small_rows.py.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.catalog.pg_types import PgType, element_of
from bemidb.server.codec.arrow_bytes import (
    binary_parts,
    fixed_width,
    np_values,
    patch,
    python_each,
    validity_of,
)
from bemidb.server.codec.datetime_text import (
    dates_text,
    datetime_text,
    intervals_text,
    time_tz_text,
    timestamps_text,
)

_HEX = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint8).reshape(256, 2)


def to_text(arr: pa.Array, t: PgType, timezone: str = "UTC") -> pa.Array:
    """Postgres text of every value of `arr` described as `t`; nulls stay null."""
    try:
        return _to_text(arr, t, timezone)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, NotImplementedError):
        # An Arrow layout nothing above foresaw: readable text beats failing the whole query.
        return python_each(arr, lambda v: v if isinstance(v, str) else json_text(v))


def _to_text(arr: pa.Array, t: PgType, timezone: str) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    typ = arr.type
    if pa.types.is_dictionary(typ):
        # Format the (small) dictionary once, then gather.
        return pc.take(to_text(arr.dictionary, t, timezone), arr.indices)
    if isinstance(typ, pa.BaseExtensionType):
        plain = normalize(arr)
        if plain is not arr:
            return to_text(plain, t, timezone)
        return python_each(arr, _OPAQUE_TEXT.get(getattr(typ, "type_name", ""), _opaque_hex))
    if pa.types.is_null(typ):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_boolean(typ):
        return fixed_width(np.where(np_values(arr, False), ord("t"), ord("f")).astype(np.uint8)[:, None], arr)
    if pa.types.is_integer(typ) or pa.types.is_decimal(typ):
        return arr.cast(pa.string())
    if pa.types.is_floating(typ):
        return _floats(arr)
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return arr
    if pa.types.is_fixed_size_binary(typ) and t.name == "uuid":
        return uuid_text(arr)
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_fixed_size_binary(typ) \
            or pa.types.is_binary_view(typ):
        return bytea_hex(arr)
    if pa.types.is_date(typ):
        return dates_text(arr.cast(pa.date32()))
    if pa.types.is_time(typ):
        micros = np_values(arr.cast(pa.time64("us"), safe=False).cast(pa.int64()), 0)
        return datetime_text(micros, date=False, offsets=None, nulls_from=arr)
    if pa.types.is_timestamp(typ):
        return timestamps_text(arr, timezone)
    if pa.types.is_interval(typ) or pa.types.is_duration(typ):
        return intervals_text(arr)
    if t.name in ("int2vector", "oidvector") and pa.types.is_list(typ):  # pg_index.indkey: "1 3", no braces
        return pc.binary_join(arr.cast(pa.list_(pa.string())), " ")
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ) \
            or pa.types.is_list_view(typ) or pa.types.is_large_list_view(typ):
        return _arrays(arr, element_of(t), timezone)
    if pa.types.is_struct(typ) or pa.types.is_map(typ) or pa.types.is_union(typ):
        return python_each(arr, json_text)
    return python_each(arr, str)


# --- DuckDB extension and opaque types ----------------------------------------------------------------

def normalize(arr: pa.Array) -> pa.Array:
    """Extension arrays as plain Arrow arrays where a plain type holds the same values: uuid -> its 16
    bytes, json -> its text, bool8 -> boolean, DuckDB HUGEINT (16-byte little-endian two's complement, Arrow decimal128's own
    layout) -> decimal128(38, 0) without copying. Other opaque types are returned unchanged."""
    typ = arr.type
    if not isinstance(typ, pa.BaseExtensionType):
        return arr
    if typ.extension_name in ("arrow.uuid", "arrow.json"):
        return arr.storage
    if typ.extension_name == "arrow.bool8":  # DuckDB BOOLEAN with lossless conversion: one int8 per value
        return pc.not_equal(arr.storage, 0)
    name = getattr(typ, "type_name", "")
    storage = arr.storage
    if name == "hugeint" or (name == "uhugeint" and not _top_bit_set(storage)):
        return pa.Array.from_buffers(pa.decimal128(38, 0), len(storage), storage.buffers(), offset=storage.offset)
    if name == "uhugeint":
        return pa.array([None if v is None else Decimal(int.from_bytes(v, "little")) for v in storage.to_pylist()],
                        pa.decimal256(39, 0))
    return arr


def _top_bit_set(storage: pa.Array) -> bool:
    raw = np.frombuffer(storage.buffers()[1], np.uint8, count=16 * len(storage), offset=16 * storage.offset)
    return bool((raw.reshape(-1, 16)[:, 15] & 0x80).any())


def _bit_text(raw: bytes) -> str:
    """DuckDB BIT: first byte = padding bits, then the bits (the padding at the front of the first byte)."""
    if not raw:
        return ""
    bits = "".join(f"{b:08b}" for b in raw[1:])
    return bits[raw[0]:]


def _opaque_hex(raw: bytes) -> str:
    return "\\x" + raw.hex()


def bignum_text(raw: bytes) -> str:
    """DuckDB VARINT/BIGNUM: 3-byte header (top bit set = positive, then the byte count), then the
    big-endian magnitude; negative values have every byte inverted."""
    if raw[0] & 0x80:
        return str(int.from_bytes(raw[3:], "big"))
    return "-" + str(int.from_bytes(bytes(255 - b for b in raw[3:]), "big"))


_OPAQUE_TEXT = {"time_tz": time_tz_text, "bit": _bit_text, "bignum": bignum_text, "varint": bignum_text}


# --- building blocks -----------------------------------------------------------------------------------


def bytea_hex(arr: pa.Array) -> pa.Array:
    """bytea text: `\\x` then two lowercase hex digits per byte (the whole data buffer hexed at once)."""
    offsets, data = binary_parts(arr)
    hexed = _HEX[data].reshape(-1)
    offset_type, offset_dtype = (pa.large_binary(), np.int64) if len(hexed) >= 2**31 else (pa.binary(), np.int32)
    digits = pa.Array.from_buffers(offset_type, len(arr), [validity_of(arr),
                                                           pa.py_buffer((2 * offsets).astype(offset_dtype)),
                                                           pa.py_buffer(hexed)])
    return pc.binary_join_element_wise(pa.scalar(b"\\x", offset_type), digits, pa.scalar(b"", offset_type))


def uuid_text(arr: pa.Array) -> pa.Array:
    """16-byte uuids -> 8-4-4-4-12 lowercase hex."""
    raw = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=16 * len(arr), offset=16 * arr.offset)
    hexed = _HEX[raw].reshape(len(arr), 32)
    out = np.full((len(arr), 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        out[:, dst:dst + width] = hexed[:, src:src + width]
    return fixed_width(out, arr)


# --- numbers -------------------------------------------------------------------------------------------

def _floats(arr: pa.Array) -> pa.Array:
    """Shortest round-trip digits (as Postgres 12+ with extra_float_digits=1), Postgres's notation:
    exponent form when the decimal exponent is < -4 or >= 15 (float8) / 6 (float4), at least 2 exponent
    digits; Infinity, -Infinity, NaN."""
    text = arr.cast(pa.string())
    values = np_values(arr, 0.0)
    high = 1e15 if arr.type == pa.float64() else np.float32(1e6)
    finite = np.isfinite(values)
    magnitude = np.abs(values)
    want_exp = finite & (magnitude != 0) & ((magnitude < values.dtype.type(1e-4)) | (magnitude >= high))
    has_exp = np.asarray(pc.fill_null(pc.match_substring(text, "e"), False))
    if not finite.all():
        text = pc.replace_substring(text, "inf", "Infinity")
        text = pc.replace_substring(text, "nan", "NaN")
    if has_exp.any():
        text = pc.replace_substring_regex(text, r"e([+-])(\d)$", r"e\10\2")
    valid = np.asarray(arr.is_valid()) if arr.null_count else True
    mismatch = (want_exp != has_exp) & finite & valid
    if mismatch.any():
        strings = text.to_pylist()
        text = patch(text, mismatch, [float_style(strings[i], bool(want_exp[i])) for i in np.flatnonzero(mismatch)])
    return text


def float_style(shortest: str, exponent: bool) -> str:
    """Re-spell shortest float digits in fixed or Postgres exponent notation."""
    sign, digits, exp = Decimal(shortest).as_tuple()
    digits = list(digits)
    if not any(digits):
        return "-0" if sign else "0"
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    if exponent:
        e10 = exp + len(digits) - 1
        mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
        body = f"{mantissa}e{'+' if e10 >= 0 else '-'}{abs(e10):02d}"
    else:
        body = format(Decimal((0, tuple(digits), exp)), "f")
    return ("-" if sign else "") + body


# --- dates and times -----------------------------------------------------------------------------------


# --- arrays and nested values ---------------------------------------------------------------------------

_NO_QUOTES = {"int2", "int4", "int8", "float4", "float8", "numeric", "bool", "oid"}


def _arrays(arr: pa.Array, element: PgType, timezone: str) -> pa.Array:
    """`{1,2,NULL}`, `{"a b","c,d","\\"q\\"",NULL}`, nested lists as nested braces."""
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list_view(arr.type) \
            or pa.types.is_large_list_view(arr.type):
        arr = arr.cast(pa.large_list(arr.type.value_type))
    values = arr.values
    offsets = arr.offsets
    inner = to_text(values, element, timezone).cast(pa.string())
    nested = pa.types.is_list(values.type) or pa.types.is_large_list(values.type) \
        or pa.types.is_fixed_size_list(values.type)
    if not nested and element.name not in _NO_QUOTES:
        inner = quote_elements(inner)
    inner = inner.cast(pa.string()).fill_null("NULL")
    list_type = pa.large_list(pa.string()) if offsets.type == pa.int64() else pa.list_(pa.string())
    fresh_offsets = np.ascontiguousarray(np.asarray(offsets))  # a sliced list's offsets start mid-buffer
    lists = pa.Array.from_buffers(list_type, len(arr), [validity_of(arr), pa.py_buffer(fresh_offsets)],
                                  children=[inner])
    joined = pc.binary_join(lists, ",")
    return pc.binary_join_element_wise("{", joined, "}", "")


def quote_elements(text: pa.Array) -> pa.Array:
    """Array element quoting: double quotes around empty strings, NULL, and anything with braces, quotes,
    commas, backslashes or white space; backslash-escape `\\` and `"` inside."""
    needs = pc.match_substring_regex(text, r'^$|[{}",\\ \t\n\r\x0b\x0c]|^(?i:null)$')
    if not pc.any(needs).as_py():
        return text
    escaped = pc.replace_substring_regex(text, r'(["\\])', r"\\\1")
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    return pc.if_else(needs, quoted, text)


def json_text(value) -> str:
    """Struct/map/union values (from to_pylist) as compact JSON, like Postgres's row_to_json; decimals
    keep every digit."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):  # map entries
            return json_text(dict(value))
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return str(value) if np.isfinite(float(value)) else json.dumps(str(value))
    if isinstance(value, bytes):
        return json.dumps("\\x" + value.hex())
    if isinstance(value, dt.datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, (dt.date, dt.time)):
        return json.dumps(value.isoformat())
    return json.dumps(str(value), ensure_ascii=False)
