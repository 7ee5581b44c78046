"""Arrow column -> Postgres text format, exactly as Postgres 15 prints each type, one whole column at a time.

`to_text(array, pg_type, timezone)` returns a string/binary Arrow array with the same nulls. The common
cases are vectorised (Arrow casts, RE2 regex passes, numpy byte tables); only rare values (floats whose
notation differs from Arrow's, BC and year > 9999 dates, infinities) and rare types (interval, struct/map
as JSON) take a Python path, and only for the values that need it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.pg_types import PgType, element_of

# DuckDB's +-infinity sentinels in Arrow date32 / timestamp values.
DATE_INFINITY = 2**31 - 1
TS_INFINITY = 2**63 - 1
_DATE_MIN, _DATE_MAX = -719162, 2932896  # 0001-01-01 and 9999-12-31 as days since 1970: Arrow's cast range
_US_MIN, _US_MAX = _DATE_MIN * 86_400_000_000, (_DATE_MAX + 1) * 86_400_000_000 - 1
_EPOCH = dt.datetime(1970, 1, 1)

_HEX = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint8).reshape(256, 2)


def to_text(arr: pa.Array, t: PgType, timezone: str = "UTC") -> pa.Array:
    """Postgres text of every value of `arr` described as `t`; nulls stay null."""
    try:
        return _to_text(arr, t, timezone)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, NotImplementedError):
        # An Arrow layout nothing above foresaw: readable text beats failing the whole query.
        return _python_each(arr, lambda v: v if isinstance(v, str) else json_text(v))


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
        return _python_each(arr, _OPAQUE_TEXT.get(getattr(typ, "type_name", ""), _opaque_hex))
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
        return _dates(arr.cast(pa.date32()))
    if pa.types.is_time(typ):
        micros = np_values(arr.cast(pa.time64("us"), safe=False).cast(pa.int64()), 0)
        return datetime_text(micros, date=False, offsets=None, nulls_from=arr)
    if pa.types.is_timestamp(typ):
        return _timestamps(arr, timezone)
    if pa.types.is_interval(typ) or pa.types.is_duration(typ):
        return _intervals(arr)
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ) \
            or pa.types.is_list_view(typ) or pa.types.is_large_list_view(typ):
        return _arrays(arr, element_of(t), timezone)
    if pa.types.is_struct(typ) or pa.types.is_map(typ) or pa.types.is_union(typ):
        return _python_each(arr, json_text)
    return _python_each(arr, str)


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


def _time_tz_text(raw: bytes) -> str:
    """DuckDB TIMETZ: uint64 = micros << 24 | (57599 - offset seconds)."""
    bits = int.from_bytes(raw, "little")
    micros, offset = bits >> 24, 57599 - (bits & 0xFFFFFF)
    clock = (dt.datetime.min + dt.timedelta(microseconds=micros)).time().isoformat()
    clock = clock.rstrip("0").rstrip(".") if "." in clock else clock
    return clock + _offset_text(offset)


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


_OPAQUE_TEXT = {"time_tz": _time_tz_text, "bit": _bit_text, "bignum": bignum_text, "varint": bignum_text}


# --- building blocks -----------------------------------------------------------------------------------

def np_values(arr: pa.Array, fill) -> np.ndarray:
    """Values as numpy, nulls replaced by `fill` (their bytes are dropped later anyway)."""
    if arr.null_count:
        arr = arr.fill_null(fill)
    return arr.to_numpy(zero_copy_only=False)


def validity_of(arr: pa.Array) -> pa.Buffer | None:
    """A fresh offset-0 validity bitmap for `arr` (None when it has no nulls)."""
    if not arr.null_count:
        return None
    return pc.is_valid(arr).buffers()[1]


def fixed_width(matrix: np.ndarray, nulls_from: pa.Array | None = None) -> pa.Array:
    """An (n, w) uint8 matrix -> binary array of n w-byte values (zero-copy), nulls where `nulls_from` has them."""
    n, w = matrix.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    validity = validity_of(nulls_from) if nulls_from is not None else None
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(matrix))])


def binary_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets relative to the first value, data bytes) of a binary/string array, zero-copy."""
    arr = arr.cast(pa.large_binary()) if arr.type in (pa.large_string(), pa.large_binary()) else arr
    if pa.types.is_fixed_size_binary(arr.type) or pa.types.is_binary_view(arr.type) \
            or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.binary())
    bufs = arr.buffers()
    dtype = np.int64 if arr.type in (pa.large_binary(), pa.large_string()) else np.int32
    offsets = np.frombuffer(bufs[1], dtype=dtype, count=len(arr) + 1, offset=arr.offset * dtype().itemsize)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8, count=end - start, offset=start) if bufs[2] is not None and \
        end > start else np.zeros(0, np.uint8)
    return offsets - offsets[0], data


