"""Postgres -> Arrow/Iceberg type mapping: the one table, and how each column travels through COPY.

Every source column gets a ColumnPlan: the SQL expression the COPY query selects (so Postgres prints a form
pyarrow parses fast and exactly), the Arrow type pyarrow.csv decodes that text to, and a vectorised Arrow step
to the final type. Rules worth knowing:

| Postgres                         | Arrow / Iceberg                | how                                            |
|----------------------------------|--------------------------------|------------------------------------------------|
| bool                             | bool / boolean                 | t/f                                            |
| int2, int4                       | int32 / int                    |                                                |
| int8, oid                        | int64 / long                   | never decimal                                  |
| float4, float8                   | float32/float64                | NaN and +-Infinity kept                        |
| numeric(p,s), p <= 38            | decimal128(p,s)                | NaN/Infinity in such a column: the table fails |
|                                  |                                | with a clear error (never a silent NULL)       |
| numeric (no typmod), numeric(p>38)| decimal128(38, s)             | s = the largest scale found in the column by a |
|                                  |                                | pre-scan in the same snapshot; if integer      |
|                                  |                                | digits + s > 38 or NaN/Infinity occur: text    |
|                                  |                                | (exact digits kept), reported as a note. The   |
|                                  |                                | pre-scan is one extra aggregate pass, only for |
|                                  |                                | tables with such columns                       |
| numeric[] without typmod         | list<string>                   | exact text, reported as a note                 |
| date                             | date32 / date                  | BC and 5-digit years exact; +-infinity stored  |
|                                  |                                | as +-INT32_MAX days = DuckDB's infinity; a COPY|
|                                  |                                | reads day numbers (cheaper than ISO text)      |
| timestamp                        | timestamp[us] / timestamp      | same, +-INT64_MAX us for +-infinity            |
| timestamptz                      | timestamp[us, UTC]/timestamptz | converted to UTC                               |
| time                             | time64[us] / time              |                                                |
| timetz                           | string                         | Postgres's text ('12:00:00.123456-05'): Iceberg|
|                                  |                                | has no timetz; served as DuckDB TIMETZ, so the |
|                                  |                                | offset is kept (tables written before kept a   |
|                                  |                                | UTC time; served so until their next full sync)|
| bytea                            | binary                         | raw bytes                                      |
| interval                         | string                         | Postgres's own text format (IntervalStyle      |
|                                  |                                | postgres): '1 year 2 mons 3 days 04:05:06'     |
| char(n) (bpchar)                 | string                         | trailing blanks trimmed (Postgres's ::text)    |
| json, jsonb, text, varchar, uuid, inet, cidr, macaddr, geometric, xml, tsvector, money, bit,   |
| enums (labels + OID recorded, served as a DuckDB ENUM), ranges, extension and any other type     |
|                                                                  | string: the type's own text output  |
| arrays of any of these           | list<element>                  | multi-dimensional arrays are flattened         |
| domains                          | as their base type             |                                                |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from bemidb.quoting import quote_ident

PG_TYPE_KEY = b"pg_type"
DOC_KEY = b"doc"

DATE_INFINITY = 2**31 - 1  # DuckDB reads these Parquet values back as 'infinity' / '-infinity'
TIMESTAMP_INFINITY = 2**63 - 1
MAX_DECIMAL_PRECISION = 38


@dataclass(frozen=True)
class PgColumn:
    """A source column as the Postgres catalog describes it."""

    name: str
    pg_type: str  # format_type(): 'numeric(10,2)', 'text[]', 'timestamp with time zone', 'my_enum'
    base: str  # typname of the scalar base type: domains resolved, arrays' element ('int4', 'numeric', ...)
    is_array: bool
    typmod: int  # of the base type (-1 when none)
    not_null: bool = False
    comment: str | None = None

    @property
    def numeric_precision_scale(self) -> tuple[int, int] | None:
        if self.base != "numeric" or self.typmod < 4:
            return None
        return ((self.typmod - 4) >> 16) & 0xFFFF, (self.typmod - 4) & 0xFFFF


@dataclass(frozen=True)
class ColumnPlan:
    column: PgColumn
    arrow_type: pa.DataType  # final type written to Iceberg
    select_sql: str  # expression in the COPY query (ends up as one CSV field)
    csv_type: pa.DataType  # what pyarrow.csv decodes that field to
    convert: Callable[[pa.Array], pa.Array] | None  # csv_type -> arrow_type, vectorised; None = identity
    reported_type: str  # pg type recorded for clients (differs from pg_type only on a text fallback)
    note: str | None = None  # said to the user (e.g. a fallback to text)
    optimistic: bool = False  # a parse failure means "re-run this table with safe=True", not "bad data"

    @property
    def arrow_field(self) -> pa.Field:
        metadata = {PG_TYPE_KEY: self.reported_type.encode()}
        if self.column.comment:
            metadata[DOC_KEY] = self.column.comment.encode()
        return pa.field(self.column.name, self.arrow_type, nullable=not self.column.not_null, metadata=metadata)


@dataclass(frozen=True)
class NumericScan:
    """What a pre-scan found in an unconstrained numeric column."""

    max_scale: int
    max_integer_digits: int
    has_special: bool  # NaN or +-Infinity




# ---------------------------------------------------------------------------------------------------------
# Scalar kinds. Each: final Arrow type, SQL text form of value `x`, CSV type, text -> final converter.


def _to_bool(text: pa.Array) -> pa.Array:
    # bool::text is 'true'/'false' (COPY prints t/f, but array elements go through ::text)
    return pc.if_else(pc.is_null(text), None, pc.is_in(text, pa.array(["t", "true"])))


def _cast(to: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    return lambda array: pc.cast(array, to)


def _special_or_cast(to: pa.DataType, via: pa.DataType) -> Callable[[pa.Array], pa.Array]:
    """Text values are ISO text, or '@<integer>' (days/us since epoch) for what ISO cannot write (BC dates,
    years past 9999, infinity); both become `to` without a Python object per row."""

    # Text carries no zone (Postgres prints UTC wall time): parse as naive, then label UTC (zero-copy).
    parse_as = pa.timestamp(to.unit) if pa.types.is_timestamp(to) and to.tz else to

    def convert(text: pa.Array) -> pa.Array:
        special = pc.starts_with(text, "@")
        if not pc.any(special).as_py():
            return pc.cast(pc.cast(text, parse_as), to)
        iso = pc.cast(pc.if_else(special, None, text), parse_as)
        raw = pc.cast(pc.cast(pc.utf8_slice_codeunits(pc.if_else(special, text, None), 1), pa.int64()), via)
        return pc.cast(pc.if_else(special, pc.cast(raw, parse_as), iso), to)

    return convert


def _date_sql(x: str) -> str:
    return (f"CASE WHEN {x} >= '0001-01-01' AND {x} < '10000-01-01' THEN {x}::text "
            f"WHEN {x} = 'infinity' THEN '@{DATE_INFINITY}' WHEN {x} = '-infinity' THEN '@-{DATE_INFINITY}' "
            f"ELSE '@' || ({x} - DATE '1970-01-01')::text END")


def _date_days_sql(x: str) -> str:
    """A date as its day number: Postgres prints a small integer (~1/3 less backend time than ISO text) and
    Arrow parses it as int32, cast to date32. Exact for every date (BC, 5-digit years); isfinite() first
    keeps infinity out of the subtraction (it would fail the COPY) at no measurable cost; NULL stays NULL."""
    return (f"CASE WHEN isfinite({x}) THEN {x} - DATE '1970-01-01' "
            f"WHEN {x} > '1970-01-01' THEN {DATE_INFINITY} WHEN {x} < '1970-01-01' THEN -{DATE_INFINITY} END")


def _timestamp_sql(x: str) -> str:
    return (f"CASE WHEN {x} >= '0001-01-01' AND {x} < '10000-01-01' THEN {x}::timestamp::text "
            f"WHEN {x} = 'infinity' THEN '@{TIMESTAMP_INFINITY}' "
            f"WHEN {x} = '-infinity' THEN '@-{TIMESTAMP_INFINITY}' "
            f"ELSE '@' || (extract(epoch FROM {x}) * 1000000)::int8::text END")


def _time_sql(x: str) -> str:
    return f"(extract(epoch FROM {x}) * 1000000)::int8"


def _time_from_micros(array: pa.Array) -> pa.Array:
    return pc.cast(pc.cast(array, pa.int64()), pa.time64("us"))


def value_bytes(array: pa.Array) -> pa.Buffer:
    """The data buffer of a string/binary array between its first and last offsets (zero-copy): for
    values that each end with a newline, exactly the document they form together."""
    offsets = pa.Array.from_buffers(pa.int32(), len(array) + 1, [None, array.buffers()[1]], offset=array.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    return array.buffers()[2].slice(start, end - start)


_duckdb = None


def hex_to_binary(array: pa.Array) -> pa.Array:
    """encode(bytea, 'hex') text -> binary, vectorised by DuckDB's unhex (pyarrow has no hex kernel)."""
    global _duckdb
    import duckdb

    if _duckdb is None:
        _duckdb = duckdb.connect()
    hex_table = pa.table({"h": array})  # noqa: F841 - scanned by name by DuckDB's replacement scan
    result = _duckdb.sql("SELECT unhex(h) AS b FROM hex_table").to_arrow_table().column("b")
    result = result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result
    return result.cast(pa.binary())


