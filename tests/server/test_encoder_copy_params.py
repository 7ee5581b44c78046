"""COPY TO STDOUT data, Bind parameter decoding and RowDescription, checked against the real Postgres 15:
COPY output byte for byte, parameters decoded from the very bytes Postgres itself sends for each value."""

from __future__ import annotations

import datetime as dt
import json
import struct
import uuid
from decimal import Decimal

import duckdb
import psycopg
import pyarrow as pa
import pytest

from bemidb.server.codec.encoder import (
    DataRowEncoder,
    copy_out,
    decode_parameter,
    describe,
    result_formats,
    row_description,
)
from tests.server.test_encoder import parse_data_rows


@pytest.fixture(scope="module")
def pg_url(pg):
    url = pg.create_database("enc_copy_params")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE tricky (id int, t text, n numeric(10,2), f float8, b bool, ts timestamptz,
                                             d date, a text[], j json)""")
        with conn.cursor().copy("COPY tricky FROM STDIN") as copy:
            for row in ROWS:
                copy.write_row(row)
    return url


ROWS = [
    (1, "plain", Decimal("1.50"), 0.1, True, dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC),
     dt.date(2024, 1, 2), ["a b", 'q"', None], '{"k": [1, 2]}'),
    (2, "tab\there\nnewline\rcr", Decimal("-12345.00"), 1e21, False, None, None, [], None),
    (3, "back\\slash, comma; semi|pipe", None, float("nan"), None,
     dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC), dt.date(1, 1, 1), None, "[]"),
    (4, "", Decimal("0.00"), float("-inf"), True, None, dt.date(2000, 2, 29), ["", "NULL"], '"s"'),
    (5, None, Decimal("99999999.99"), -0.0, False, None, None, ["x"], None),
    (6, "\\.", Decimal("1"), 5e-324, True, None, None, None, None),
    (7, 'quote " and ""', Decimal("2"), 123456789.125, False, None, None, None, None),
    (8, "NA", Decimal("3"), 1.5, True, None, None, None, None),
    (9, "ünïcødé ✓", Decimal("4"), 2.5, True, None, None, None, None),
]
OPTIONS = [
    ("text", None, None, False), ("csv", None, None, True), ("csv", None, None, False),
    ("text", "|", "NA", False), ("csv", ";", "NA", True), ("text", None, None, True), ("csv", "-", None, False),
]
# (QUOTE, ESCAPE, FORCE_QUOTE): backslash spelled as one character
CSV_QUOTING = [("'", None, False), ('"', "\\", False), ("'", "\\", ["t", "n"]), ('"', None, True)]


def _duck_batch(pg_url: str) -> pa.RecordBatch:
    """The same rows as DuckDB would hand them over (through Arrow, typed like the Iceberg columns)."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT id, t, n, f, b, ts, d, a, j::text FROM tricky ORDER BY id").fetchall()
    schema = pa.schema([("id", pa.int32()), ("t", pa.string()), ("n", pa.decimal128(10, 2)), ("f", pa.float64()),
                        ("b", pa.bool_()), ("ts", pa.timestamp("us", tz="UTC")), ("d", pa.date32()),
                        ("a", pa.list_(pa.string())), ("j", pa.string())])
    table = pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows], schema)
    return table.to_batches()[0]


@pytest.mark.parametrize(("fmt", "delimiter", "null", "header"), OPTIONS)
def test_copy_out_matches_postgres_copy(pg_url, fmt, delimiter, null, header):
    options = [f"FORMAT {fmt}"] + ([f"DELIMITER '{delimiter}'"] if delimiter else []) + \
        ([f"NULL '{null}'"] if null else []) + (["HEADER"] if header else [])
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        with conn.cursor().copy(f"COPY (SELECT * FROM tricky ORDER BY id) TO STDOUT ({', '.join(options)})") as copy:
            expected = b"".join(bytes(chunk) for chunk in copy)
    ours = copy_out(_duck_batch(pg_url), fmt, header, delimiter, null, "UTC", pg_types=[None] * 8 + ["json"])
    assert ours.decode() == expected.decode()