def bytea_hex(arr: pa.Array) -> pa.Array:
    """bytea text: `\\x` then two lowercase hex digits per byte."""
    offsets, data = binary_parts(arr)
    n = len(arr)
    out = np.empty(2 * len(data) + 2 * n, dtype=np.uint8)
    new_offsets = (2 * offsets + 2 * np.arange(n + 1)).astype(np.int64)
    starts = new_offsets[:-1]
    out[starts] = ord("\\")
    out[starts + 1] = ord("x")
    # Position of each data byte's hex pair: after its value's prefix.
    lengths = np.diff(offsets)
    shift = np.repeat(2 * np.arange(n) + 2, lengths)
    pos = 2 * np.arange(len(data)) + shift
    out[pos] = _HEX[data, 0]
    out[pos + 1] = _HEX[data, 1]
    offsets_type, off_dtype = (pa.large_binary(), np.int64) if len(out) >= 2**31 else (pa.binary(), np.int32)
    return pa.Array.from_buffers(offsets_type, n, [validity_of(arr), pa.py_buffer(new_offsets.astype(off_dtype)),
                                                    pa.py_buffer(out)])


def uuid_text(arr: pa.Array) -> pa.Array:
    """16-byte uuids -> 8-4-4-4-12 lowercase hex."""
    raw = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=16 * len(arr), offset=16 * arr.offset)
    hexed = _HEX[raw].reshape(len(arr), 32)
    out = np.full((len(arr), 36), ord("-"), dtype=np.uint8)
    for src, dst, width in ((0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)):
        out[:, dst:dst + width] = hexed[:, src:src + width]
    return fixed_width(out, arr)


def _python_each(arr: pa.Array, fmt) -> pa.Array:
    """The slow path: one Python call per non-null value (rare types only)."""
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    return pa.array([None if v is None else fmt(v) for v in arr.to_pylist()], pa.string())


def _patch(text: pa.Array, mask: np.ndarray, values: list[str]) -> pa.Array:
    """`text` with the positions in `mask` replaced by `values` (in order)."""
    if not mask.any():
        return text
    py = text.to_pylist()
    for i, v in zip(np.flatnonzero(mask), values, strict=True):
        py[i] = v
    return pa.array(py, pa.string())


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
        text = _patch(text, mismatch, [float_style(strings[i], bool(want_exp[i])) for i in np.flatnonzero(mismatch)])
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

def _dates(arr: pa.Array) -> pa.Array:
    days = np_values(arr.cast(pa.int32()), 0)
    special = (days < _DATE_MIN) | (days > _DATE_MAX)
    if not special.any():
        return arr.cast(pa.string())
    safe = pc.if_else(pa.array(special), pa.scalar(0, pa.date32()), arr)
    return _patch(safe.cast(pa.string()), special & np.asarray(arr.is_valid()),
                  [date_text(int(d)) for d in days[special & np.asarray(arr.is_valid())]])


def date_text(days: int) -> str:
    """One date (days since 1970-01-01) the Postgres way, for the values Arrow cannot print."""
    if days == DATE_INFINITY:
        return "infinity"
    if days == -DATE_INFINITY:
        return "-infinity"
    y, m, d = _civil_from_days(days)
    return f"{y:04d}-{m:02d}-{d:02d}" if y > 0 else f"{1 - y:04d}-{m:02d}-{d:02d} BC"


def _civil_from_days(z: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (astronomical year numbering) from days since 1970-01-01 (H. Hinnant)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y), m, d


