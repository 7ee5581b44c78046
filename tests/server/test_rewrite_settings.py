"""SessionSettings against the real Postgres: same SHOW text after the same SET, same error codes."""

from __future__ import annotations

import duckdb
import psycopg
import pytest

from bemidb.server.settings import SettingError
from bemidb.server.sql.session_settings import SessionSettings

# (name, value as SQL text a client writes). Each is SET on the real Postgres and on SessionSettings (a quoted
# literal arrives unquoted, a list as written); SHOW must print the same text.
CASES = [
    ("DateStyle", "'iso'"),
    ("datestyle", "'ISO, DMY'"),
    ("DateStyle", "German"),
    ("TimeZone", "'America/New_York'"),
    ("timezone", "'UTC'"),
    ("search_path", "myschema, public"),
    ("search_path", '"$user", public'),
    ("statement_timeout", "'30s'"),
    ("statement_timeout", "5000"),
    ("statement_timeout", "'2min'"),
    ("statement_timeout", "0"),
    ("extra_float_digits", "3"),
    ("application_name", "'my app'"),
    ("client_min_messages", "WARNING"),
    ("standard_conforming_strings", "true"),
    ("IntervalStyle", "iso_8601"),
    ("bytea_output", "'escape'"),
    ("client_encoding", "'utf-8'"),
    ("myext.flag", "'anything'"),
]


@pytest.fixture(scope="module")
def pg_conn(pg):
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        yield conn


@pytest.mark.parametrize(("name", "value"), CASES)
def test_show_after_set_matches_postgres(pg_conn, name, value):
    pg_conn.execute(f"SET {name} = {value}")
    expected = pg_conn.execute(f"SHOW {name}").fetchone()[0]
    pg_conn.execute(f"RESET {name}")
    settings = SessionSettings()
    settings.set(name, value.strip("'"))
    assert settings.show(name) == expected


@pytest.mark.parametrize(("name", "value", "sqlstate"), [
    ("no_such_setting", "1", "42704"),
    ("server_version", "9.0", "55P02"),
    ("DateStyle", "klingon", "22023"),
    ("TimeZone", "Mars/Olympus", "22023"),
    ("extra_float_digits", "99", "22023"),
    ("statement_timeout", "soon", "22023"),
])
def test_refused_like_postgres(pg_conn, name, value, sqlstate):
    with pytest.raises(psycopg.Error) as pg_error:
        pg_conn.execute(f"SET {name} = '{value}'")
    assert pg_error.value.sqlstate == sqlstate
    with pytest.raises(SettingError) as ours:
        SessionSettings().set(name, value)
    assert ours.value.sqlstate == sqlstate


def test_show_unknown_and_reset():
    settings = SessionSettings()
    with pytest.raises(SettingError) as error:
        settings.show("nope")
    assert error.value.sqlstate == "42704"
    assert settings.get("x.unset", missing_ok=True) is None
    assert settings.set("TimeZone", "Europe/Paris") == {"TimeZone": "Europe/Paris"}
    assert settings.set("TimeZone", "Europe/Paris") == {}  # unchanged: no ParameterStatus
    assert settings.reset("timezone") == {"TimeZone": "UTC"}
    settings.set("search_path", "a")
    settings.set("x.y", "1")
    settings.reset_all()
    assert settings.show("search_path") == '"$user", public'
    assert settings.get("x.y", missing_ok=True) is None


def test_parameter_status_has_what_postgres16_reports():
    status = SessionSettings(user="alice").parameter_status()
    for name in ("application_name", "client_encoding", "DateStyle", "integer_datetimes", "IntervalStyle",
                 "is_superuser", "server_encoding", "server_version", "session_authorization",
                 "standard_conforming_strings", "TimeZone"):
        assert name in status
    assert status["server_version"].startswith("16.")
    assert status["session_authorization"] == "alice"
    assert status["client_encoding"] == "UTF8"


def test_startup_options():
    settings = SessionSettings()
    settings.apply_startup({"user": "u", "application_name": "psql", "options": "-c search_path=s1,public "
                            "--statement_timeout=10s", "bogus": "1"})
    assert settings.show("application_name") == "psql"
    assert settings.show("search_path") == "s1,public" or settings.show("search_path") == "s1, public"
    assert settings.statement_timeout_ms == 10_000


def test_apply_pushes_timezone_and_search_path_into_duckdb():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA sales")
    con.execute("CREATE TABLE sales.orders AS SELECT 42 AS id")
    con.execute("CREATE TABLE main.orders AS SELECT 1 AS id")
    cursor = con.cursor()
    settings = SessionSettings()
    settings.set("TimeZone", "Asia/Tokyo")
    settings.set("search_path", "missing, sales, public")
    settings.apply(cursor)
    assert cursor.execute("SELECT id FROM orders").fetchone()[0] == 42  # sales first, missing ignored
    hour = cursor.execute("SELECT extract(hour FROM TIMESTAMPTZ '2024-01-01 00:00:00+00')").fetchone()[0]
    assert hour == 9
    settings.reset("search_path")
    settings.apply(cursor)
    assert cursor.execute("SELECT id FROM orders").fetchone()[0] == 1