@dataclass(frozen=True)
class _Kind:
    arrow_type: pa.DataType
    sql: Callable[[str], str] | None  # text form of a value; None = Postgres's own output
    csv_type: pa.DataType  # top-level CSV decode type
    from_csv: Callable[[pa.Array], pa.Array] | None
    from_text: Callable[[pa.Array], pa.Array]  # array elements arrive as text
    # Optimistic plan: Postgres's own output parsed straight into the final type. It fails only on values
    # ISO text cannot carry (BC, years past 9999, infinity); the syncer then re-runs the table "safe".
    direct: bool = False


_TS = pa.timestamp("us")
_TSTZ = pa.timestamp("us", tz="UTC")
_STRING = _Kind(pa.string(), None, pa.string(), None, lambda a: a)

KINDS: dict[str, _Kind] = {
    "bool": _Kind(pa.bool_(), None, pa.bool_(), None, _to_bool),
    "int2": _Kind(pa.int32(), None, pa.int32(), None, _cast(pa.int32())),
    "int4": _Kind(pa.int32(), None, pa.int32(), None, _cast(pa.int32())),
    "int8": _Kind(pa.int64(), None, pa.int64(), None, _cast(pa.int64())),
    "oid": _Kind(pa.int64(), None, pa.int64(), None, _cast(pa.int64())),
    "float4": _Kind(pa.float32(), None, pa.float32(), None, _cast(pa.float32())),
    "float8": _Kind(pa.float64(), None, pa.float64(), None, _cast(pa.float64())),
    "date": _Kind(pa.date32(), _date_sql, pa.string(), _special_or_cast(pa.date32(), pa.int32()),
                  _special_or_cast(pa.date32(), pa.int32()), direct=True),
    "timestamp": _Kind(_TS, _timestamp_sql, pa.string(), _special_or_cast(_TS, pa.int64()),
                       _special_or_cast(_TS, pa.int64()), direct=True),
    "timestamptz": _Kind(_TSTZ, _timestamp_sql, pa.string(), _special_or_cast(_TSTZ, pa.int64()),
                         _special_or_cast(_TSTZ, pa.int64()), direct=True),
    "time": _Kind(pa.time64("us"), _time_sql, pa.int64(), _time_from_micros, _time_from_micros),
    # timetz: Postgres's text, with its offset (see _STRING); Iceberg's time has no zone
    "bytea": _Kind(pa.binary(), lambda x: f"encode({x}, 'hex')", pa.string(), hex_to_binary, hex_to_binary),
    # char(n): Postgres ignores trailing blanks when comparing bpchar (r_name = 'EUROPE' is true for a padded
    # value); DuckDB strings do not. Store Postgres's own char -> text cast (blanks trimmed) so queries keep
    # their Postgres meaning; the padding is lost on display only.
    "bpchar": _Kind(pa.string(), lambda x: f"{x}::text", pa.string(), None, lambda a: a),
    # interval, json, jsonb and every other type: Postgres's text output, as a string (see _STRING).
}


