"""A table from a second schema: BemiDB's naming by default (analytics.page_views -> public.analytics_page_views),
or the source's own schemas with SOURCE_POSTGRES_KEEP_SCHEMAS / --keep-schemas. Postgres is the oracle."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.commands import run_bemidb
from tests.support.server import start_server

DB = "first_hour_naming"
QUERY = "SELECT v.path, count(*), sum(u.id) FROM {views} v JOIN {users} u ON u.id = v.user_id GROUP BY 1 ORDER BY 1"


@pytest.fixture(scope="module")
def source(pg):
    pg.create_database(DB)
    pg.execute(DB, "CREATE SCHEMA analytics; CREATE TABLE users (id int PRIMARY KEY); "
                   "CREATE TABLE analytics.page_views (id int PRIMARY KEY, user_id int, path text); "
                   "INSERT INTO users SELECT generate_series(1, 10); "
                   "INSERT INTO analytics.page_views SELECT g, 1 + g % 10, '/p' || g % 3 FROM generate_series(1, 100) g")
    return pg


def _served(data_dir, sql: str) -> list[tuple]:
    server = start_server(data_dir)
    try:
        with psycopg.connect(server.dsn()) as conn:
            return conn.execute(sql).fetchall()
    finally:
        server.stop()


def test_keep_schemas_serves_tables_under_their_source_names(source, tmp_path):
    data_dir = tmp_path / "data"
    result = run_bemidb("sync", "postgres", "--data-dir", str(data_dir), "--keep-schemas",
                        env={"SOURCE_POSTGRES_DATABASE_URL": source.url(DB)})
    assert result.returncode == 0, result.stderr
    query = QUERY.format(views="analytics.page_views", users="public.users")
    assert _served(data_dir, query) == source.execute(DB, query)
    tables = run_bemidb("tables", "--data-dir", str(data_dir), "--format", "csv", check=True).stdout
    assert "analytics,page_views," in tables and "public,users," in tables


def test_default_is_bemidb_naming_and_the_env_variable_works(source, tmp_path):
    data_dir = tmp_path / "data"
    assert run_bemidb("sync", "postgres", "--data-dir", str(data_dir), env={
        "SOURCE_POSTGRES_DATABASE_URL": source.url(DB), "SOURCE_POSTGRES_KEEP_SCHEMAS": "false"}).returncode == 0
    query = QUERY.format(views="analytics.page_views", users="users")
    served = _served(data_dir, QUERY.format(views="public.analytics_page_views", users="users"))
    assert served == source.execute(DB, query)


def test_keep_schemas_with_a_destination_schema_is_refused(source, tmp_path):
    result = run_bemidb("sync", "postgres", "--data-dir", str(tmp_path), "--keep-schemas", "--schema", "x",
                        env={"SOURCE_POSTGRES_DATABASE_URL": source.url(DB)})
    assert result.returncode == 2 and "cannot be set with it" in result.stderr
    bad = run_bemidb("sync", "postgres", "--data-dir", str(tmp_path),
                     env={"SOURCE_POSTGRES_DATABASE_URL": source.url(DB), "SOURCE_POSTGRES_KEEP_SCHEMAS": "maybe"})
    assert bad.returncode == 2 and "SOURCE_POSTGRES_KEEP_SCHEMAS" in bad.stderr
