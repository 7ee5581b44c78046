"""`bemidb sync postgres` end to end: real source Postgres, real CLI process, tables read back from Iceberg."""

from __future__ import annotations

import psycopg
import pytest

from bemidb.config import Config
from bemidb.storage.catalog import PROP_SOURCE, open_catalog
from tests.support.commands import run_bemidb


def _catalog(data_dir, **extra):
    return open_catalog(Config({"data_dir": str(data_dir), **extra}))


def _rows(catalog, name, order_by="id"):
    return catalog.load_table(name).scan().to_arrow().sort_by(order_by).to_pylist()


def _sync(url, data_dir, *args, env=None):
    return run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir), *args, env=env)


@pytest.fixture
def source(pg, request):
    name = "h3_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    url = pg.create_database(name)

    def execute(sql):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)

    execute("""
        CREATE SCHEMA sales;
        CREATE TABLE users (id int PRIMARY KEY, name text);
        INSERT INTO users VALUES (1, 'ada'), (2, 'bob');
        CREATE TABLE events (id int, kind text);
        INSERT INTO events VALUES (1, 'click');
        CREATE TABLE sales.orders (id int, total numeric(10,2));
        INSERT INTO sales.orders VALUES (1, 9.99), (2, 100.00);
        CREATE TABLE sales.refunds (id int);
        CREATE VIEW user_names AS SELECT name FROM users;
        CREATE TABLE measurements (id int, at date, v float8) PARTITION BY RANGE (at);
        CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        INSERT INTO measurements VALUES (1, '2024-05-01', 1.5), (2, '2025-05-01', 2.5);
    """)
    return url, execute


def test_default_syncs_every_table_once_with_bemidb_names(source, data_dir):
    url, _ = source
    result = _sync(url, data_dir)
    assert result.returncode == 0, result.stderr
    catalog = _catalog(data_dir)
    assert sorted(catalog.list_tables("public")) == [
        ("public", "events"), ("public", "measurements"), ("public", "sales_orders"), ("public", "sales_refunds"),
        ("public", "users")]
    assert _rows(catalog, ("public", "users")) == [{"id": 1, "name": "ada"}, {"id": 2, "name": "bob"}]
    # partitioned: once through the parent, with the rows of every partition
    assert [r["v"] for r in _rows(catalog, ("public", "measurements"))] == [1.5, 2.5]
    assert _rows(catalog, ("public", "sales_refunds")) == []
    assert "skipped view public.user_names" in result.stderr
    assert catalog.load_table(("public", "users")).properties[PROP_SOURCE] == "postgres"


def test_include_exclude_wildcards_and_schema(source, data_dir):
    url, _ = source
    result = _sync(url, data_dir, "--include", "sales.*,public.users", "--exclude", "sales.refunds",
                   "--schema", "analytics")
    assert result.returncode == 0, result.stderr
    catalog = _catalog(data_dir)
    assert sorted(catalog.list_tables("analytics")) == [("analytics", "sales_orders"), ("analytics", "users")]
    assert [str(r["total"]) for r in _rows(catalog, ("analytics", "sales_orders"))] == ["9.99", "100.00"]


def test_env_vars_work_like_flags(source, data_dir):
    url, _ = source
    result = run_bemidb("sync", "postgres", env={
        "SOURCE_POSTGRES_DATABASE_URL": url, "BEMIDB_DATA_DIR": str(data_dir),
        "SOURCE_POSTGRES_INCLUDE_TABLES": "public.*", "SOURCE_POSTGRES_EXCLUDE_TABLES": "public.measurements",
        "DESTINATION_SCHEMA_NAME": "mirror"})
    assert result.returncode == 0, result.stderr
    assert sorted(_catalog(data_dir).list_tables("mirror")) == [("mirror", "events"), ("mirror", "users")]


