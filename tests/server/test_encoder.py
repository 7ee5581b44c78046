"""The result encoder against the real Postgres 15: the same values computed by DuckDB (as the server
computes them) and by Postgres must give byte-identical wire values, in text and binary format, with the
same type OIDs and typmods."""

from __future__ import annotations

import struct

import duckdb
import psycopg
import pytest

from bemidb.server.catalog.pg_types import BY_OID
from bemidb.server.codec.binary_format import supports_binary
from bemidb.server.codec.encoder import DataRowEncoder

# (DuckDB expression, Postgres expression). Both sides must denote the same value.
CASES = [
    ("true", "true"), ("false", "false"),
    ("(-32768)::SMALLINT", "(-32768)::int2"), ("32767::SMALLINT", "32767::int2"),
    ("(-2147483648)::INTEGER", "(-2147483648)::int4"), ("2147483647::INTEGER", "2147483647::int4"),
    ("(-9223372036854775808)::BIGINT", "(-9223372036854775808)::int8"),
    ("9223372036854775807::BIGINT", "9223372036854775807::int8"),
    ("1.50::DECIMAL(10,2)", "1.50::numeric(10,2)"), ("(-12345.00)::DECIMAL(10,2)", "(-12345.00)::numeric(10,2)"),
    ("'12345678901234567890123456789012345678'::DECIMAL(38,0)", "'12345678901234567890123456789012345678'::numeric(38,0)"),
    ("'-99999999999999999999999999.999999999999'::DECIMAL(38,12)", "'-99999999999999999999999999.999999999999'::numeric(38,12)"),
    ("0.000123::DECIMAL(10,6)", "0.000123::numeric(10,6)"), ("0::DECIMAL(5,2)", "0::numeric(5,2)"),
    ("(-0.5)::DECIMAL(3,1)", "(-0.5)::numeric(3,1)"), ("'10000.0001'::DECIMAL(12,4)", "'10000.0001'::numeric(12,4)"),
    ("'100000000'::DECIMAL(18,0)", "'100000000'::numeric(18,0)"),
    ("'123456789012345678901234567890'::HUGEINT", "'123456789012345678901234567890'::numeric"),
    ("(-5)::HUGEINT", "(-5)::numeric"), ("4000000000::UINTEGER", "4000000000::oid"),
    ("[1, 4000000000]::UINTEGER[]", "ARRAY[1, 4000000000]::oid[]"), ("65535::USMALLINT", "65535::int4"),
    ("255::UTINYINT", "255::int2"), ("(-128)::TINYINT", "(-128)::int2"), ("'-123456789012345678901234567890123456789012'::VARINT",
                                         "'-123456789012345678901234567890123456789012'::numeric"),
    ("0::VARINT", "0::numeric"), ("'340282366920938463463374607431768211455'::UHUGEINT",
                                  "'340282366920938463463374607431768211455'::numeric"),
    ("'hello'", "'hello'::text"), ("''", "''::text"), ("'ünïcødé ✓'", "'ünïcødé ✓'::text"),
    ("'tab' || chr(9) || 'nl' || chr(10)", "E'tab\\tnl\\n'::text"),
    ("'\\x01\\xFF\\x00'::BLOB", "'\\x01ff00'::bytea"), ("''::BLOB", "''::bytea"),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid"),
    ("'{\"b\": 2, \"a\": [1, 2]}'::JSON", "'{\"b\": 2, \"a\": [1, 2]}'::json"),
    ("DATE '2024-01-02'", "DATE '2024-01-02'"), ("'infinity'::DATE", "'infinity'::date"),
    ("'-infinity'::DATE", "'-infinity'::date"), ("'-0043-03-15'::DATE", "'0044-03-15 BC'::date"),
    ("DATE '0001-01-01'", "DATE '0001-01-01'"), ("DATE '9999-12-31'", "DATE '9999-12-31'"),
    ("DATE '1999-12-31'", "DATE '1999-12-31'"),
    ("TIME '03:04:05'", "TIME '03:04:05'"), ("TIME '03:04:05.12'", "TIME '03:04:05.12'"),
    ("TIME '23:59:59.999999'", "TIME '23:59:59.999999'"), ("TIME '00:00:00'", "TIME '00:00:00'"),
    ("TIME '24:00:00'", "TIME '24:00:00'"), ("TIMESTAMP '1969-12-31 23:59:59.5'", "TIMESTAMP '1969-12-31 23:59:59.5'"),
    ("TIMESTAMP '1900-02-28 00:00:00.000001'", "TIMESTAMP '1900-02-28 00:00:00.000001'"),
    ("TIMESTAMP '2024-01-02 03:04:05.123456'", "TIMESTAMP '2024-01-02 03:04:05.123456'"),
    ("TIMESTAMP '2024-01-02 03:04:05'", "TIMESTAMP '2024-01-02 03:04:05'"),
    ("TIMESTAMP '2024-01-02 03:04:05.5'", "TIMESTAMP '2024-01-02 03:04:05.5'"),
    ("TIMESTAMP '1999-12-31 23:59:59.999999'", "TIMESTAMP '1999-12-31 23:59:59.999999'"),
    ("'infinity'::TIMESTAMP", "'infinity'::timestamp"), ("'-infinity'::TIMESTAMP", "'-infinity'::timestamp"),
    ("TIMESTAMP '-0043-03-15 12:00:00'", "TIMESTAMP '0044-03-15 12:00:00 BC'"),
    ("INTERVAL '1 year 2 months 3 days 04:05:06.789'", "INTERVAL '1 year 2 months 3 days 04:05:06.789'"),
    ("-INTERVAL '1 second'", "INTERVAL '-1 second'"), ("INTERVAL '0 seconds'", "INTERVAL '0'"),
    ("INTERVAL '1 day' - INTERVAL '1 second'", "INTERVAL '1 day -1 second'"),
    ("-INTERVAL '14 months'", "INTERVAL '-1 year -2 months'"), ("INTERVAL '100 hours'", "INTERVAL '100 hours'"),
    ("INTERVAL '1 month' - INTERVAL '3 days'", "INTERVAL '1 month -3 days'"),
    ("INTERVAL '-1 day' + INTERVAL '2 hours'", "INTERVAL '-1 day +2 hours'"),
    ("INTERVAL '1 month'", "INTERVAL '1 month'"), ("-INTERVAL '1.5 microseconds'", "INTERVAL '-1 microsecond'"), ("INTERVAL '0.000001 seconds'", "INTERVAL '1 microsecond'"),
    ("[1, 2, NULL]::INTEGER[]", "ARRAY[1, 2, NULL]::int4[]"), ("[]::INTEGER[]", "'{}'::int4[]"),
    ("['a b', 'c,d', '\"q\"', NULL, '', 'NULL', 'x\\y', 'plain', 'nULl', ' lead']",
     "ARRAY['a b', 'c,d', '\"q\"', NULL, '', 'NULL', E'x\\\\y', 'plain', 'nULl', ' lead']::text[]"),
    ("[[1, 2], [3, 4]]::INTEGER[][]", "ARRAY[[1, 2], [3, 4]]::int4[]"),
    ("[1.5, 2.25]::DECIMAL(5,2)[]", "ARRAY[1.5, 2.25]::numeric(5,2)[]"),
    ("[TIMESTAMP '2024-01-01 00:00:00', NULL]", "ARRAY[TIMESTAMP '2024-01-01 00:00:00', NULL]"),
    ("[true, false]", "ARRAY[true, false]"), ("[DATE '2024-01-01']", "ARRAY[DATE '2024-01-01']"),
    ("[0.1::DOUBLE, 'Infinity'::DOUBLE, 1e100]", "ARRAY[0.1::float8, 'Infinity', 1e100]::float8[]"),
    ("['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID]", "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]"),
    ("['\\xDE\\xAD'::BLOB]", "ARRAY['\\xdead'::bytea]"),
    ("[9223372036854775807::BIGINT]", "ARRAY[9223372036854775807::int8]"),
    ("'01:02:03+05'::TIMETZ", "'01:02:03+05'::timetz"), ("'01:02:03.5-05:30'::TIMETZ", "'01:02:03.5-05:30'::timetz"),
    ("'101'::BIT", "B'101'::varbit"), ("'1010101011'::BIT", "B'1010101011'::varbit"),
]
FLOAT8 = ["0.1", "1e21", "1.2345678901234567e-300", "Infinity", "-Infinity", "NaN", "-0", "1e15", "1e14",
          "123456789012345.6", "0.0001", "1e-05", "9.999999999999999e-05", "5e-324", "1.7976931348623157e308",
          "3.14", "100", "1e16", "0.3", "-2.5e-07", "1234567.125"]
