"""Every type of the mapping: synced by the real CLI from a real Postgres, read back from Iceberg, compared
value by value with what psycopg reads from the source."""

from __future__ import annotations

import decimal
import json
import math

import psycopg
import pyarrow as pa
import pytest

from bemidb.config import Config
from bemidb.storage.catalog import PROP_PG_ENUMS, PROP_PG_TYPES, open_catalog
from tests.support.alltypes import SCHEMA_SQL
from tests.support.commands import run_bemidb

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# Scalar columns compared through a Postgres expression giving exactly comparable Python values.
TEMPORAL = {
    "d": "CASE WHEN d = 'infinity' THEN {i32} WHEN d = '-infinity' THEN -{i32} ELSE d - DATE '1970-01-01' END",
    "ts": "CASE WHEN ts = 'infinity' THEN {i64} WHEN ts = '-infinity' THEN -{i64} "
          "ELSE (extract(epoch FROM ts) * 1000000)::int8 END",
    "tstz": "CASE WHEN tstz = 'infinity' THEN {i64} WHEN tstz = '-infinity' THEN -{i64} "
            "ELSE (extract(epoch FROM tstz) * 1000000)::int8 END",
    "t": "(extract(epoch FROM t) * 1000000)::int8",
}
NATIVE = ["b", "i2", "i4", "i8", "f4", "f8", "n102", "n38", "nu", "dm", "pi", "by", "o",
          "a_i4", "a_n", "a_b", "a_by", "a_f8"]
AS_TEXT = ["ttz", "iv", "tx", "vc", "ch", "u", "j", "jb", "ip", "cd", "mac", "pt", "bx", "x", "tsv", "e", "m", "bits",
           "rng", "nm", "lt", "hs"]
TEXT_ARRAYS = ["a_tx", "a_jb", "a_e", "a_u", "a_iv"]

EXPECTED_ARROW = {
    "b": pa.bool_(), "i2": pa.int32(), "i4": pa.int32(), "i8": pa.int64(), "f4": pa.float32(),
    "f8": pa.float64(), "n102": pa.decimal128(10, 2), "n38": pa.decimal128(38, 10), "nu": pa.decimal128(38, 9),
    "dm": pa.decimal128(12, 2), "pi": pa.int32(), "d": pa.date32(), "t": pa.time64("us"),
    "ttz": pa.string(), "ts": pa.timestamp("us"), "tstz": pa.timestamp("us", tz="UTC"), "by": pa.binary(),
    "o": pa.int64(), "a_i4": pa.list_(pa.int32()), "a_d": pa.list_(pa.date32()),
    "a_tstz": pa.list_(pa.timestamp("us", tz="UTC")), "a_t": pa.list_(pa.time64("us")),
}


def _same(ours, theirs) -> bool:
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs, strict=True))
    if isinstance(ours, float) and isinstance(theirs, float) and math.isnan(ours):
        return math.isnan(theirs)
    if isinstance(theirs, memoryview):
        theirs = bytes(theirs)
    if isinstance(ours, decimal.Decimal) and isinstance(theirs, decimal.Decimal):
        return ours == theirs
    return ours == theirs


@pytest.fixture(scope="module")
def synced(pg, tmp_path_factory):
    url = pg.create_database("h3_types")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA_SQL)
    data_dir = tmp_path_factory.mktemp("types") / "data"
    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir),
                        "--include", "public.alltypes")
    assert result.returncode == 0, result.stderr
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    table = catalog.load_table(("public", "alltypes"))
    arrow = table.scan().to_arrow().sort_by("id")
    return url, table, arrow, result


