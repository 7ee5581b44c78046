"""Bind parameters: Postgres wire values (text or binary) -> Python values DuckDB binds with their real type.

Binding typed Python values (int, Decimal, date, datetime, UUID, bytes, list) rather than strings lets
DuckDB compare `date_col = $1` without string casts. A value that does not parse raises ValueError with a
Postgres-like message; the session answers it with SQLSTATE 22P02 (text) or 22P03 (binary).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import uuid
from decimal import Decimal, localcontext

from bemidb.server.catalog.pg_types import BY_OID, PgType

_PG_EPOCH = dt.datetime(2000, 1, 1)
_PG_EPOCH_DATE = dt.date(2000, 1, 1)
_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}
_INTS = {20, 21, 23, 26, 24, 28, 29, 2205, 2206, 4089, 4096}


def decode_parameter(data: bytes | None, type_oid: int, fmt: int) -> object:
    """One Bind parameter. `type_oid` 0 (unspecified) and unknown OIDs give the text as str."""
    if data is None:
        return None
    t = BY_OID.get(type_oid)
    try:
        if fmt == 1:
            return _binary(bytes(data), t)
        return _text(bytes(data).decode("utf-8"), t)
    except (ValueError, struct.error, UnicodeDecodeError, ArithmeticError) as exc:
        name = t.name if t else str(type_oid)
        raise ValueError(f"invalid {'binary' if fmt == 1 else 'text'} value for parameter of type {name}: "
                         f"{exc}") from None


def infer_parameter_type(value: object) -> int:
    """The OID to report in ParameterDescription for a Python value (bool before int: bool is an int)."""
    if isinstance(value, bool):
        return 16
    if isinstance(value, int):
        return 20
    if isinstance(value, float):
        return 701
    if isinstance(value, Decimal):
        return 1700
    if isinstance(value, dt.datetime):
        return 1184 if value.tzinfo else 1114
    if isinstance(value, dt.date):
        return 1082
    if isinstance(value, dt.time):
        return 1083
    if isinstance(value, dt.timedelta):
        return 1186
    if isinstance(value, uuid.UUID):
        return 2950
    if isinstance(value, bytes):
        return 17
    return 25


# --- text format ---------------------------------------------------------------------------------------

def _text(s: str, t: PgType | None) -> object:
    if t is None:
        return s
    name = t.name
    if t.is_array:
        element = BY_OID[t.elem]
        return parse_array_literal(s, lambda item: _text(item, element))
    if name == "bool":
        low = s.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f'invalid input syntax for type boolean: "{s}"')
    if t.oid in _INTS:
        return int(s.strip())
    if name in ("float4", "float8"):
        return float(s.strip())
    if name == "numeric":
        return Decimal(s.strip())
    if name == "date":
        return _date_text(s.strip())
    if name == "time":
        return dt.time.fromisoformat(s.strip())
    if name in ("timestamp", "timestamptz"):
        return _timestamp_text(s.strip(), name == "timestamptz")
    if name == "uuid":
        return uuid.UUID(s.strip())
    if name == "bytea":
        return bytes.fromhex(s[2:]) if s.startswith("\\x") else _bytea_escape(s)
    if name == "interval":
        return s  # DuckDB parses Postgres interval text itself ('1 day 02:00:00')
    return s


# Postgres's date input: an ISO date, then what a timestamp could add (time, zone offset or name) and BC/AD.
# PgJDBC's setDate sends '1990-06-01 +00'; the extra parts do not change the date.
_DATE = re.compile(r"^(?P<y>\d{1,7})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?P<rest>.*?)(?:\s*(?P<era>BC|AD))?$", re.I)
_AFTER_DATE = re.compile(r"^(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*"
                         r"(?:[+-]\d{1,2}(?::?\d{2}){0,2}|Z|[A-Za-z][A-Za-z0-9_/+-]*)?$")
_SPECIAL = {"infinity": "infinity", "+infinity": "infinity", "-infinity": "-infinity"}


def _date_text(s: str) -> object:
    low = s.lower()
    if low in _SPECIAL:
        return _SPECIAL[low]
    if low == "epoch":
        return dt.date(1970, 1, 1)
    m = _DATE.match(s)
    if m is None or not _AFTER_DATE.match(m.group("rest")):
        raise ValueError(f'invalid input syntax for type date: "{s}"')
    year, month, day = int(m.group("y")), int(m.group("m")), int(m.group("d"))
    if (m.group("era") or "").upper() == "BC":
        dt.date(2000, month, day)  # month and day checked (2000 is a leap year, as 1 BC is)
        return f"{year:04d}-{month:02d}-{day:02d} (BC)"  # beyond Python's dates: DuckDB's BC syntax
    return dt.date(year, month, day)


def _timestamp_text(s: str, with_zone: bool) -> object:
    low = s.lower()
    if low in _SPECIAL:
        return _SPECIAL[low]
    if low == "epoch":
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC if with_zone else None)
    try:
        value = dt.datetime.fromisoformat(s)
    except ValueError:
        return s  # zone names ('... UTC', '... Europe/Paris') and other forms: DuckDB casts the text
    if with_zone and value.tzinfo is None:
        return s  # no offset: DuckDB applies the session TimeZone to the text
    if not with_zone and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # timestamp without time zone ignores a zone, as Postgres does
    return value


def _bytea_escape(s: str) -> bytes:
    """bytea 'escape' input: backslash octal (\\123) and doubled backslashes."""
    out = bytearray()
    i = 0
    raw = s.encode()
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1:i + 2] == b"\\":
            out.append(0x5C)
            i += 2
        elif raw[i] == 0x5C:
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return bytes(out)


def parse_array_literal(s: str, element) -> list:
    """`{1,2,NULL}`, `{"a b","c\\"d"}`, `{{1,2},{3,4}}` -> nested Python lists (elements via `element`)."""
    pos = 0
    s = s.strip()
    if s.startswith("[") and "=" in s:  # explicit bounds: '[0:1]={1,2}'
        s = s[s.index("=") + 1:]

    def parse() -> list:
        nonlocal pos
        if s[pos] != "{":
            raise ValueError(f'malformed array literal: "{s}"')
        pos += 1
        items: list = []
        if s[pos] == "}":
            pos += 1
            return items
        while True:
            if s[pos] == "{":
                items.append(parse())
            elif s[pos] == '"':
                pos += 1
                buf = []
                while s[pos] != '"':
                    if s[pos] == "\\":
                        pos += 1
                    buf.append(s[pos])
                    pos += 1
                pos += 1
                items.append(element("".join(buf)))
            else:
                start = pos
                while s[pos] not in ",}":
                    pos += 1
                token = s[start:pos].strip()
                items.append(None if token.upper() == "NULL" else element(token))
            while s[pos] == " ":
                pos += 1
            if s[pos] == ",":
                pos += 1
                continue
            if s[pos] == "}":
                pos += 1
                return items
            raise ValueError(f'malformed array literal: "{s}"')

    try:
        result = parse()
    except IndexError:
        raise ValueError(f'malformed array literal: "{s}"') from None
    if s[pos:].strip():
        raise ValueError(f'malformed array literal: "{s}"')
    return result


# --- binary format -------------------------------------------------------------------------------------

_FIXED = {name: struct.Struct(fmt).unpack for name, fmt in (  # compiled once: a Bind decodes one per value
    ("int2", ">h"), ("int4", ">i"), ("int8", ">q"), ("oid", ">I"), ("float4", ">f"), ("float8", ">d"),
    ("regclass", ">I"), ("regtype", ">I"), ("regproc", ">I"), ("xid", ">I"), ("cid", ">I"), ("regnamespace", ">I"),
    ("regrole", ">I"))}


def _binary(b: bytes, t: PgType | None) -> object:
    if t is None:
        return b.decode("utf-8")
    name = t.name
    if t.is_array:
        return _binary_array(b)
    unpack = _FIXED.get(name)
    if unpack is not None:
        return unpack(b)[0]
    if name == "bool":
        if len(b) != 1:
            raise ValueError("bool takes 1 byte")
        return b != b"\x00"
    if name == "bytea":
        return b
    if name == "uuid":
        return uuid.UUID(bytes=b)
    if name == "date":
        (days,) = struct.unpack(">i", b)
        if days in (2**31 - 1, -(2**31)):
            return "infinity" if days > 0 else "-infinity"
        return _PG_EPOCH_DATE + dt.timedelta(days=days)
    if name == "time":
        (micros,) = struct.unpack(">q", b)
        return (dt.datetime.min + dt.timedelta(microseconds=micros)).time()
    if name in ("timestamp", "timestamptz"):
        (micros,) = struct.unpack(">q", b)
        if micros in (2**63 - 1, -(2**63)):
            return "infinity" if micros > 0 else "-infinity"
        value = _PG_EPOCH + dt.timedelta(microseconds=micros)
        return value.replace(tzinfo=dt.UTC) if name == "timestamptz" else value
    if name == "interval":
        micros, days, months = struct.unpack(">qii", b)
        if months:
            return _interval_text(months, days, micros)
        return dt.timedelta(days=days, microseconds=micros)
    if name == "numeric":
        return numeric_from_binary(b)
    if name == "jsonb":
        if not b or b[0] != 1:
            raise ValueError("unsupported jsonb version")
        return b[1:].decode("utf-8")
    if name == "json":
        json.loads(b)  # reject garbage early, but pass the text through unchanged
        return b.decode("utf-8")
    return b.decode("utf-8")


def _interval_text(months: int, days: int, micros: int) -> str:
    """An interval with months (no timedelta form) as text DuckDB parses."""
    return f"{months} months {days} days {micros} microseconds"


def numeric_from_binary(b: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack(">hhHh", b[:8])
    if sign == 0xC000:
        return Decimal("NaN")
    if sign in (0xD000, 0xF000):
        return Decimal("Infinity") if sign == 0xD000 else Decimal("-Infinity")
    digits = struct.unpack(f">{ndigits}H", b[8:8 + 2 * ndigits])
    value = 0
    for d in digits:
        value = value * 10000 + d
    exponent = (weight - ndigits + 1) * 4
    with localcontext() as ctx:
        ctx.prec = 1000  # numeric has up to 131072 digits before and 16383 after the point
        result = Decimal(value).scaleb(exponent)
        if sign == 0x4000:
            result = -result
        return result.quantize(Decimal(1).scaleb(-dscale)) if dscale or exponent < 0 else result


def _binary_array(b: bytes) -> list:
    ndim, _has_null, elem_oid = struct.unpack(">iii", b[:12])
    if ndim == 0:
        return []
    dims = [struct.unpack(">ii", b[12 + 8 * i:20 + 8 * i])[0] for i in range(ndim)]
    pos = 12 + 8 * ndim
    element = BY_OID.get(elem_oid)
    flat = []
    for _ in range(_product(dims)):
        (length,) = struct.unpack(">i", b[pos:pos + 4])
        pos += 4
        if length < 0:
            flat.append(None)
        else:
            flat.append(_binary(b[pos:pos + length], element))
            pos += length
    return _reshape(flat, dims)


def _product(dims: list[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


def _reshape(flat: list, dims: list[int]) -> list:
    if len(dims) == 1:
        return flat
    step = len(flat) // dims[0]
    return [_reshape(flat[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]