def _timestamps(arr: pa.Array, timezone: str) -> pa.Array:
    unit_arr = arr.cast(pa.timestamp("us", tz=arr.type.tz), safe=False)
    micros = np_values(unit_arr.cast(pa.int64()), 0)
    special = (micros < _US_MIN) | (micros > _US_MAX)
    if special.any():
        micros = np.where(special, 0, micros)
    zone = arrow_timezone(timezone) if arr.type.tz is not None else None
    if zone is None:
        text = datetime_text(micros, date=True, offsets=None, nulls_from=arr)
    elif zone == "UTC":  # the common case: no zone conversion, every offset is +00
        text = datetime_text(micros, date=True, offsets=np.zeros(1, np.int64), nulls_from=arr)
    else:
        utc = pa.array(micros, pa.timestamp("us", tz=zone))
        local = np_values(pc.local_timestamp(utc).cast(pa.int64()), 0)
        text = datetime_text(local, date=True, offsets=(local - micros) // 1_000_000, nulls_from=arr)
    if special.any():
        valid = special & (np.asarray(arr.is_valid()) if arr.null_count else True)
        originals = np_values(unit_arr.cast(pa.int64()), 0)
        text = _patch(text, valid, [timestamp_text(int(us), arr.type.tz is not None, timezone)
                                    for us in originals[valid]])
    return text


def _put_digits(matrix: np.ndarray, column: int, values: np.ndarray, width: int) -> None:
    """Zero-padded decimal digits of `values` into matrix[:, column:column + width]."""
    values = values.copy()
    for k in range(width - 1, -1, -1):
        matrix[:, column + k] = 48 + values % 10
        values //= 10


def _civil_from_days_np(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised `_civil_from_days`."""
    z = z + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def datetime_text(micros: np.ndarray, date: bool, offsets: np.ndarray | None, nulls_from: pa.Array) -> pa.Array:
    """`YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]]` (date=False: the clock part only) from microseconds,
    with Postgres's trimming of fractional zeros, built as a byte matrix and compacted with a keep-mask.
    `offsets`: UTC offset seconds per value (or one for all); None for no zone suffix."""
    n = len(micros)
    days, clock = np.divmod(micros, 86_400_000_000) if date else (None, micros)
    width = (11 if date else 0) + 15 + (9 if offsets is not None else 0)
    matrix = np.empty((n, width), np.uint8)
    keep = np.ones((n, width), bool)
    col = 0
    if date:
        matrix[:, 0:10] = _date_bytes(days)
        matrix[:, 10] = ord(" ")
        col = 11
    seconds, fraction = np.divmod(clock, 1_000_000)
    midnight = seconds >= 86400  # time '24:00:00' (Postgres and DuckDB allow it)
    matrix[:, col:col + 8] = _clock_table()[np.where(midnight, 0, seconds)]
    if midnight.any():
        matrix[midnight, col:col + 2] = np.frombuffer(b"24", np.uint8)
    matrix[:, col + 8] = ord(".")
    high, low = np.divmod(fraction, 1000)
    digits3, zeros3 = _triplet_tables()
    matrix[:, col + 9:col + 12] = digits3[high]
    matrix[:, col + 12:col + 15] = digits3[low]
    # Keep the fraction up to its last non-zero digit; no fraction at all drops the dot too.
    digits_kept = np.where(low != 0, 6 - zeros3[low], 3 - zeros3[high])
    frac_cols = np.arange(7)[None, :]
    keep[:, col + 8:col + 15] = (frac_cols <= digits_kept[:, None]) & (digits_kept[:, None] > 0)
    if offsets is not None:
        z = col + 15
        offsets = np.broadcast_to(offsets, (n,))
        matrix[:, z] = np.where(offsets < 0, ord("-"), ord("+"))
        magnitude = np.abs(offsets)
        _put_digits(matrix, z + 1, magnitude // 3600, 2)
        matrix[:, z + 3] = matrix[:, z + 6] = ord(":")
        _put_digits(matrix, z + 4, magnitude // 60 % 60, 2)
        _put_digits(matrix, z + 7, magnitude % 60, 2)
        has_seconds = magnitude % 60 != 0
        keep[:, z + 3:z + 6] = ((magnitude % 3600 != 0) | has_seconds)[:, None]
        keep[:, z + 6:z + 9] = has_seconds[:, None]
    return compact(matrix, keep, nulls_from)


@functools.cache
def _clock_table() -> np.ndarray:
    """`HH:MM:SS` for each second of the day (86400 x 8 bytes, built once)."""
    seconds = np.arange(86400)
    table = np.empty((86400, 8), np.uint8)
    _put_digits(table, 0, seconds // 3600, 2)
    _put_digits(table, 3, seconds // 60 % 60, 2)
    _put_digits(table, 6, seconds % 60, 2)
    table[:, 2] = table[:, 5] = ord(":")
    return table


@functools.cache
def _triplet_tables() -> tuple[np.ndarray, np.ndarray]:
    """Three zero-padded digits of 0..999, and how many of them are trailing zeros (3 for 0)."""
    values = np.arange(1000)
    digits = np.empty((1000, 3), np.uint8)
    _put_digits(digits, 0, values, 3)
    zeros = (values % 10 == 0).astype(np.int64) + (values % 100 == 0) + (values % 1000 == 0)
    return digits, zeros


def _date_bytes(days: np.ndarray) -> np.ndarray:
    """`YYYY-MM-DD` rows for days since 1970; a value range that is not huge is formatted once per day."""
    low, high = int(days.min()), int(days.max())
    if high - low < 4 * len(days) + 1000:
        table = _format_days(np.arange(low, high + 1))
        return table[days - low]
    return _format_days(days)


def _format_days(days: np.ndarray) -> np.ndarray:
    out = np.empty((len(days), 10), np.uint8)
    y, m, d = _civil_from_days_np(days)
    _put_digits(out, 0, y, 4)
    _put_digits(out, 5, m, 2)
    _put_digits(out, 8, d, 2)
    out[:, 4] = out[:, 7] = ord("-")
    return out


def compact(matrix: np.ndarray, keep: np.ndarray, nulls_from: pa.Array | None = None) -> pa.Array:
    """Row i of the binary result = the bytes of matrix[i] where keep[i] (row-major boolean indexing
    concatenates exactly those, in order)."""
    lengths = keep.sum(axis=1)
    offsets = np.zeros(len(matrix) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = matrix[keep]
    offsets_type = (pa.large_binary(), np.int64) if len(data) >= 2**31 else (pa.binary(), np.int32)
    validity = validity_of(nulls_from) if nulls_from is not None else None
    return pa.Array.from_buffers(offsets_type[0], len(matrix), [validity, pa.py_buffer(offsets.astype(offsets_type[1])),
                                                                pa.py_buffer(data)])


def timestamp_text(micros: int, with_zone: bool, timezone: str) -> str:
    """One timestamp outside Arrow's printable range (infinity, BC, year > 9999), the Postgres way."""
    if micros == TS_INFINITY:
        return "infinity"
    if micros == -TS_INFINITY:
        return "-infinity"
    days, rest = divmod(micros, 86_400_000_000)
    offset = ""
    if with_zone:  # far-away years: the zone's standard offset today is as good as Postgres's guess
        delta = _zone_offset(timezone)
        days, rest = divmod(micros + delta * 1_000_000, 86_400_000_000)
        offset = _offset_text(delta)
    date = date_text(days)
    bc = date.endswith(" BC")
    clock = (dt.datetime.min + dt.timedelta(microseconds=rest)).time().isoformat()
    clock = clock.rstrip("0").rstrip(".") if "." in clock else clock
    return f"{date.removesuffix(' BC')} {clock}{offset}{' BC' if bc else ''}"


@functools.lru_cache(maxsize=256)
def arrow_timezone(timezone: str) -> str:
    """The session TimeZone as Arrow accepts it (IANA names, UTC, +hh:mm); unknown names fall back to UTC."""
    if not timezone or timezone.upper() in ("UTC", "GMT", "Z", "ZULU"):
        return "UTC"
    try:
        pa.scalar(0, pa.timestamp("us", tz=timezone)).cast(pa.string())
        return timezone
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return "UTC"


def _zone_offset(timezone: str) -> int:
    from zoneinfo import ZoneInfo

    try:
        zone = ZoneInfo(arrow_timezone(timezone))
    except Exception:  # noqa: BLE001 - fixed offsets like +05:30 are not zoneinfo keys
        return 0
    return int(dt.datetime(2000, 1, 1, tzinfo=zone).utcoffset().total_seconds())


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rem = divmod(abs(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}" + (f":{m:02d}" if m or s else "") + (f":{s:02d}" if s else "")


def _intervals(arr: pa.Array) -> pa.Array:
    """Intervals: each distinct value formatted once in Python, then gathered (results repeat a lot)."""
    if len(arr) <= 64 or not pa.types.is_interval(arr.type):
        return _python_each(arr, interval_text)
    fields = np.frombuffer(arr.buffers()[1], np.dtype([("m", "<i4"), ("d", "<i4"), ("ns", "<i8")]),
                           count=len(arr), offset=16 * arr.offset)
    keys = fields.view(np.dtype((np.void, 16)))
    distinct, inverse = np.unique(keys, return_inverse=True)
    values = distinct.view(fields.dtype)
    texts = pa.array([interval_text(_MonthDayNano(int(v["m"]), int(v["d"]), int(v["ns"]))) for v in values],
                     pa.string())
    return pc.if_else(arr.is_valid(), pc.take(texts, pa.array(inverse.ravel())), pa.scalar(None, pa.string()))


class _MonthDayNano:
    __slots__ = ("months", "days", "nanoseconds")

    def __init__(self, months: int, days: int, nanoseconds: int):
        self.months, self.days, self.nanoseconds = months, days, nanoseconds


def interval_text(value) -> str:
    """Postgres `IntervalStyle postgres` (EncodeInterval): `1 year 2 mons 3 days 04:05:06.789`,
    `-1 days +02:00:00`, `00:00:00`."""
    if isinstance(value, dt.timedelta):
        months, days, micros = 0, 0, value // dt.timedelta(microseconds=1)
    else:  # pyarrow MonthDayNano
        months, days, micros = value.months, value.days, int(value.nanoseconds / 1000)
    years = int(months / 12)  # C division: truncate toward zero
    months -= years * 12
    out, is_zero, is_before = "", True, False
    for amount, unit in ((years, "year"), (months, "mon"), (days, "day")):
        if amount:
            out += f"{'' if is_zero else ' '}{'+' if is_before and amount > 0 else ''}{amount} {unit}" \
                   f"{'' if amount == 1 else 's'}"
            is_before, is_zero = amount < 0, False
    if is_zero or micros:
        sign = "-" if micros < 0 else ("+" if is_before else "")
        secs, frac = divmod(abs(micros), 1_000_000)
        h, rem = divmod(secs, 3600)
        m, s = divmod(rem, 60)
        out += f"{'' if is_zero else ' '}{sign}{h:02d}:{m:02d}:{s:02d}" + (f".{frac:06d}".rstrip("0") if frac else "")
    return out


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


# --- few rows: plain Python per value --------------------------------------------------------------------
# A 4-row answer (most analytical results) would pay ~40 numpy/Arrow calls per column in the vectorised
# path; these formatters produce the very same text per value. The tests run every Postgres comparison
# through both paths.

def small_text(arr: pa.Array, t: PgType, timezone: str) -> list[str | None] | None:
    """Text of a few values of a common scalar type, or None when the vectorised path must do it."""
    typ = arr.type
    if t.is_array:
        return None
    if isinstance(typ, pa.BaseExtensionType):
        kind = typ.extension_name
        if kind == "arrow.bool8":
            return [None if v is None else ("t" if v else "f") for v in arr.storage.to_pylist()]
        if kind == "arrow.json":
            return arr.storage.to_pylist()
        if kind == "arrow.uuid":
            return [None if v is None else str(uuid.UUID(bytes=v)) for v in arr.storage.to_pylist()]
        return None
    if pa.types.is_integer(typ):
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return arr.to_pylist()
    if pa.types.is_boolean(typ):
        return [None if v is None else ("t" if v else "f") for v in arr.to_pylist()]
    if pa.types.is_decimal(typ):
        return [None if v is None else format(v, "f") for v in arr.to_pylist()]
    if pa.types.is_floating(typ) and typ.bit_width in (32, 64):
        return [None if v is None else _float_text(v, typ.bit_width == 32) for v in arr.to_pylist()]
    if pa.types.is_date32(typ):
        days = arr.cast(pa.int32()).to_pylist()
        if any(d is not None and not _DATE_MIN <= d <= _DATE_MAX for d in days):
            return None
        return [None if d is None else (_EPOCH + dt.timedelta(days=d)).date().isoformat() for d in days]
    if pa.types.is_timestamp(typ):
        micros = arr.cast(pa.timestamp("us", tz=typ.tz), safe=False).cast(pa.int64()).to_pylist()
        if any(us is not None and not _US_MIN <= us <= _US_MAX for us in micros):
            return None
        zone = _zoneinfo(arrow_timezone(timezone)) if typ.tz is not None else None
        return [None if us is None else _timestamp_value_text(us, zone) for us in micros]
    return None


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


@functools.lru_cache(maxsize=64)
def _zoneinfo(name: str):
    from zoneinfo import ZoneInfo

    return dt.UTC if name == "UTC" else ZoneInfo(name)


def _timestamp_value_text(micros: int, zone) -> str:
    instant = _EPOCH + dt.timedelta(microseconds=micros)
    offset = ""
    if zone is not None:
        local = instant.replace(tzinfo=dt.UTC).astimezone(zone)
        offset = _offset_text(int(local.utcoffset().total_seconds()))
        instant = local.replace(tzinfo=None)
    text = instant.isoformat(sep=" ")
    if instant.microsecond:
        text = text.rstrip("0")
    return text + offset