def _source(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3")
        return conn.execute(sql).fetchall()


def test_arrow_types_and_nullability(synced):
    _url, table, arrow, _ = synced
    for name, expected in EXPECTED_ARROW.items():
        assert arrow.schema.field(name).type == expected, name
    iceberg = {f.name: f for f in table.schema().fields}
    assert iceberg["i8"].required and iceberg["id"].required and not iceberg["tx"].required
    assert iceberg["tx"].doc == "free text"
    assert table.properties["comment"] == "every type"
    pg_types = json.loads(table.properties[PROP_PG_TYPES])
    names = [f.name for f in table.schema().fields]
    assert pg_types[names.index("n102")] == "numeric(10,2)"
    assert pg_types[names.index("i8")] == "bigint"
    assert pg_types[names.index("a_tx")] == "text[]"
    assert pg_types[names.index("tstz")] == "timestamp with time zone"
    assert pg_types[names.index("e")] == "mood"
    # the enum's labels in declaration order and its source OID (also for the mood[] column's element)
    [(oid, array_oid)] = _source(synced[0], "SELECT 'mood'::regtype::oid::int8, 'mood[]'::regtype::oid::int8")
    assert json.loads(table.properties[PROP_PG_ENUMS]) == {
        "mood": {"oid": oid, "array_oid": array_oid, "labels": ["sad", "happy", "ünïcode ☃"]}}
    assert names == [c for (c,) in _source(synced[0], "SELECT attname FROM pg_attribute WHERE attrelid = "
                                                       "'alltypes'::regclass AND attnum > 0 ORDER BY attnum")]


@pytest.mark.parametrize("column", NATIVE)
def test_native_values_match_psycopg(synced, column):
    url, _table, arrow, _ = synced
    theirs = [row[0] for row in _source(url, f"SELECT {column} FROM alltypes ORDER BY id")]
    ours = arrow.column(column).to_pylist()
    for row_id, (a, b) in enumerate(zip(ours, theirs, strict=True), start=1):
        assert _same(a, b), f"{column} row {row_id}: ours {a!r} != source {b!r}"


@pytest.mark.parametrize("column", list(TEMPORAL))
def test_temporal_values_exact_including_bc_and_infinity(synced, column):
    url, _table, arrow, _ = synced
    expression = TEMPORAL[column].format(i32=INT32_MAX, i64=INT64_MAX)
    theirs = [row[0] for row in _source(url, f"SELECT {expression} FROM alltypes ORDER BY id")]
    raw = arrow.column(column)
    as_int = raw.cast(pa.int32() if raw.type == pa.date32() else pa.int64()).to_pylist()
    assert as_int == theirs


@pytest.mark.parametrize("column", AS_TEXT)
def test_text_form_matches_postgres_output(synced, column):
    url, _table, arrow, _ = synced
    # char(n) is stored as Postgres's own ::text cast (trailing blanks trimmed, see storage/types.py).
    text_form = f"{column}::text" if column == "ch" else f"format('%s', {column})"
    theirs = [row[0] for row in _source(url, f"SELECT CASE WHEN {column} IS NOT NULL THEN {text_form} END FROM alltypes ORDER BY id")]
    assert arrow.column(column).to_pylist() == theirs


@pytest.mark.parametrize("column", TEXT_ARRAYS)
def test_text_arrays_keep_elements_and_nulls(synced, column):
    url, _table, arrow, _ = synced
    theirs = [row[0] for row in _source(
        url, f"SELECT CASE WHEN {column} IS NULL THEN NULL ELSE ARRAY(SELECT x::text FROM unnest({column}) x) END "
             f"FROM alltypes ORDER BY id")]
    assert arrow.column(column).to_pylist() == theirs


def test_temporal_and_nested_arrays(synced):
    url, _table, arrow, _ = synced
    rows = _source(url, f"""SELECT
        CASE WHEN a_d IS NULL THEN NULL ELSE ARRAY(SELECT CASE WHEN x = 'infinity' THEN {INT32_MAX}
             WHEN x = '-infinity' THEN -{INT32_MAX} ELSE x - DATE '1970-01-01' END FROM unnest(a_d) x) END,
        CASE WHEN a_tstz IS NULL THEN NULL ELSE ARRAY(SELECT CASE WHEN x = 'infinity' THEN {INT64_MAX}
             ELSE (extract(epoch FROM x) * 1000000)::int8 END FROM unnest(a_tstz) x) END,
        CASE WHEN a_t IS NULL THEN NULL ELSE ARRAY(SELECT (extract(epoch FROM x) * 1000000)::int8
             FROM unnest(a_t) x) END,
        CASE WHEN a_2d IS NULL THEN NULL ELSE ARRAY(SELECT unnest(a_2d)) END
        FROM alltypes ORDER BY id""")
    assert arrow.column("a_d").cast(pa.list_(pa.int32())).to_pylist() == [r[0] for r in rows]
    assert arrow.column("a_tstz").cast(pa.list_(pa.int64())).to_pylist() == [r[1] for r in rows]
    assert arrow.column("a_t").cast(pa.list_(pa.int64())).to_pylist() == [r[2] for r in rows]
    assert arrow.column("a_2d").to_pylist() == [r[3] for r in rows]


def test_empty_string_is_not_null(synced):
    _url, _table, arrow, _ = synced
    tx = arrow.column("tx").to_pylist()
    assert tx[1] is None and tx[2] == "" and tx[3] == "NULL"
    assert arrow.column("by").to_pylist()[2] == b""


def test_duckdb_reads_infinity_and_bc_back(synced):
    """The server reads these Parquet files with DuckDB: our infinity encoding is DuckDB's."""
    import duckdb

    _url, table, _arrow, _ = synced
    files = [task.file.file_path.removeprefix("file://") for task in table.scan().plan_files()]
    rows = duckdb.sql(f"SELECT id, d::text, ts::text, tstz::text FROM read_parquet({files!r}) "
                      f"WHERE id IN (3, 4, 5) ORDER BY id").fetchall()
    assert rows[0][1] == "0044-03-15 (BC)" and rows[0][2] == "0044-03-15 (BC) 12:00:00"
    assert rows[1][1] == "infinity" and rows[1][2] == "infinity" and rows[1][3] == "-infinity"
    assert rows[2][1] == "-infinity"


def test_numeric_that_cannot_be_a_decimal_falls_back_to_text_with_a_note(pg, data_dir):
    url = pg.create_database("h3_numeric_text")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE wide (id int, big numeric, nan numeric, fine numeric);"
                     "INSERT INTO wide VALUES (1, 1e40, 'NaN', 1.5), (2, 0.1, 1, 22.25), (3, NULL, NULL, NULL)")
    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert "big" in result.stderr and "synced as text" in result.stderr
    table = open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", "wide"))
    arrow = table.scan().to_arrow().sort_by("id")
    assert arrow.column("big").to_pylist() == ["10000000000000000000000000000000000000000", "0.1", None]
    assert arrow.column("nan").to_pylist() == ["NaN", "1", None]
    assert arrow.schema.field("fine").type == pa.decimal128(38, 2)
    assert arrow.column("fine").to_pylist() == [decimal.Decimal("1.50"), decimal.Decimal("22.25"), None]
    assert json.loads(table.properties[PROP_PG_TYPES]) == ["integer", "text", "text", "numeric"]


def test_nan_in_constrained_numeric_fails_the_table_clearly(pg, data_dir):
    url = pg.create_database("h3_numeric_nan")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bad (n numeric(5,1)); INSERT INTO bad VALUES (1.5), ('NaN');"
                     "CREATE TABLE good (i int); INSERT INTO good VALUES (1)")
    result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir))
    assert result.returncode == 1
    assert "public.bad" in result.stderr and "column n (numeric(5,1))" in result.stderr
    assert "Traceback" not in result.stderr
    catalog = open_catalog(Config({"data_dir": str(data_dir)}))
    assert catalog.load_table(("public", "good")).scan().to_arrow().num_rows == 1
    assert ("public", "bad") not in catalog.list_tables("public")