FLOAT4 = ["0.1", "1e6", "123456.7", "999999", "3.4028235e38", "1e-05", "NaN", "-0", "1.1754944e-38", "0.3",
          "-Infinity"]
CASES += [(f"'{v}'::DOUBLE", f"'{v}'::float8") for v in FLOAT8]
CASES += [(f"'{v}'::FLOAT", f"'{v}'::float4") for v in FLOAT4]

TIMESTAMPTZ = ["2024-01-02 03:04:05.123+00", "2024-03-10 06:59:59+00", "2024-03-10 07:00:00+00",
               "2024-10-27 00:30:00+00", "2024-10-27 01:30:00+00", "2024-07-01 12:00:00.5+00", "1970-01-01 00:00:00+00", "1850-06-01 12:00:00+00",
               "infinity", "-infinity"]
ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]


def parse_data_rows(data: bytes) -> list[list[bytes | None]]:
    rows, pos = [], 0
    while pos < len(data):
        assert data[pos:pos + 1] == b"D"
        (length,) = struct.unpack(">i", data[pos + 1:pos + 5])
        end = pos + 1 + length
        (count,) = struct.unpack(">h", data[pos + 5:pos + 7])
        p, row = pos + 7, []
        for _ in range(count):
            (n,) = struct.unpack(">i", data[p:p + 4])
            p += 4
            row.append(None if n < 0 else data[p:p + n])
            p += max(n, 0)
        assert p == end, "DataRow length field disagrees with its contents"
        rows.append(row)
        pos = end
    return rows


