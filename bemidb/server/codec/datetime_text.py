"""Dates, times, timestamps and intervals in Postgres text format (DateStyle ISO, IntervalStyle postgres).

Whole columns become numpy digit matrices (lookup tables for clock and fraction digits, one row per day
for dates) that `compact` trims the way Postgres does (`05.12`, no `.000000`, `+05:30`, `+00`); values
Arrow/numpy cannot hold as ordinary dates (infinity, BC, year > 9999) are patched in from Python.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bemidb.server.codec.arrow_bytes import compact, fixed_width, np_values, patch, python_each

# DuckDB's +-infinity sentinels in Arrow date32 / timestamp values.
DATE_INFINITY = 2**31 - 1
TS_INFINITY = 2**63 - 1
DATE_MIN, DATE_MAX = -719162, 2932896  # 0001-01-01 and 9999-12-31 as days since 1970: Arrow's cast range
US_MIN, US_MAX = DATE_MIN * 86_400_000_000, (DATE_MAX + 1) * 86_400_000_000 - 1
EPOCH = dt.datetime(1970, 1, 1)


def dates_text(arr: pa.Array) -> pa.Array:
    days = np_values(arr.cast(pa.int32()), 0)
    special = (days < DATE_MIN) | (days > DATE_MAX)
    if not special.any():
        return arr.cast(pa.string())
    safe = pc.if_else(pa.array(special), pa.scalar(0, pa.date32()), arr)
    return patch(safe.cast(pa.string()), special & np.asarray(arr.is_valid()),
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


def timestamps_text(arr: pa.Array, timezone: str) -> pa.Array:
    unit_arr = arr.cast(pa.timestamp("us", tz=arr.type.tz), safe=False)
    micros = np_values(unit_arr.cast(pa.int64()), 0)
    special = (micros < US_MIN) | (micros > US_MAX)
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
        text = patch(text, valid, [timestamp_text(int(us), arr.type.tz is not None, timezone)
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
    with Postgres's trimming of fractional zeros. Built as byte-matrix blocks; blocks no value needs (no
    fractions, whole-hour offsets) are left out, and when every row has the same width the matrix is the
    result as is, else a keep-mask compacts it. `offsets`: UTC offset seconds per value (or one for all);
    None for no zone suffix."""
    n = len(micros)
    days, clock = np.divmod(micros, 86_400_000_000) if date else (None, micros)
    blocks: list[tuple[np.ndarray, np.ndarray | None]] = []  # (bytes, keep-mask or None = keep all)
    if date:
        day_block = np.empty((n, 11), np.uint8)
        day_block[:, 0:10] = _date_bytes(days)
        day_block[:, 10] = ord(" ")
        blocks.append((day_block, None))
    seconds, fraction = np.divmod(clock, 1_000_000)
    midnight = seconds >= 86400  # time '24:00:00' (Postgres and DuckDB allow it)
    clock_block = _clock_table()[np.where(midnight, 0, seconds)]
    if midnight.any():
        clock_block[midnight, 0:2] = np.frombuffer(b"24", np.uint8)
    blocks.append((clock_block, None))
    if fraction.any():
        high, low = np.divmod(fraction, 1000)
        digits3, zeros3 = _triplet_tables()
        fraction_block = np.empty((n, 7), np.uint8)
        fraction_block[:, 0] = ord(".")
        fraction_block[:, 1:4] = digits3[high]
        fraction_block[:, 4:7] = digits3[low]
        # Keep the fraction up to its last non-zero digit; no fraction at all drops the dot too.
        digits_kept = np.where(low != 0, 6 - zeros3[low], 3 - zeros3[high])
        keep = (np.arange(7)[None, :] <= digits_kept[:, None]) & (digits_kept[:, None] > 0)
        blocks.append((fraction_block, keep))
    if offsets is not None:
        offsets = np.broadcast_to(offsets, (n,))
        magnitude = np.abs(offsets)
        zone_block = np.empty((n, 9), np.uint8)
        zone_block[:, 0] = np.where(offsets < 0, ord("-"), ord("+"))
        _put_digits(zone_block, 1, magnitude // 3600, 2)
        zone_block[:, 3] = zone_block[:, 6] = ord(":")
        _put_digits(zone_block, 4, magnitude // 60 % 60, 2)
        _put_digits(zone_block, 7, magnitude % 60, 2)
        has_seconds = magnitude % 60 != 0
        has_minutes = (magnitude % 3600 != 0) | has_seconds
        blocks.append((zone_block[:, 0:3], None))
        if has_minutes.any():
            blocks.append((zone_block[:, 3:6], None if has_minutes.all() else np.repeat(has_minutes[:, None], 3, 1)))
        if has_seconds.any():
            blocks.append((zone_block[:, 6:9], None if has_seconds.all() else np.repeat(has_seconds[:, None], 3, 1)))
    matrix = np.concatenate([b for b, _ in blocks], axis=1) if len(blocks) > 1 else blocks[0][0]
    if all(k is None for _, k in blocks):
        return fixed_width(matrix, nulls_from)
    keep = np.concatenate([np.ones(b.shape, bool) if k is None else k for b, k in blocks], axis=1)
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
        offset = offset_text(delta)
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


def offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rem = divmod(abs(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}" + (f":{m:02d}" if m or s else "") + (f":{s:02d}" if s else "")


def intervals_text(arr: pa.Array) -> pa.Array:
    """Intervals: each distinct value formatted once in Python, then gathered (results repeat a lot)."""
    if len(arr) <= 64 or not pa.types.is_interval(arr.type):
        return python_each(arr, interval_text)
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


def time_tz_text(raw: bytes) -> str:
    """DuckDB TIMETZ: uint64 = micros << 24 | (57599 - offset seconds)."""
    bits = int.from_bytes(raw, "little")
    micros, offset = bits >> 24, 57599 - (bits & 0xFFFFFF)
    clock = (dt.datetime.min + dt.timedelta(microseconds=micros)).time().isoformat()
    clock = clock.rstrip("0").rstrip(".") if "." in clock else clock
    return clock + offset_text(offset)


@functools.lru_cache(maxsize=64)
def zoneinfo_of(name: str):
    from zoneinfo import ZoneInfo

    return dt.UTC if name == "UTC" else ZoneInfo(name)


def timestamp_value_text(micros: int, zone) -> str:
    instant = EPOCH + dt.timedelta(microseconds=micros)
    offset = ""
    if zone is not None:
        local = instant.replace(tzinfo=dt.UTC).astimezone(zone)
        offset = offset_text(int(local.utcoffset().total_seconds()))
        instant = local.replace(tzinfo=None)
    text = instant.isoformat(sep=" ")
    if instant.microsecond:
        text = text.rstrip("0")
    return text + offset