def test_independent_syncs_and_resync_replaces(source, data_dir):
    url, execute = source
    assert _sync(url, data_dir, "--include", "public.users").returncode == 0
    assert _sync(url, data_dir, "--include", "public.events").returncode == 0
    catalog = _catalog(data_dir)
    assert sorted(catalog.list_tables("public")) == [("public", "events"), ("public", "users")]
    execute("DELETE FROM users WHERE id = 1; INSERT INTO users VALUES (3, 'cy'); DELETE FROM events")
    assert _sync(url, data_dir, "--include", "public.events").returncode == 0
    assert _rows(catalog, ("public", "events")) == []
    assert [r["id"] for r in _rows(catalog, ("public", "users"))] == [1, 2]  # untouched: not in that run
    assert _sync(url, data_dir, "--include", "public.users").returncode == 0
    assert _rows(catalog, ("public", "users")) == [{"id": 2, "name": "bob"}, {"id": 3, "name": "cy"}]


def test_schema_changes_between_runs_replace_the_table(source, data_dir):
    url, execute = source
    assert _sync(url, data_dir, "--include", "public.users").returncode == 0
    execute("ALTER TABLE users ADD COLUMN age int; UPDATE users SET age = id * 10;"
            "DROP VIEW user_names; ALTER TABLE users DROP COLUMN name; ALTER TABLE users ALTER COLUMN id TYPE text")
    result = _sync(url, data_dir, "--include", "public.users")
    assert result.returncode == 0, result.stderr
    catalog = _catalog(data_dir)
    table = catalog.load_table(("public", "users"))
    assert [f.name for f in table.schema().fields] == ["id", "age"]
    assert _rows(catalog, ("public", "users")) == [{"id": "1", "age": 10}, {"id": "2", "age": 20}]


def test_delete_old_tables_only_drops_vanished_postgres_tables(source, data_dir):
    url, execute = source
    assert _sync(url, data_dir).returncode == 0
    execute("DROP TABLE events")
    # without the flag, the old copy stays
    assert _sync(url, data_dir, "--include", "public.users").returncode == 0
    assert ("public", "events") in _catalog(data_dir).list_tables("public")
    result = _sync(url, data_dir, "--include", "public.users", "--delete-old-tables")
    assert result.returncode == 0, result.stderr
    tables = _catalog(data_dir).list_tables("public")
    assert ("public", "events") not in tables
    # excluded from this run but still in the source: kept (independent table syncing)
    assert ("public", "sales_orders") in tables
    assert "deleted public.events" in result.stderr


def test_unknown_include_fails_after_syncing_the_others(source, data_dir):
    url, _ = source
    result = _sync(url, data_dir, "--include", "public.users,public.nope,nothere.*")
    assert result.returncode == 1
    assert "public.nope" in result.stderr and "no such table" in result.stderr
    assert "nothere.* matches no table" in result.stderr
    assert "Traceback" not in result.stderr
    assert _rows(_catalog(data_dir), ("public", "users"))[0]["name"] == "ada"


def test_wrong_password_and_unreachable_source_are_one_line_errors(pg, data_dir):
    bad_password = pg.url("postgres", password="wrong")
    result = _sync(bad_password, data_dir)
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr
    assert "wrong" not in result.stderr  # the password is never printed
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    from tests.support.ports import free_port

    result = _sync(f"postgresql://u:p@127.0.0.1:{free_port()}/db", data_dir)
    assert result.returncode == 1
    assert "cannot reach source Postgres" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_source_url_is_a_usage_error(data_dir):
    result = run_bemidb("sync", "postgres", "--data-dir", str(data_dir))
    assert result.returncode == 2
    assert "SOURCE_POSTGRES_DATABASE_URL" in result.stderr