@pytest.fixture(scope="module")
def pg_url(pg):
    return pg.create_database("enc_values")


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    con.execute("SET arrow_lossless_conversion = true")  # as the server's engine does
    return con


def _postgres(conn: psycopg.Connection, expr: str, binary: bool) -> tuple[bytes | None, int, int]:
    cur = conn.cursor(binary=binary)
    cur.execute(f"SELECT {expr}")
    res = cur.pgresult
    return res.get_value(0, 0), res.ftype(0), res.fmod(0)


def _ours(duck, expr: str, fmt: int, timezone: str = "UTC") -> tuple[bytes | None, int, int]:
    """Our bytes for the value, after checking the few-rows path and the vectorised path agree."""
    batch = duck.sql(f"SELECT {expr} AS v").to_arrow_table().to_batches()[0]
    encoder = DataRowEncoder(batch.schema, [fmt], timezone)
    vectorised = DataRowEncoder(batch.schema, [fmt], timezone, small_rows=0)
    data = encoder.encode(batch)
    assert data == vectorised.encode(batch)
    field = encoder.fields[0]
    return parse_data_rows(data)[0][0], field.type_oid, field.typmod


@pytest.mark.parametrize(("duck_expr", "pg_expr"), CASES, ids=[c[1][:60] for c in CASES])
def test_value_text_and_binary_match_postgres(pg_url, duck, duck_expr, pg_expr):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        pg_text, pg_oid, pg_mod = _postgres(conn, pg_expr, binary=False)
        text, oid, mod = _ours(duck, duck_expr, 0)
        assert (text, oid, mod) == (pg_text, pg_oid, pg_mod)
        if supports_binary(BY_OID[oid]) or "TIMETZ" in duck_expr \
                or "BIT" in duck_expr:
            pg_binary, _, _ = _postgres(conn, pg_expr, binary=True)
            binary, _, _ = _ours(duck, duck_expr, 1)
            assert binary == pg_binary


