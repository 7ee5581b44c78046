"""The copy's own column plans (what Postgres prints for a bulk COPY), against Postgres as the oracle: dates
travel as day numbers, exact for every date a Postgres date can hold, in one pass, over one connection or
over ctid ranges; CDC's in-process plans keep parsing Postgres's ISO text."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest

from bemidb.config import Config
from bemidb.quoting import quote_ident
from bemidb.storage.catalog import open_catalog
from bemidb.storage.types import PgColumn, plan_column
from bemidb.sync import parallel
from tests.sync.test_postgres_parallel import _sync_in_process

INT32_MAX = 2**31 - 1
# Every edge a date has: the epoch and the day before it, a leap day, BC (the first day Postgres takes too),
# the last ISO year and the first 5-digit one, the last day Postgres takes, both infinities, NULL.
DATES = ["1970-01-01", "1969-12-31", "2000-02-29", "0044-03-15 BC", "4713-01-01 BC", "9999-12-31",
         "10000-01-01", "5874897-12-31", "infinity", "-infinity", None, "2024-06-30"]
# How the stored date32 must read: Postgres computes the day number (DuckDB's +-infinity is +-INT32_MAX).
ORACLE = (f"CASE WHEN {{c}} = 'infinity' THEN {INT32_MAX} WHEN {{c}} = '-infinity' THEN -{INT32_MAX} "
          f"ELSE {{c}} - DATE '1970-01-01' END")


def _date_column(name: str = "d") -> PgColumn:
    return PgColumn(name, "date", "date", False, -1)


def test_copy_reads_dates_as_day_numbers_and_cdc_keeps_iso_text():
    copy = plan_column(_date_column(), copy=True)
    assert "isfinite" in copy.select_sql and copy.csv_type == pa.int32() and copy.arrow_type == pa.date32()
    assert not copy.optimistic  # exact for every value: never the cause of a re-read
    assert plan_column(_date_column(), safe=True, copy=True).select_sql == copy.select_sql
    # CDC's in-process typing (sync/cdc_local.py) parses pgoutput's ISO text with the default plan
    cdc = plan_column(_date_column(), safe=False)
    assert cdc.select_sql == quote_ident("d") and cdc.csv_type == pa.date32() and cdc.optimistic
    assert plan_column(PgColumn("a", "date[]", "date", True, -1), copy=True).csv_type == pa.string()


def test_day_numbers_convert_exactly():
    convert = plan_column(_date_column(), copy=True).convert
    days = pa.array([0, -1, 11016, -2953575, INT32_MAX, -INT32_MAX, None], pa.int32())
    assert convert(days).cast(pa.int32()).to_pylist() == days.to_pylist()


@pytest.fixture
def dates_source(pg):
    url = pg.create_database("copy_plans_dates")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dates (id int PRIMARY KEY, d date, d_nn date NOT NULL, pad text)")
        rows = [(i, DATES[i % len(DATES)], DATES[(i * 7) % len(DATES)] or "1970-01-01", "x" * 300)
                for i in range(6000)]
        with conn.cursor().copy("COPY dates FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("VACUUM ANALYZE dates")
    return url


@pytest.mark.parametrize("threads", [1, 3])
def test_every_date_syncs_exactly_in_one_pass(dates_source, data_dir, monkeypatch, caplog, threads):
    """threads=3 cuts the table into ctid ranges (an infinity in each of them)."""
    monkeypatch.setattr(parallel, "MIN_PART_PAGES", 50)
    caplog.set_level("INFO", logger="bemidb.sync.postgres")
    assert _sync_in_process(dates_source, data_dir, threads) == 0
    assert not [r for r in caplog.records if "re-reading" in r.getMessage()]  # no second pass
    table = open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", "dates"))
    if threads > 1:
        assert len(list(table.scan().plan_files())) >= 3  # one file per range at least
    arrow = table.scan().to_arrow().sort_by("id")
    assert arrow.schema.field("d").type == pa.date32()
    with psycopg.connect(dates_source) as conn:
        oracle = conn.execute(f"SELECT {ORACLE.format(c='d')}, {ORACLE.format(c='d_nn')} FROM dates "
                              f"ORDER BY id").fetchall()
    assert arrow.column("d").cast(pa.int32()).to_pylist() == [d for d, _ in oracle]
    assert arrow.column("d_nn").cast(pa.int32()).to_pylist() == [d for _, d in oracle]


def test_incremental_sync_with_a_date_cursor(pg, data_dir):
    """The cursor's last value goes through the same day-number plan as the rows (incremental.typed_value)."""
    from tests.support.commands import run_bemidb

    url = pg.create_database("copy_plans_date_cursor")

    def execute(sql):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)

    def sync():
        result = run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir),
                            "--include", "public.t", "--incremental", "public.t:day")
        assert result.returncode == 0, result.stderr

    def same_as_source():
        table = open_catalog(Config({"data_dir": str(data_dir)})).load_table(("public", "t"))
        arrow = table.scan().to_arrow().sort_by("id")
        with psycopg.connect(url) as conn:
            oracle = conn.execute(f"SELECT id, {ORACLE.format(c='day')}, note FROM t ORDER BY id").fetchall()
        assert list(zip(arrow.column("id").to_pylist(), arrow.column("day").cast(pa.int32()).to_pylist(),
                        arrow.column("note").to_pylist(), strict=True)) == oracle

    execute("CREATE TABLE t (id int PRIMARY KEY, day date NOT NULL, note text);"
            "INSERT INTO t SELECT g, DATE '2024-01-01' + g, 'n' || g FROM generate_series(1, 40) g")
    sync()
    same_as_source()
    execute("UPDATE t SET day = DATE '2024-03-01', note = 'moved' WHERE id IN (3, 5);"
            "INSERT INTO t VALUES (41, DATE '2024-02-10', 'new'), (42, '12000-01-01', 'far')")
    sync()
    same_as_source()