def _numeric_kind(column: PgColumn, scan: NumericScan | None) -> tuple[_Kind | None, str | None]:
    """The decimal kind of a numeric column, or (None, why) when it must travel as text."""
    ps = column.numeric_precision_scale
    if ps and ps[0] <= MAX_DECIMAL_PRECISION:
        precision, scale = ps
    elif scan is None:
        return None, "no pre-scan of its values (array)"
    elif scan.has_special:
        return None, "it holds NaN or Infinity"
    elif scan.max_integer_digits + scan.max_scale > MAX_DECIMAL_PRECISION:
        return None, (f"values need {scan.max_integer_digits} integer + {scan.max_scale} fraction digits, "
                      f"more than decimal({MAX_DECIMAL_PRECISION})")
    else:
        precision, scale = MAX_DECIMAL_PRECISION, scan.max_scale
    decimal = pa.decimal128(precision, scale)
    return _Kind(decimal, None, decimal, None, _cast(decimal)), None


def needs_numeric_scan(column: PgColumn) -> bool:
    ps = column.numeric_precision_scale
    return column.base == "numeric" and not column.is_array and not (ps and ps[0] <= MAX_DECIMAL_PRECISION)


def numeric_scan_sql(column: PgColumn) -> str:
    """Aggregates for one unconstrained numeric column: max scale, max integer digits, any NaN/Infinity."""
    x = quote_ident(column.name)
    special = f"{x}::text IN ('NaN', 'Infinity', '-Infinity')"
    return (f"coalesce(max(CASE WHEN {special} THEN 0 ELSE scale({x}) END), 0), "
            f"coalesce(max(CASE WHEN {special} THEN 0 ELSE length(trunc(abs({x}))::text) END), 0), "
            f"coalesce(bool_or({special}), false)")