@pytest.mark.parametrize("zone", ZONES)
def test_timestamptz_in_session_zone_matches_postgres(pg_url, duck, zone):
    values = ", ".join(f"'{v}'::TIMESTAMPTZ" for v in TIMESTAMPTZ)
    batch = duck.sql(f"SELECT unnest([{values}]) AS v").to_arrow_table().to_batches()[0]
    ours = [r[0] for r in parse_data_rows(DataRowEncoder(batch.schema, [], zone).encode(batch))]
    assert DataRowEncoder(batch.schema, [], zone, small_rows=0).encode(batch) == \
        DataRowEncoder(batch.schema, [], zone).encode(batch)
    ours_binary = [r[0] for r in parse_data_rows(DataRowEncoder(batch.schema, [1], zone).encode(batch))]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"SET TimeZone = '{zone}'")
        pg_values = ", ".join(f"'{v}'::timestamptz" for v in TIMESTAMPTZ)
        sql = f"SELECT unnest(ARRAY[{pg_values}])"
        text_cur = conn.cursor(binary=False)
        text_cur.execute(sql)
        expected = [text_cur.pgresult.get_value(i, 0) for i in range(len(TIMESTAMPTZ))]
        bin_cur = conn.cursor(binary=True)
        bin_cur.execute(sql)
        expected_binary = [bin_cur.pgresult.get_value(i, 0) for i in range(len(TIMESTAMPTZ))]
    assert ours == expected
    assert ours_binary == expected_binary


def test_many_rows_with_nulls_match_postgres_row_by_row(pg_url, duck):
    """Several columns, nulls in each, more rows than one slice: the interleaving must stay exact."""
    duck_sql = """SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE i END::BIGINT AS a,
                         CASE WHEN i % 5 = 0 THEN NULL ELSE 'v' || i END AS b,
                         CASE WHEN i % 3 = 0 THEN NULL ELSE (i / 8.0)::DOUBLE END AS c,
                         (i % 2 = 0) AS d,
                         CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 1.25)::DECIMAL(12,2) END AS e,
                         CASE WHEN i % 13 = 0 THEN NULL ELSE [i, NULL] END AS f
                  FROM range(3000) t(i) ORDER BY i"""
    pg_sql = """SELECT CASE WHEN i % 7 = 0 THEN NULL ELSE i END::int8 AS a,
                       CASE WHEN i % 5 = 0 THEN NULL ELSE 'v' || i END AS b,
                       CASE WHEN i % 3 = 0 THEN NULL ELSE (i / 8.0)::float8 END AS c,
                       (i % 2 = 0) AS d,
                       CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 1.25)::numeric(12,2) END AS e,
                       CASE WHEN i % 13 = 0 THEN NULL ELSE ARRAY[i::int8, NULL] END AS f
                FROM generate_series(0, 2999) i ORDER BY i"""
    table = duck.sql(duck_sql).to_arrow_table()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for fmt in (0, 1):
            encoder = DataRowEncoder(table.schema, [fmt])
            ours = [row for batch in table.to_batches() for row in parse_data_rows(encoder.encode(batch))]
            cur = conn.cursor(binary=bool(fmt))
            cur.execute(pg_sql)
            res = cur.pgresult
            expected = [[res.get_value(r, c) for c in range(6)] for r in range(res.ntuples)]
            assert ours == expected
            assert [f.type_oid for f in encoder.fields] == [res.ftype(c) for c in range(6)]


def test_many_intervals_match_postgres(pg_url, duck):
    """Interval text for a big column (each distinct value formatted once) equals Postgres's."""
    duck_sql = """SELECT CASE WHEN i % 17 = 0 THEN NULL ELSE
                      to_months((i % 29) - 14) + to_days((i * 7) % 61 - 30) + to_microseconds((i * 7919) % 200000000 - 100000000)
                  END AS v FROM range(2000) t(i) ORDER BY i"""
    pg_sql = """SELECT CASE WHEN i % 17 = 0 THEN NULL ELSE
                    make_interval(months => (i % 29) - 14, days => (i * 7) % 61 - 30)
                    + ((i * 7919) % 200000000 - 100000000) * INTERVAL '1 microsecond'
                END FROM generate_series(0, 1999) i ORDER BY i"""
    batch = duck.sql(duck_sql).to_arrow_table().combine_chunks().to_batches()[0]
    ours = [r[0] for r in parse_data_rows(DataRowEncoder(batch.schema).encode(batch))]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        cur = conn.cursor(binary=False)
        cur.execute(pg_sql)
        expected = [cur.pgresult.get_value(i, 0) for i in range(cur.pgresult.ntuples)]
    assert ours == expected