@pytest.mark.parametrize(("quote", "escape", "force"), CSV_QUOTING)
def test_copy_out_csv_quote_escape_force_quote_match_postgres(pg_url, quote, escape, force):
    def literal(char: str) -> str:
        return "E'" + char.replace("\\", "\\\\").replace("'", "\\'") + "'"

    options = ["FORMAT csv", "HEADER", f"QUOTE {literal(quote)}"] + ([f"ESCAPE {literal(escape)}"] if escape else [])
    if force:
        options.append("FORCE_QUOTE *" if force is True else f"FORCE_QUOTE ({', '.join(force)})")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        with conn.cursor().copy(f"COPY (SELECT * FROM tricky ORDER BY id) TO STDOUT ({', '.join(options)})") as copy:
            expected = b"".join(bytes(chunk) for chunk in copy)
    ours = copy_out(_duck_batch(pg_url), "csv", True, None, None, "UTC", [None] * 8 + ["json"], quote=quote,
                    escape=escape, force_quote=force)
    assert ours.decode() == expected.decode()


def test_copy_out_in_pieces_equals_one_piece(pg_url):
    batch = _duck_batch(pg_url)
    whole = copy_out(batch, "csv", header=True)
    pieces = copy_out(batch.slice(0, 4), "csv", header=True) + copy_out(batch.slice(4), "csv", header=False)
    assert pieces == whole


# (Postgres expression, type OID) -> decode_parameter of Postgres's own text and binary bytes must give the
# value psycopg loads from them (or the documented text form where DuckDB parses the text itself).
PARAMS = [
    ("32767::int2", 21), ("(-2147483648)::int4", 23), ("9223372036854775807::int8", 20), ("4000000000::oid", 26),
    ("1.5::float4", 700), ("'-1.2345678901234567e-300'::float8", 701), ("'-12345.00'::numeric", 1700),
    ("'0.000123'::numeric", 1700), ("'123456789012345678901234567890.5'::numeric", 1700), ("0::numeric", 1700),
    ("'NaN'::numeric", 1700), ("true", 16), ("false", 16), ("'héllo'::text", 25), ("'v'::varchar", 1043),
    ("DATE '2024-02-29'", 1082), ("DATE '1970-01-01'", 1082), ("TIME '03:04:05.5'", 1083),
    ("TIMESTAMP '2024-01-02 03:04:05.123456'", 1114), ("TIMESTAMPTZ '2024-01-02 03:04:05+00'", 1184),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", 2950), ("'\\x00ff10'::bytea", 17),
    ("INTERVAL '3 days 04:05:06'", 1186), ("'{\"a\": [1, 2]}'::jsonb", 3802),
    ("ARRAY[1, NULL, 3]::int4[]", 1007), ("ARRAY['a b', NULL, 'c\"d']::text[]", 1009),
    ("ARRAY[[1, 2], [3, 4]]::int8[]", 1016), ("'{}'::int4[]", 1007),
]


@pytest.mark.parametrize(("expr", "oid"), PARAMS, ids=[p[0] for p in PARAMS])
def test_decode_parameter_reads_postgres_own_bytes(pg_url, expr, oid):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for fmt in (0, 1):
            cur = conn.cursor(binary=bool(fmt))
            cur.execute(f"SELECT {expr}")
            raw = cur.pgresult.get_value(0, 0)
            assert cur.pgresult.ftype(0) == oid
            (expected,) = cur.fetchone()
            value = decode_parameter(raw, oid, fmt)
            if oid == 3802:
                expected, value = expected, json.loads(value)
            elif oid == 1186 and fmt == 0:
                assert value == "3 days 04:05:06"  # DuckDB reads Postgres interval text itself
                continue
            elif oid == 1700 and expected.is_nan():
                assert value.is_nan()
                continue
            elif oid == 700:
                expected = struct.unpack(">f", struct.pack(">f", expected))[0]
            assert value == expected
            assert type(value) is type(expected)


def test_decode_parameter_types_and_errors():
    assert decode_parameter(None, 23, 0) is None
    assert decode_parameter(b"42", 0, 0) == "42"  # unspecified type: the text, DuckDB casts it
    assert decode_parameter(b"yes", 16, 0) is True
    assert decode_parameter(b"2024-01-02T03:04:05+05:30", 1184, 0) == \
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert decode_parameter(b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 2950, 0) == \
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert decode_parameter(b'{"{1,2}",NULL,"x\\\\y"}', 1009, 0) == ["{1,2}", None, "x\\y"]
    for data, oid, fmt in [(b"abc", 23, 0), (b"\x00\x01\x02", 23, 1), (b"maybe", 16, 0), (b"{1,2", 1007, 0),
                           (b"2024-13-01", 1082, 0), (b"\xff\xfe", 25, 0), (b"1.2.3", 1700, 0)]:
        with pytest.raises(ValueError):
            decode_parameter(data, oid, fmt)


