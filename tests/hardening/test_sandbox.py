"""Sandbox: a logged-in client can read the synced tables and nothing else, and can change nothing.

Every attack runs over both the simple and the extended protocol, and each test checks the OUTCOME, not just
that an error came back: the secret bytes of the target file never appear in any reply (rows or error text),
the file a write aimed at does not exist afterwards, the synced table still holds all its rows, and a SET that
tried to lift a restriction did not lift it, for this session or any other.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from bemidb.quoting import quote_literal
from tests.support import wire_client as wire
from tests.support.commands import REPO, run_bemidb
from tests.support.seed import seed_standard
from tests.support.server import start_server

USER, PASSWORD = "analyst", "sandbox-login-pw-41c8"
AWS_KEY_ID, AWS_SECRET = "AKIASANDBOXKEY7788", "aws-secret-sandbox-9d2c55"
MARKER = b"SANDBOX-MARKER-7f3a"
# What a refusal may be answered with: read-only transaction, insufficient privilege, not supported, and the
# "does not exist" family for functions/settings a server chooses to hide. Never success, never XX000.
# `SELECT * FROM duckdb_secrets()` as json_serialize_sql writes it
SERIALIZED_SECRETS = duckdb.sql("SELECT json_serialize_sql('SELECT * FROM duckdb_secrets()')").fetchall()[0][0]
REFUSED = {"25006", "42501", "0A000", "42883", "42704", "42P01", "42601", "22023", "55P02"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox")
    data_dir = root / "bemidb-data"
    seed_standard(data_dir)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(b"id,secret\n1," + MARKER + b"\n")
    (outside / "secret.json").write_bytes(b'{"secret": "' + MARKER + b'"}\n')
    env = {"BEMIDB_USER": USER, "BEMIDB_PASSWORD": PASSWORD, "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
           "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    server = start_server(data_dir, env=env, log_level="DEBUG")
    server.outside = outside
    server.data_dir = data_dir
    yield server
    server.stop()


def connect(server) -> wire.RawClient:
    client = wire.RawClient(server.host, server.port, timeout=30)
    replies = client.startup(USER, password=PASSWORD)
    assert replies[-1].tag == b"Z", replies[-1].fields()
    return client


def run(client: wire.RawClient, sql: str, protocol: str) -> list[wire.Message]:
    if protocol == "simple":
        return client.simple(sql)
    client.send(wire.parse(sql) + wire.bind() + wire.describe(b"P") + wire.execute() + wire.sync())
    return client.read_until_ready()


def every_byte(replies: list[wire.Message]) -> bytes:
    return b"".join(m.payload for m in replies)


def assert_refused(replies: list[wire.Message], secrets: list[bytes] = ()) -> None:
    found = wire.errors(replies)
    assert found, f"not refused: {[(m.tag, m.payload[:200]) for m in replies]}"
    assert found[0].sqlstate in REFUSED, found[0].fields()
    blob = every_byte(replies)
    for secret in secrets:
        assert secret not in blob, f"{secret!r} leaked in the reply: {blob[:500]!r}"


def assert_tables_intact(client: wire.RawClient) -> None:
    replies = client.simple("SELECT count(*), sum(id), min(label) FROM public.small")
    assert wire.rows(replies) == [[b"1000", b"500500", b"row-1"]], replies


def secret_files(server) -> dict[str, tuple[str, bytes]]:
    """name -> (path, bytes that prove the file was read)."""
    return {
        "passwd": ("/etc/passwd", b":0:0:"),
        "outside-csv": (str(server.outside / "secret.csv"), MARKER),
        "outside-json": (str(server.outside / "secret.json"), MARKER),
        "catalog": (str(server.data_dir / "catalog.db"), b"CREATE TABLE iceberg_tables"),
        "environ": ("/proc/self/environ", AWS_SECRET.encode()),
    }


READS = [
    "SELECT * FROM read_csv('{path}')",
    "SELECT * FROM read_csv_auto('{path}', header=false)",
    "SELECT * FROM read_csv(['{path}'])",
    "SELECT * FROM read_text('{path}')",
    "SELECT content FROM READ_TEXT('{path}')",
    'SELECT * FROM "read_text"(\'{path}\')',
    "SELECT * FROM main.read_text('{path}')",
    "SELECT * FROM system.main.read_text('{path}')",
    "SELECT * FROM read_blob('{path}')",
    "SELECT * FROM read_json('{path}')",
    "SELECT * FROM read_json_objects('{path}')",
    "SELECT * FROM read_ndjson_objects('{path}')",
    "SELECT * FROM read_parquet('{path}')",
    "SELECT * FROM parquet_scan('{path}')",
    "SELECT * FROM parquet_metadata('{path}')",
    "SELECT * FROM sniff_csv('{path}')",
    "SELECT * FROM read_duckdb('{path}')",
    "SELECT * FROM '{path}'",
    'SELECT * FROM "{path}"',
    "SELECT * FROM read_text('file://{path}')",
    "SELECT * FROM query('SELECT * FROM read_text(''{path}'')')",
    "SELECT * FROM query_table('{path}')",
    "SELECT (SELECT content FROM read_text('{path}')) AS c",
    "WITH x AS (SELECT * FROM read_text('{path}')) SELECT * FROM x",
    "SELECT id FROM public.small WHERE id = 1 UNION ALL SELECT length(content) FROM read_text('{path}')",
    "SELECT pg_read_file('{path}')",
    "SELECT pg_read_binary_file('{path}')",
    "SELECT lo_import('{path}')",
]


@pytest.mark.parametrize("protocol", ["simple", "extended"])
@pytest.mark.parametrize("target", ["passwd", "outside-csv", "outside-json", "catalog", "environ"])
def test_reading_files_outside_the_warehouse_is_refused(sandbox, target, protocol):
    path, proof = secret_files(sandbox)[target]
    client = connect(sandbox)
    for template in READS:
        replies = run(client, template.format(path=path), protocol)
        assert_refused(replies, [proof, MARKER, AWS_SECRET.encode()])
    assert_tables_intact(client)
    client.close()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('{outside}/*')",
    "SELECT * FROM glob('{data}/*')",
    "SELECT * FROM read_text('{outside}/*')",
    "SELECT * FROM read_text('../../../../../../etc/passwd')",
    "SELECT * FROM read_text('~/.bash_history')",
])
def test_listing_and_globbing_paths_is_refused(sandbox, sql):
    client = connect(sandbox)
    replies = run(client, sql.format(outside=sandbox.outside, data=sandbox.data_dir), "simple")
    # Names only a listing would reveal (the query's own path may be echoed in the error; that is fine).
    assert_refused(replies, [b"secret.json", b"catalog.db", b"os-release", b":0:0:", MARKER])
    client.close()


@pytest.mark.parametrize("sql, creates", [
    ("COPY (SELECT * FROM public.small) TO '{out}/copy.csv'", "copy.csv"),
    ("COPY public.small TO '{out}/copy2.csv' (FORMAT csv)", "copy2.csv"),
    ("COPY (SELECT 1) TO '{out}/copy3.parquet' (FORMAT parquet)", "copy3.parquet"),
    ("EXPORT DATABASE '{out}/export'", "export"),
    ("ATTACH '{out}/attached.db' AS evil", "attached.db"),
    ("SET log_query_path = '{out}/queries.log'", "queries.log"),
    ("SET profiling_output = '{out}/profile.json'", "profile.json"),
    ("SET temp_directory = '{out}/spill'", "spill"),
    ("SET secret_directory = '{out}/secrets'", "secrets"),
    ("SET extension_directory = '{out}/ext'", "ext"),
    ("COPY (SELECT 1) TO PROGRAM 'touch {out}/program'", "program"),
])
def test_writing_files_is_refused_and_nothing_is_written(sandbox, sql, creates):
    client = connect(sandbox)
    for protocol in ("simple", "extended"):
        replies = run(client, sql.format(out=sandbox.outside), protocol)
        assert_refused(replies)
        # Give a setting the chance to act: if log_query_path/profiling were accepted, this query writes.
        run(client, "SELECT count(*) FROM public.small", "simple")
        assert not (sandbox.outside / creates).exists(), f"{creates} was written"
    client.close()


@pytest.mark.parametrize("sql", [
    "CREATE TABLE evil (a int)",
    "CREATE TABLE public.evil AS SELECT * FROM public.small",
    "CREATE VIEW public.evil AS SELECT 1",
    "CREATE TEMP TABLE evil (a int)",
    "CREATE MACRO evil(x) AS x",
    "CREATE SCHEMA evil",
    "CREATE SEQUENCE evil",
    "CREATE SECRET evil (TYPE s3, KEY_ID 'x', SECRET 'y')",
    "CREATE OR REPLACE VIEW public.small AS SELECT 1 AS id",
    "INSERT INTO public.small VALUES (1001, 1, 'evil', 0.0)",
    "INSERT INTO public.small SELECT * FROM public.small",
    "UPDATE public.small SET label = 'evil'",
    "DELETE FROM public.small",
    "TRUNCATE public.small",
    "DROP TABLE public.small",
    "DROP VIEW public.small",
    "DROP SCHEMA public CASCADE",
    "ALTER TABLE public.small RENAME TO evil",
    "ALTER VIEW public.small RENAME TO evil",
    "ALTER TABLE public.small ADD COLUMN evil int",
    "COMMENT ON TABLE public.small IS 'evil'",
    "COPY public.small FROM '/etc/passwd'",
    "IMPORT DATABASE '/tmp'",
    "INSTALL httpfs",
    "FORCE INSTALL httpfs",
    "ATTACH ':memory:' AS evil",
    "DETACH memory",
    "USE system",
    "PRAGMA enable_profiling",
    "PRAGMA database_list",
    "PRAGMA table_info('public.small')",
    "PRAGMA show_tables",
    "CALL pragma_version()",
    "CALL enable_logging()",
    "CALL force_checkpoint()",
    "CALL dbgen(sf=1)",
    "SELECT * FROM duckdb_secrets()",
    "SELECT which_secret('s3://bucket/key', 's3')",
    # a statement serialized elsewhere: it never passes the server's own SQL checks, DuckDB's sandbox refuses it
    f"SELECT * FROM json_execute_serialized_sql({quote_literal(SERIALIZED_SECRETS)})",
])
def test_statements_that_change_or_escape_the_engine_are_refused(sandbox, sql):
    client = connect(sandbox)
    for protocol in ("simple", "extended"):
        assert_refused(run(client, sql, protocol), [AWS_SECRET.encode()])
        assert_tables_intact(client)
    client.close()


@pytest.mark.parametrize("sql", ["LOAD httpfs", "LOAD '{outside}/evil.duckdb_extension'", "CHECKPOINT",
                                 "VACUUM", "ANALYZE", "VACUUM FULL public.small", "ANALYZE public.small"])
def test_postgres_maintenance_verbs_are_refused_or_do_nothing(sandbox, sql):
    """Postgres clients send these (LOAD loads a library in Postgres): the server may answer them as no-ops,
    but they must never reach DuckDB (a LOAD of a planted file would run its code)."""
    (sandbox.outside / "evil.duckdb_extension").write_bytes(b"\x7fELF not really an extension")
    client = connect(sandbox)
    for protocol in ("simple", "extended"):
        replies = run(client, sql.format(outside=sandbox.outside), protocol)
        found = wire.errors(replies)
        if found:
            assert found[0].sqlstate in REFUSED, found[0].fields()
        else:
            assert [m.tag for m in replies if m.tag in b"TD"] == [], "a maintenance verb returned rows"
        assert_tables_intact(client)
    replies = client.simple("SELECT extension_name FROM duckdb_extensions() WHERE loaded AND "
                            "extension_name IN ('httpfs', 'evil')")
    assert not wire.rows(replies), "an extension was loaded"
    client.close()


RESTRICTION_SETTINGS = [
    "SET enable_external_access = true",
    "SET enable_external_access TO on",
    "SET GLOBAL enable_external_access = true",
    "SET SESSION enable_external_access = true",
    "RESET enable_external_access",
    "SET allowed_directories = ['/']",
    "SET allowed_paths = ['/etc/passwd']",
    "SET lock_configuration = false",
    "SET disabled_filesystems = ''",
    "SET allow_unsigned_extensions = true",
    "SET allow_community_extensions = true",
    "SET autoinstall_known_extensions = true",
    "SET autoload_known_extensions = true",
    "SET custom_extension_repository = 'http://127.0.0.1:1/'",
    "SET python_enable_replacements = true",
    "SET memory_limit = '1TB'",
    "SET threads = 1000",
    "SET access_mode = 'read_write'",
    "SET file_search_path = '/etc'",
    "SET home_directory = '/etc'",
    "SET allow_unredacted_secrets = true",
    "SELECT set_config('enable_external_access', 'true', false)",
    "RESET ALL",
]


@pytest.mark.parametrize("sql", RESTRICTION_SETTINGS)
def test_settings_that_lift_restrictions_are_refused_and_lift_nothing(sandbox, sql):
    client = connect(sandbox)
    other = connect(sandbox)
    replies = run(client, sql, "simple")
    if sql.startswith("SET"):  # RESET ALL and set_config() may be session-level no-ops: they must lift nothing
        assert_refused(replies)
    secret_csv = str(sandbox.outside / "secret.csv")
    for session in (client, other):  # neither this session nor any other gained access
        assert_refused(run(session, f"SELECT * FROM read_csv('{secret_csv}')", "simple"), [MARKER])
        assert_refused(run(session, "SELECT * FROM read_text('/etc/passwd')", "simple"), [b":0:0:"])
    client.close()
    other.close()


@pytest.mark.parametrize("sql", [
    "SELECT getenv('AWS_SECRET_ACCESS_KEY')",
    "SELECT current_setting('s3_secret_access_key')",
    "SELECT current_setting('s3_access_key_id')",
    "SHOW s3_secret_access_key",
    "SELECT * FROM duckdb_settings() WHERE name LIKE 's3%'",
])
def test_server_environment_and_credentials_are_not_readable(sandbox, sql):
    client = connect(sandbox)
    replies = run(client, sql, "simple")
    blob = every_byte(replies)
    assert AWS_SECRET.encode() not in blob and AWS_KEY_ID.encode() not in blob and PASSWORD.encode() not in blob
    assert wire.errors(replies) or not wire.rows(replies) or all(
        v in (None, b"") for row in wire.rows(replies) for v in row), replies
    assert_tables_intact(client)
    client.close()


def test_show_all_and_pg_settings_hold_no_secret(sandbox):
    client = connect(sandbox)
    for sql in ("SHOW ALL", "SELECT * FROM pg_catalog.pg_settings", "SELECT version()"):
        blob = every_byte(run(client, sql, "simple"))
        for secret in (AWS_SECRET, AWS_KEY_ID, PASSWORD):
            assert secret.encode() not in blob, f"{sql} shows a secret"
    client.close()


def test_warehouse_files_are_reachable_only_as_tables(sandbox):
    """The synced tables answer; the catalog and any other file beside them do not."""
    client = connect(sandbox)
    assert wire.rows(client.simple("SELECT count(*) FROM public.big")) == [[b"100000"]]
    for name in os.listdir(sandbox.data_dir):
        path = Path(sandbox.data_dir, name)
        if path.is_file():
            assert_refused(run(client, f"SELECT * FROM read_blob('{path}')", "simple"))
    client.close()


def test_s3_mode_reads_only_the_warehouse_prefix_of_its_bucket(s3, bucket, tmp_path):
    """With S3 the server holds keys that open the whole bucket (and maybe others): only s3://BUCKET/iceberg/
    may be read, whatever the path spelling."""
    env = s3.env(bucket)
    data_dir = tmp_path / "bemidb-data"
    seed_standard(data_dir, env=env)
    client_s3 = s3.client()
    client_s3.put_object(Bucket=bucket, Key="private/secret.csv", Body=b"id,secret\n1," + MARKER + b"\n")
    other = s3.create_bucket(f"{bucket}-other")
    client_s3.put_object(Bucket=other, Key="secret.csv", Body=b"id,secret\n1," + MARKER + b"\n")
    server = start_server(data_dir, env=env, log_level="INFO")
    try:
        client = wire.RawClient(server.host, server.port, timeout=60)
        assert client.startup()[-1].tag == b"Z"
        assert wire.rows(client.simple("SELECT count(*) FROM public.small")) == [[b"1000"]]
        for path in (f"s3://{bucket}/private/secret.csv", f"s3://{other}/secret.csv",
                     f"s3://{bucket}/iceberg/../private/secret.csv", f"s3://{bucket}/iceberg/%2E%2E/private/secret.csv",
                     f"s3://{bucket}//private/secret.csv", f"S3://{bucket}/private/secret.csv",
                     f"s3a://{bucket}/private/secret.csv", f"http://{s3.endpoint.split('://')[1]}/{bucket}/private/secret.csv"):
            for template in ("SELECT * FROM read_csv('{path}')", "SELECT * FROM read_text('{path}')",
                             "SELECT * FROM '{path}'"):
                assert_refused(client.simple(template.format(path=path)), [MARKER])
        for pattern in (f"s3://{bucket}/*", f"s3://{bucket}/**", f"s3://{other}/*"):
            assert_refused(client.simple(f"SELECT * FROM glob('{pattern}')"), [b"private/secret", b"secret.csv"])
        client.close()
    finally:
        server.stop()
    assert s3.env(bucket)["AWS_SECRET_ACCESS_KEY"] not in server.log()


def test_files_in_the_servers_working_directory_temp_folder_are_not_readable(tmp_path):
    """DuckDB always allows reading its temp_directory, by default ./.tmp under the working directory: the
    server must spill somewhere private, so a file lying in <cwd>/.tmp stays out of reach."""
    data_dir = tmp_path / "bemidb-data"
    seed_standard(data_dir)
    cwd_tmp = REPO / ".tmp"  # start_server runs the server in the repo
    created = not cwd_tmp.exists()
    cwd_tmp.mkdir(exist_ok=True)
    probe = cwd_tmp / f"hardening-probe-{os.getpid()}.csv"
    probe.write_bytes(b"id,secret\n1," + MARKER + b"\n")
    server = start_server(data_dir, log_level="INFO")
    try:
        client = wire.RawClient(server.host, server.port, timeout=30)
        assert client.startup()[-1].tag == b"Z"
        for sql in (f"SELECT * FROM read_csv('{probe}')", "SELECT * FROM read_csv('.tmp/" + probe.name + "')"):
            assert_refused(client.simple(sql), [MARKER])
        assert_refused(client.simple(f"SELECT * FROM glob('{cwd_tmp}/*')"), [probe.name.encode()])
        client.close()
    finally:
        server.stop()
        probe.unlink()
        if created:
            cwd_tmp.rmdir()


def test_hostile_source_table_names_stay_inside_the_warehouse(pg, tmp_path):
    """Table names come from the source: '../../x', 'a/b' or '..' must not make the syncer write (or its vacuum
    delete) outside the warehouse, and the tables must still sync and serve under their own names."""

    url = pg.create_database("hard_sandbox_names")
    names = ["../../../escape", "a/b", "..", "../s_t/../../x"]
    with psycopg_connect(url) as conn:
        for i, name in enumerate(names):
            conn.execute(f'CREATE TABLE "{name}" AS SELECT {i} AS id')
    root = tmp_path / "root"
    data_dir = root / "data"
    result = run_bemidb("sync", "postgres", "--database-url", url, env={"BEMIDB_DATA_DIR": str(data_dir)},
                        timeout=300)
    assert result.returncode == 0, result.stderr
    warehouse = (data_dir / "warehouse").resolve()
    outside = [p for p in root.rglob("*") if p.is_file() and p != data_dir / "catalog.db"
               and not p.resolve().is_relative_to(warehouse) and not p.name.startswith("catalog.db")]
    assert not outside, f"files written outside the warehouse: {outside[:5]}"
    server = start_server(data_dir, log_level="INFO")
    try:
        client = wire.RawClient(server.host, server.port, timeout=30)
        assert client.startup()[-1].tag == b"Z"
        for i, name in enumerate(names):
            quoted = '"' + name.replace('"', '""') + '"'
            assert wire.rows(client.simple(f"SELECT id FROM public.{quoted}")) == [[str(i).encode()]], name
        client.close()
    finally:
        server.stop()


def psycopg_connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_hostile_source_identifiers_and_comments_are_data_not_sql(pg, tmp_path):
    """Quotes in table/column names and SQL in comments travel from the source into the server's views and
    catalog tables: they must come back verbatim, never run."""

    url = pg.create_database("hard_sandbox_inject")
    comment = "x'); SELECT * FROM read_text('/etc/passwd'); --"
    with psycopg_connect(url) as conn:
        conn.execute('CREATE TABLE "t\'q""x" ("c\'1" int, "c""2" text)')
        conn.execute('INSERT INTO "t\'q""x" VALUES (1, \'a\')')
        conn.execute(f'COMMENT ON TABLE "t\'q""x" IS $${comment}$$')
        conn.execute('COMMENT ON COLUMN "t\'q""x"."c\'1" IS $$\'||(SELECT 1)||\'$$')
    data_dir = tmp_path / "bemidb-data"
    result = run_bemidb("sync", "postgres", "--database-url", url, env={"BEMIDB_DATA_DIR": str(data_dir)},
                        timeout=300)
    assert result.returncode == 0, result.stderr
    server = start_server(data_dir, log_level="INFO")
    try:
        client = wire.RawClient(server.host, server.port, timeout=30)
        assert client.startup()[-1].tag == b"Z"
        assert wire.rows(client.simple('SELECT "c\'1", "c""2" FROM public."t\'q""x"')) == [[b"1", b"a"]]
        columns = wire.rows(client.simple("SELECT column_name FROM information_schema.columns "
                                          "WHERE table_schema = 'public' ORDER BY ordinal_position"))
        assert columns == [[b"c'1"], [b'c"2']]
        descriptions = sorted(r[0] for r in wire.rows(client.simple(
            "SELECT description FROM pg_description WHERE classoid = 1259")))  # tables and columns, not built-ins
        assert descriptions == sorted([comment.encode(), b"'||(SELECT 1)||'"])
        client.close()
    finally:
        server.stop()
    assert ":0:0:" not in server.log()