def test_table_dropped_mid_run_fails_alone(source, data_dir):
    """A table dropped after the run started is reported; the tables before and after it still sync."""
    import threading
    import time

    url, execute = source
    execute("CREATE TABLE a_big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 400000) g")
    dropped = threading.Event()

    def drop_events_while_a_big_is_copied():
        deadline = time.monotonic() + 120
        with psycopg.connect(url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                if conn.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY%a_big%'").fetchall():
                    conn.execute("DROP TABLE events")
                    dropped.set()
                    return
                time.sleep(0.02)

    thread = threading.Thread(target=drop_events_while_a_big_is_copied)
    thread.start()
    # One connection: tables in name order, so events is read after a_big (with more, largest first).
    result = _sync(url, data_dir, "--include", "public.a_big,public.events,public.users", "--threads", "1")
    thread.join()
    assert dropped.is_set()
    assert result.returncode == 1
    assert "public.events" in result.stderr and "does not exist" in result.stderr
    catalog = _catalog(data_dir)
    assert catalog.load_table(("public", "a_big")).scan().to_arrow().num_rows == 400000
    assert len(_rows(catalog, ("public", "users"))) == 2
    assert ("public", "events") not in catalog.list_tables("public")


def test_postgres_catalog(source, pg, data_dir):
    """CATALOG_DATABASE_URL: the Iceberg SQL catalog lives in Postgres (pg8000), standard tables."""
    url, _ = source
    catalog_url = pg.create_database("h3_catalog")
    result = _sync(url, data_dir, "--include", "public.users", env={"CATALOG_DATABASE_URL": catalog_url})
    assert result.returncode == 0, result.stderr
    with psycopg.connect(catalog_url) as conn:
        rows = conn.execute("SELECT catalog_name, table_namespace, table_name FROM iceberg_tables").fetchall()
    assert rows == [("bemidb", "public", "users")]
    catalog = _catalog(data_dir, catalog_database_url=catalog_url)
    assert len(_rows(catalog, ("public", "users"))) == 2
    assert not (data_dir / "catalog.db").exists()


def test_s3_warehouse(source, s3, bucket, data_dir):
    url, _ = source
    result = _sync(url, data_dir, "--include", "public.users,sales.orders", env=s3.env(bucket))
    assert result.returncode == 0, result.stderr
    env = s3.env(bucket)
    catalog = _catalog(data_dir, aws_s3_bucket=bucket, aws_s3_endpoint=env["AWS_S3_ENDPOINT"],
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                       aws_region=env["AWS_REGION"])
    assert len(_rows(catalog, ("public", "users"))) == 2
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.startswith("iceberg/") and k.endswith(".parquet") for k in keys)