def test_row_description_bytes_and_formats():
    schema = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(10, 2)),
                        ("tags", pa.list_(pa.string())), ("price", pa.float64())])
    fields = describe(schema, [1], ["int8", "varchar(20)", None, None, None], sources=[(3_000_000_000, 1), (16384, 2)])
    assert [(f.table_oid, f.column) for f in fields] == [(3_000_000_000, 1), (16384, 2), (0, 0), (0, 0), (0, 0)]
    message = row_description(fields)
    assert message[:1] == b"T" and struct.unpack(">i", message[1:5])[0] == len(message) - 1
    (count,) = struct.unpack(">h", message[5:7])
    pos, parsed = 7, []
    for _ in range(count):
        end = message.index(b"\0", pos)
        name = message[pos:end].decode()
        table, column, oid, typlen, typmod, fmt = struct.unpack(">IhIhih", message[end + 1:end + 19])
        assert (table, column) == ((fields[len(parsed)].table_oid, fields[len(parsed)].column))
        parsed.append((name, oid, typlen, typmod, fmt))
        pos = end + 19
    assert pos == len(message)
    assert parsed == [("id", 20, 8, -1, 1), ("name", 1043, -1, 24, 1), ("amount", 1700, -1, (10 << 16 | 2) + 4, 1),
                      ("tags", 1009, -1, -1, 1), ("price", 701, 8, -1, 1)]
    assert result_formats([], 3) == [0, 0, 0] and result_formats([1], 2) == [1, 1]
    assert result_formats([0, 1], 2) == [0, 1]
    with pytest.raises(ValueError):
        result_formats([0, 1], 3)


def test_nested_types_become_json_and_nothing_crashes():
    con = duckdb.connect()
    con.execute("SET arrow_lossless_conversion = true")
    batch = con.sql("""SELECT {'a': 1, 'b': 'x', 'c': [1.5::DECIMAL(4,2), NULL]} AS s, MAP {'k': 1} AS m,
                              union_value(num := 2) AS u, [{'x': 1}] AS ls,
                              '\\x00'::BLOB AS z, 1::UHUGEINT AS uh, 1::VARINT AS vi""").to_arrow_table().to_batches()[0]
    for fmt in (0, 1):
        encoder = DataRowEncoder(batch.schema, [fmt])
        row = parse_data_rows(encoder.encode(batch))[0]
        assert [f.type_oid for f in encoder.fields][:4] == [114, 114, 114, 199]
        assert json.loads(row[0]) == {"a": 1, "b": "x", "c": [1.5, None]}
        assert json.loads(row[1]) == {"k": 1}
        assert json.loads(row[2]) == 2  # a union is its current member's value
    text_row = parse_data_rows(DataRowEncoder(batch.schema).encode(batch))[0]
    assert text_row[3] == b'{"{\\"x\\":1}"}' and text_row[4] == b"\\x00" and text_row[5] == b"1"


def test_big_batches_are_encoded_in_bounded_slices_with_identical_bytes():
    con = duckdb.connect()
    batch = con.sql("""SELECT i AS id, CASE WHEN i % 3 = 0 THEN NULL ELSE repeat('x', i % 50) END AS s,
                              TIMESTAMP '2024-01-01' + to_microseconds(i * 1234567) AS ts
                       FROM range(20000) t(i)""").to_arrow_table().combine_chunks().to_batches()[0]
    whole = DataRowEncoder(batch.schema).encode(batch)
    sliced = DataRowEncoder(batch.schema, slice_bytes=50_000)
    assert len(list(sliced.encode_chunks(batch))) > 10
    assert sliced.encode(batch) == whole
    rows = parse_data_rows(whole)
    assert len(rows) == 20000 and rows[3] == [b"3", None, b"2024-01-01 00:00:03.703701"]


