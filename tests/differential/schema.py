"""The source tables of the differential suite: one column of every mapped Postgres type, a few rows each
(NULLs, extremes, NaN where the type has it), plus a small table of integers/numerics for aggregates.

TYPES is the data the case generator walks: per type, the column, its DDL, its values, a literal to compare
with, and a Python value to bind as a parameter (None: no binary-parameter case for that type).
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnType:
    column: str
    ddl: str
    values: tuple[str, ...]  # SQL literals, one per row (row ids 1..n)
    literal: str  # compared with =, <
    param: object = None  # bound as a parameter (psycopg picks the wire type); None: skip
    orderable: bool = True


TYPES: tuple[ColumnType, ...] = (
    ColumnType("c_bool", "boolean", ("true", "false", "NULL", "true", "false"), "true", True),
    ColumnType("c_int2", "smallint", ("1", "-32768", "32767", "NULL", "7"), "7", 7),
    ColumnType("c_int4", "integer", ("1", "-2147483648", "2147483647", "NULL", "42"), "42", 42),
    ColumnType("c_int8", "bigint", ("1", "-9223372036854775808", "9223372036854775807", "NULL", "42"), "42", 42),
    ColumnType("c_num", "numeric(10,2)", ("1.50", "-99999999.99", "0.00", "NULL", "42.10"), "42.1",
               decimal.Decimal("42.10")),
    ColumnType("c_numfree", "numeric", ("1.5", "-0.000001", "123456789.123", "NULL", "42"), "42",
               decimal.Decimal("42")),
    ColumnType("c_float4", "real", ("3.14", "'NaN'", "-1.5e30", "NULL", "0.5"), "0.5", 0.5),
    ColumnType("c_float8", "double precision", ("3.141592653589793", "'NaN'", "'-Infinity'", "NULL", "0.1"),
               "0.1", 0.1),
    ColumnType("c_text", "text", ("'hello'", "''", "'Zebra \"q\" \\\\ back'", "NULL", "'ünïcode'"), "'hello'",
               "hello"),
    ColumnType("c_varchar", "varchar(20)", ("'abc'", "'ABC'", "'a b c'", "NULL", "'xyz'"), "'abc'", "abc"),
    ColumnType("c_char", "char(5)", ("'ab'", "'abcde'", "' x'", "NULL", "'z'"), "'ab'", None),
    ColumnType("c_date", "date", ("'2024-01-02'", "'1999-12-31'", "'0044-03-15 BC'", "NULL", "'2024-02-29'"),
               "'2024-01-02'", datetime.date(2024, 1, 2)),
    ColumnType("c_time", "time", ("'03:04:05'", "'00:00:00'", "'23:59:59.999999'", "NULL", "'12:00:00.5'"),
               "'03:04:05'", datetime.time(3, 4, 5)),
    ColumnType("c_timetz", "timetz", ("'12:00:00.123456-05'", "'00:00:00+00'", "'23:00:00+02'", "NULL",
                                      "'10:00:00+00'"), "'10:00:00+00'", None),
    ColumnType("c_ts", "timestamp", ("'2024-01-02 03:04:05'", "'1970-01-01 00:00:00'",
                                     "'2024-02-29 23:59:59.123456'", "NULL", "'2000-01-01 12:00:00'"),
               "'2024-01-02 03:04:05'", datetime.datetime(2024, 1, 2, 3, 4, 5)),
    ColumnType("c_tstz", "timestamptz", ("'2024-01-02 03:04:05+00'", "'1970-01-01 00:00:00+00'",
                                         "'2024-02-29 23:59:59.123456+05:30'", "NULL", "'2000-01-01 12:00:00+00'"),
               "'2024-01-02 03:04:05+00'",
               datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)),
    ColumnType("c_interval", "interval", ("'1 day'", "'1 year 2 mons 3 days 04:05:06'", "'-00:00:01'", "NULL",
                                          "'5 minutes'"), "'5 minutes'", datetime.timedelta(minutes=5)),
    ColumnType("c_uuid", "uuid", ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'",
                                  "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "NULL",
                                  "'12345678-1234-5678-1234-567812345678'"),
               "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    ColumnType("c_json", "json", ("'{\"a\": 1, \"b\": [1, 2]}'", "'[]'", "'\"s\"'", "NULL", "'{\"k\":\"v\"}'"),
               "", None, orderable=False),
    ColumnType("c_jsonb", "jsonb", ("'{\"a\": 1, \"b\": [1, 2]}'", "'[]'", "'\"s\"'", "NULL", "'{\"k\":\"v\"}'"),
               "'{\"k\": \"v\"}'", None),
    ColumnType("c_bytea", "bytea", ("'\\x00ff'", "''", "'hello'", "NULL", "'\\xdeadbeef'"), "'\\x00ff'",
               b"\x00\xff"),
    ColumnType("c_mood", "mood", ("'happy'", "'sad'", "'ok'", "NULL", "'ok'"), "'ok'", None),
    ColumnType("c_inet", "inet", ("'192.168.0.1'", "'10.0.0.0/8'", "'::1'", "NULL", "'127.0.0.1'"),
               "'127.0.0.1'", None),
    ColumnType("c_money", "money", ("'12.34'", "'-1.00'", "'0'", "NULL", "'1000.5'"), "'12.34'", None),
    ColumnType("c_bit", "bit(4)", ("B'1010'", "B'0000'", "B'1111'", "NULL", "B'0101'"), "B'1010'", None),
    ColumnType("c_xml", "xml", ("'<a>1</a>'", "'<b/>'", "'text'", "NULL", "'<c x=\"1\"/>'"), "", None,
               orderable=False),
    ColumnType("c_int4arr", "integer[]", ("'{1,2,3}'", "'{}'", "'{NULL,5}'", "NULL", "'{42}'"), "'{42}'",
               [42]),
    ColumnType("c_textarr", "text[]", ("'{a,b}'", "'{}'", "'{\"x y\",NULL}'", "NULL", "'{z}'"), "'{z}'",
               ["z"]),
    ColumnType("c_numarr", "numeric(6,2)[]", ("'{1.5,2}'", "'{}'", "'{NULL}'", "NULL", "'{42.10}'"),
               "'{42.10}'", None),
)

ROWS = 5

SETUP = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE everything (id integer PRIMARY KEY, {columns});
INSERT INTO everything VALUES {rows};
CREATE TABLE numbers (id integer PRIMARY KEY, grp text, i integer, b bigint, s smallint, n numeric(10,2),
                      r real, d double precision, word varchar(10), at date, mood mood, doc jsonb);
INSERT INTO numbers
SELECT g, CASE WHEN g % 3 = 0 THEN 'a' WHEN g % 3 = 1 THEN 'b' ELSE NULL END, g * 7 % 11, g::bigint * 1000000007,
       (g % 5)::smallint, round(g * 3.17, 2), g / 4.0, g / 3.0, 'w' || (g % 4), DATE '2024-01-01' + g * 13,
       (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood, jsonb_build_object('g', g, 'even', g % 2 = 0)
FROM generate_series(1, 25) AS g;
"""


def setup_sql() -> str:
    columns = ", ".join(f"{t.column} {t.ddl}" for t in TYPES)
    rows = ", ".join("(" + ", ".join([str(i + 1)] + [f"CAST({t.values[i]} AS {t.ddl})" if t.values[i] != "NULL"
                                                      else "NULL" for t in TYPES]) + ")" for i in range(ROWS))
    return SETUP.format(columns=columns, rows=rows)
