"""Results of a few rows are encoded per value (codec/small_rows.py, formatters chosen once per result shape);
every other result column at a time (the vectorised path). Both must give the same DataRow bytes: the same
Arrow data, from DuckDB as the server's engine makes it and from pyarrow for the layouts DuckDB does not
produce, is encoded both ways, in text and binary, in several session time zones, with NULLs and several rows."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from bemidb.server.codec.encoder import DataRowEncoder

# (DuckDB expression, what it covers): each becomes a column whose rows are the values listed and a NULL.
VALUES = {
    "boolean": "[true, false]",
    "tinyint": "[-128, 127]", "smallint": "[-32768, 7]", "integer": "[-2147483648, 2147483647]",
    "bigint": "[-9223372036854775808, 42]", "hugeint": "[-170141183460469231731687303715884105727, 1]",
    "utinyint": "[0, 255]", "usmallint": "[65535, 1]", "uinteger": "[4294967295, 2]",
    "ubigint": "[18446744073709551615, 3]",
    "float": "['nan'::float, 'inf'::float, '-inf'::float, 1.5e-7, 3.4e38, 0.1, -0.0, 123456.7]",
    "double": "['nan'::double, '-inf'::double, 1e-5, 1e-4, 1e15, 1e16, 0.1 + 0.2, -0.0, 5e-324]",
    "decimal(4,1)": "[-999.9, 0.0, 12.5]", "decimal(18,3)": "[123456789012345.678, -0.001]",
    "decimal(38,10)": "[1234567890123456789012345678.0123456789, -1e-10]",
    "varchar": "['', 'plain', 'tab\tnew\nline', 'üñí©ødé 🎉', 'back\\\\slash', '\"quoted\"']",
    "blob": "['\\x00\\xFF'::blob, ''::blob, 'abc'::blob]",
    "date": "['0001-01-01'::date, '9999-12-31'::date, '2024-02-29'::date, '1970-01-01'::date, "
            "'0044-03-15 (BC)'::date, '10000-01-01'::date, 'infinity'::date, '-infinity'::date]",
    "time": "['00:00:00'::time, '23:59:59.999999'::time, '12:30:00.5'::time]",
    "timetz": "['12:30:00+02'::timetz, '00:00:00-11:30'::timetz]",
    "timestamp": "['2024-02-29 12:30:00.000001'::timestamp, '0001-01-01 00:00:00'::timestamp, "
                 "'9999-12-31 23:59:59.999999'::timestamp, '1969-12-31 23:59:59.5'::timestamp, "
                 "make_timestamp(-43, 3, 15, 12, 0, 0.0), '12000-01-01 00:00:00'::timestamp, 'infinity'::timestamp]",
    "timestamp_s": "['2024-02-29 12:30:00'::timestamp_s, '1900-01-01 00:00:00'::timestamp_s]",
    "timestamp_ms": "['2024-02-29 12:30:00.123'::timestamp_ms, '1960-06-01 00:00:00.5'::timestamp_ms]",
    "timestamp_ns": "['2024-02-29 12:30:00.123456789'::timestamp_ns, '1970-01-01 00:00:00'::timestamp_ns]",
    "timestamptz": "['2024-03-10 06:30:00+00'::timestamptz, '2024-10-27 01:30:00+00'::timestamptz, "
                   "'1901-12-13 20:45:52+00'::timestamptz, '0001-01-01 00:00:00+00'::timestamptz, "
                   "'-infinity'::timestamptz]",
    "interval": "[interval '1 day 02:00:00', interval '-3 months 4 seconds', interval '0 seconds']",
    "uuid": "['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '00000000-0000-0000-0000-000000000000'::uuid]",
    "json": "['{\"a\": [1, 2]}'::json, '\"text\"'::json, 'null'::json]",
    "integer[]": "[[1, NULL, 3], [], [7]]", "varchar[]": "[['a', 'b c'], [NULL], []]",
    "struct": "[{'k': 1, 'v': 'one'}, {'k': NULL, 'v': 'two'}]",
    "map": "[MAP {'a': 1, 'b': 2}, MAP {}]",
    "enum": "['sad'::mood, 'happy'::mood]",
    "bit": "['1011'::bit, '0'::bit]",
}
ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Europe/Paris"]


@pytest.fixture(scope="module")
def batches() -> dict[str, pa.RecordBatch]:
    con = duckdb.connect()
    con.execute("SET arrow_lossless_conversion = true")  # as the server's engine does
    con.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    out = {}
    for name, values in VALUES.items():
        table = con.sql(f"SELECT unnest({values} || [NULL]) AS v").to_arrow_table().combine_chunks()
        out[name] = table.to_batches()[0]
    return out


def _both_ways(batch: pa.RecordBatch, fmt: int, zone: str) -> tuple[bytes | type, bytes | type]:
    results = []
    for small_rows in (64, 0):  # per value, then column at a time
        try:
            results.append(DataRowEncoder(batch.schema, [fmt], zone, small_rows=small_rows).encode(batch))
        except (ValueError, TypeError, pa.ArrowException) as exc:  # a value neither path can send
            results.append(type(exc))
    return results[0], results[1]


@pytest.mark.parametrize("name", list(VALUES))
@pytest.mark.parametrize("fmt", [0, 1])
def test_few_rows_encode_as_the_vectorised_path(batches, name, fmt):
    batch = batches[name]
    for zone in ZONES:
        small, vectorised = _both_ways(batch, fmt, zone)
        assert small == vectorised, (name, fmt, zone)
        # one row at a time too: the formatters are chosen once and serve every batch of the shape
        encoder = DataRowEncoder(batch.schema, [fmt], zone)
        if isinstance(small, bytes):
            assert b"".join(encoder.encode(batch.slice(i, 1)) for i in range(batch.num_rows)) == small


def _layouts() -> dict[str, pa.Array]:
    """Layouts DuckDB does not send but a reshaped or other result may: the formatters' other branches."""
    days = [-719162, 2932896, 0, None, -719163, 2932897]  # 0001-01-01, 9999-12-31, 1970, NULL, then beyond
    micros = [0, 1_709_209_800_000_001, None, -62_135_596_800_000_000]
    return {
        "date32 within": pa.array(days[:4], pa.int32()).view(pa.date32()),
        "date32 beyond": pa.array(days, pa.int32()).view(pa.date32()),
        "large_string": pa.array(["a", None, "ü"], pa.large_string()),
        "string_view": pa.array(["a", None, "long enough to leave the view inline"], pa.string_view()),
        "dictionary": pa.array(["x", None, "y", "x"]).dictionary_encode(),
        "timestamp us": pa.array(micros, pa.timestamp("us")),
        "timestamp us tz": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "timestamp ns tz": pa.array([m * 1000 if m is not None else None for m in micros[:3]],
                                    pa.timestamp("ns", tz="America/New_York")),
        "timestamp s": pa.array([0, 1_700_000_000, None], pa.timestamp("s")),
        "sliced": pa.array([1, 2, None, 4, 5], pa.int64()).slice(1, 3),
        "bool8": pa.array([1, 0, None], pa.int8()).cast(pa.bool8()) if hasattr(pa, "bool8") else pa.array([True]),
        "float32": pa.array([0.1, None, 1e-5, 16777216.0], pa.float32()),
        "float16": pa.array([0.5, None], pa.float16()),
    }


@pytest.mark.parametrize("name", list(_layouts()))
@pytest.mark.parametrize("fmt", [0, 1])
def test_other_arrow_layouts_encode_as_the_vectorised_path(name, fmt):
    batch = pa.record_batch([_layouts()[name]], names=["v"])
    for zone in ZONES:
        small, vectorised = _both_ways(batch, fmt, zone)
        assert small == vectorised, (name, fmt, zone)


def test_a_wide_row_of_every_type_encodes_as_the_vectorised_path(batches):
    """One row of every column at once, as a lookup's result: the per-column formatters side by side."""
    first = {name: batch.column(0).slice(0, 1) for name, batch in batches.items()}
    batch = pa.record_batch(list(first.values()), names=list(first))
    for zone in ZONES:
        assert DataRowEncoder(batch.schema, [], zone).encode(batch) == \
            DataRowEncoder(batch.schema, [], zone, small_rows=0).encode(batch)