def plan_column(column: PgColumn, scan: NumericScan | None = None, safe: bool = False,
                copy: bool = False) -> ColumnPlan:
    """How this column is selected, decoded and typed. Unknown types never fail: they travel as text.

    safe=False lets dates and timestamps travel as Postgres prints them (fastest); safe=True has Postgres
    rewrite the values ISO text cannot hold, at some server CPU cost. copy=True (a bulk COPY, which chooses its
    own expressions) sends dates as day numbers, exact for every date, safe or not; without it a date plan
    parses Postgres's own text, as CDC's in-process typing needs (pgoutput sends that text)."""
    x = quote_ident(column.name)
    note = None
    reported = column.pg_type
    if column.base == "numeric":
        kind, why = _numeric_kind(column, scan)
        if kind is None:
            kind = _STRING
            reported = "text[]" if column.is_array else "text"
            note = f"column {column.name} ({column.pg_type}) synced as text: {why}"
    else:
        kind = KINDS.get(column.base, _STRING)
    if not column.is_array:
        if copy and column.base == "date":
            return ColumnPlan(column, kind.arrow_type, _date_days_sql(x), pa.int32(), _cast(pa.date32()),
                              reported, note)
        if kind.direct and not safe:
            return ColumnPlan(column, kind.arrow_type, x, kind.arrow_type, None, reported, note, optimistic=True)
        sql = kind.sql(x) if kind.sql else x
        return ColumnPlan(column, kind.arrow_type, sql, kind.csv_type, kind.from_csv, reported, note)
    element_sql = f"({kind.sql('u.x')})::text" if kind.sql else "u.x::text"
    sql = (f"CASE WHEN {x} IS NOT NULL THEN array_to_json(ARRAY(SELECT {element_sql} "
           f"FROM unnest({x}) WITH ORDINALITY AS u(x, n) ORDER BY u.n))::text END")
    list_type = pa.list_(kind.arrow_type)
    return ColumnPlan(column, list_type, sql, pa.string(), _json_list_converter(kind), reported, note)


def _json_list_converter(kind: _Kind) -> Callable[[pa.Array], pa.Array]:
    """'["a", null, "b"]' JSON text (one array per row) -> list<final>, through pyarrow's JSON reader."""
    schema = pa.schema([pa.field("v", pa.list_(pa.string()))])

    def convert(text: pa.Array) -> pa.Array:
        if isinstance(text, pa.ChunkedArray):
            text = pa.concat_arrays(text.chunks) if text.num_chunks else pa.array([], pa.string())
        rows = pc.binary_join_element_wise('{"v":', pc.fill_null(text, "null"), "}\n", "")
        if len(rows) == 0:
            return pa.array([], pa.list_(kind.arrow_type))
        body = value_bytes(rows)  # exactly the NDJSON document
        lists = pa_json.read_json(pa.BufferReader(body),
                                  read_options=pa_json.ReadOptions(use_threads=False,
                                                                   block_size=max(len(body) + 1, 1 << 20)),
                                  parse_options=pa_json.ParseOptions(explicit_schema=schema)).column("v")
        lists = pa.concat_arrays(lists.chunks) if lists.num_chunks != 1 else lists.chunk(0)
        values = kind.from_text(lists.values)
        return pa.ListArray.from_arrays(lists.offsets, values, mask=lists.is_null())

    return convert