def test_declared_types_refine_arrow_types():
    """Hints (the source column's declared type) give real OIDs/typmods and the matching binary form."""
    con = duckdb.connect()  # without lossless conversion uuids arrive as plain strings
    batch = con.sql("""SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID AS u, 7::INTEGER AS small,
                              '{"a": 1}' AS j, 'abc' AS v""").to_arrow_table().to_batches()[0]
    hints = ["uuid", "int2", "jsonb", "varchar(10)"]
    encoder = DataRowEncoder(batch.schema, [1], pg_types=hints)
    assert [(f.type_oid, f.typmod) for f in encoder.fields] == [(2950, -1), (21, -1), (3802, -1), (1043, 14)]
    row = parse_data_rows(encoder.encode(batch))[0]
    assert row == [uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").bytes, b"\x00\x07", b'\x01{"a": 1}', b"abc"]
    text_row = parse_data_rows(DataRowEncoder(batch.schema, [], pg_types=hints).encode(batch))[0]
    assert text_row == [b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", b"7", b'{"a": 1}', b"abc"]
    # Types kept as their Postgres text (interval, inet): described as declared in text format; in binary
    # (which would need their internal form) an interval column falls back to text.
    stored = pa.record_batch([pa.array(["1 day 02:00:00"]), pa.array(["10.0.0.1/8"])], names=["span", "net"])
    assert [(f.type_oid, f.format) for f in describe(stored.schema, [], ["interval", "inet"])] == [(1186, 0), (869, 0)]
    # inet (like money and bit) has its binary form written from the text (codec/text_held_binary.py)
    assert [(f.type_oid, f.format) for f in describe(stored.schema, [1], ["interval", "inet"])] == [(25, 1), (869, 1)]
    assert parse_data_rows(DataRowEncoder(stored.schema, [1], pg_types=["interval", "inet"]).encode(stored)) == \
        [[b"1 day 02:00:00", b"\x02\x08\x00\x04\x0a\x00\x00\x01"]]  # AF_INET, /8, not cidr, 4 bytes
    # A hint that cannot hold the values' type is ignored; a value too wide for a hinted width is an error.
    assert describe(batch.schema, [], ["date", "int8", None, "bool"])[0].type_oid == 25
    too_big = pa.record_batch([pa.array([70000], pa.int32())], names=["n"])
    with pytest.raises(ValueError, match="out of range"):
        DataRowEncoder(too_big.schema, [1], pg_types=["int2"]).encode(too_big)


def test_string_layout_variants_encode_the_same():
    values = ["a", None, "b c", ""]
    expected = [[b"a"], [None], [b"b c"], [b""]]
    for typ in (pa.string(), pa.large_string(), pa.string_view()):
        batch = pa.record_batch([pa.array(values, typ)], names=["s"])
        assert parse_data_rows(DataRowEncoder(batch.schema).encode(batch)) == expected
        assert DataRowEncoder(batch.schema).fields[0].type_oid == 25
    dictionary = pa.record_batch([pa.array(values).dictionary_encode()], names=["s"])
    assert parse_data_rows(DataRowEncoder(dictionary.schema).encode(dictionary)) == expected


@pytest.mark.parametrize("fmt", [0, 1])
def test_vectorised_assembly_equals_per_row_assembly(fmt):
    """Fixed-width runs glued into one matrix, variable-width columns joined: the same bytes as the
    plain per-row loop, for every mix of fixed/variable, null/non-null columns."""
    con = duckdb.connect()
    con.execute("SET arrow_lossless_conversion = true")
    batch = con.sql("""SELECT i::INTEGER AS a, i * 0.5 AS b, i % 2 = 0 AS c, DATE '2024-01-01' + i::INTEGER AS d,
                              CASE WHEN i % 4 = 0 THEN NULL ELSE 'x' || i END AS e, i::BIGINT AS f,
                              CASE WHEN i % 5 = 0 THEN NULL ELSE i END::SMALLINT AS g, [i, i + 1] AS h
                       FROM range(300) t(i)""").to_arrow_table().combine_chunks().to_batches()[0]
    vectorised = DataRowEncoder(batch.schema, [fmt], small_rows=0).encode(batch)
    per_row = DataRowEncoder(batch.schema, [fmt], small_rows=10_000).encode(batch)
    assert vectorised == per_row
    assert len(parse_data_rows(vectorised)) == 300