def test_unreachable_s3_is_a_clear_error_and_stores_nothing(source, data_dir):
    from tests.support.ports import free_port

    url, _ = source
    env = {"AWS_S3_BUCKET": "nobucket", "AWS_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}",
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    result = _sync(url, data_dir, "--include", "public.users", env=env)
    assert result.returncode == 1
    assert "cannot write to the warehouse s3://nobucket/iceberg" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    catalog = _catalog(data_dir)
    assert all(catalog.list_tables(ns) == [] for ns in catalog.list_namespaces())


def test_odd_names_quotes_dots_unicode_and_case(source, data_dir):
    url, execute = source
    execute('''CREATE SCHEMA "Odd_Ü";
        CREATE TABLE "Odd_Ü"."My""Table" ("Id" int, "a.b" text, "my col" text, "ünï" int, "select" bool);
        INSERT INTO "Odd_Ü"."My""Table" VALUES (1, 'dot', 'space', 7, true)''')
    result = _sync(url, data_dir, "--include", "Odd_Ü.*")
    assert result.returncode == 0, result.stderr
    catalog = _catalog(data_dir)
    assert catalog.list_tables("public") == [("public", 'Odd_Ü_My"Table')]
    rows = catalog.load_table(("public", 'Odd_Ü_My"Table')).scan().to_arrow().to_pylist()
    assert rows == [{"Id": 1, "a.b": "dot", "my col": "space", "ünï": 7, "select": True}]


def test_progress_plain_lines_when_not_a_terminal_and_summary_table_on_one():
    from rich.console import Console

    from bemidb.sync.progress import SyncProgress

    plain = Console(record=True, force_terminal=False, width=120)
    with SyncProgress("sync test", console=plain) as progress:
        progress.table_started("public.a")
        progress.advance("public.a", 10, 2048)
        progress.table_done("public.a", 10, 2048)
        progress.table_started("public.b")
        progress.table_done("public.b", 0, 0, error="boom")
    text = plain.export_text()
    assert "public.a: done, 10 rows, 2.0 kB" in text and "public.b: FAILED: boom" in text
    assert "sync test: 1 synced, 1 failed, 10 rows" in text
    assert progress.failed == ["public.b"] and progress.succeeded == ["public.a"]

    live = Console(record=True, force_terminal=True, width=120)
    with SyncProgress("sync test", console=live) as progress:
        progress.table_started("public.a")
        progress.table_done("public.a", 1234, 10)
    text = live.export_text()
    assert "sync test: 1 synced, 0 failed" in text and "1,234" in text and "ok" in text


def test_sslmode_is_honoured(source, data_dir):
    """The test server has no TLS: sslmode=require must refuse to go on in clear text; disable connects."""
    url, _ = source
    result = _sync(url + "?sslmode=require", data_dir, "--include", "public.users")
    assert result.returncode == 1
    assert "SSL" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = _sync(url + "?sslmode=disable", data_dir, "--include", "public.users")
    assert result.returncode == 0, result.stderr


def test_tables_without_select_privilege(source, pg, data_dir):
    url, execute = source
    execute("DROP ROLE IF EXISTS h3_reader; CREATE ROLE h3_reader LOGIN PASSWORD 'pw';"
            "GRANT USAGE ON SCHEMA sales TO h3_reader; GRANT SELECT ON users, sales.orders TO h3_reader")
    reader_url = url.replace(f"{pg.user}:{pg.password}@", "h3_reader:pw@")
    result = _sync(reader_url, data_dir, "--include", "public.*")
    assert result.returncode == 0, result.stderr  # all tables: the unreadable ones are skipped with a note
    assert "skipped public.events: no SELECT privilege" in result.stderr
    assert _catalog(data_dir).list_tables("public") == [("public", "users")]
    result = _sync(reader_url, data_dir, "--include", "public.events")
    assert result.returncode == 1 and "public.events: FAILED: no SELECT privilege" in result.stderr


def test_huge_values_and_many_batches(source, data_dir):
    """A 20 MB text value and a 3 MB array in single rows; 300k rows span many COPY chunks."""
    url, execute = source
    execute("CREATE TABLE huge (id int, t text, a int[]);"
            "INSERT INTO huge VALUES (1, repeat('é,\"\n', 5000000), ARRAY(SELECT g FROM generate_series(1, 400000) g));"
            "INSERT INTO huge SELECT g, 'row ' || g, NULL FROM generate_series(2, 300000) g")
    result = _sync(url, data_dir, "--include", "public.huge")
    assert result.returncode == 0, result.stderr
    table = _catalog(data_dir).load_table(("public", "huge")).scan().to_arrow()
    assert table.num_rows == 300000
    first = table.filter(table.column("id").to_numpy() == 1).to_pylist()[0]
    assert first["t"] == 'é,"\n' * 5000000 and first["a"] == list(range(1, 400001))


def test_full_refresh_needs_no_numpy_or_pandas(source, data_dir):
    """The zipapp ships neither: the whole sync path (bytea, arrays, infinity dates) must run without them."""
    import subprocess
    import sys

    from tests.support.commands import REPO

    url, execute = source
    execute("CREATE TABLE bin (id int, b bytea, a text[], d date);"
            "INSERT INTO bin VALUES (1, '\\xdeadbeef', '{x,NULL}', 'infinity'), (2, NULL, NULL, '2020-01-01')")
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('numpy', 'pandas'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from bemidb.cli.main import main\n"
        "rc = main(sys.argv[1:])\n"
        "assert 'numpy' not in sys.modules\n"
        "sys.exit(rc)\n")
    result = subprocess.run([sys.executable, "-c", script, "sync", "postgres", "--database-url", url,
                             "--data-dir", str(data_dir), "--include", "public.bin,public.users"],
                            capture_output=True, text=True, cwd=REPO, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    rows = _catalog(data_dir).load_table(("public", "bin")).scan().to_arrow().drop_columns(["d"]).to_pylist()
    assert sorted(rows, key=lambda r: r["id"]) == [{"id": 1, "b": b"\xde\xad\xbe\xef", "a": ["x", None]},
                                                   {"id": 2, "b": None, "a": None}]
