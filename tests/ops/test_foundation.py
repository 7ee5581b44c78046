"""The ground everything stands on: the CLI's behaviour, the config rules, and the real test services."""

from __future__ import annotations

import psycopg
import pytest

from bemidb import __version__, config
from tests.support.commands import run_bemidb


def test_help_lists_commands_and_env_vars():
    result = run_bemidb("--help", check=True)
    for command in ("serve", "sync", "tables", "version"):
        assert command in result.stdout
    serve_help = run_bemidb("serve", "--help", check=True).stdout
    assert "BEMIDB_PORT" in serve_help and "--port" in serve_help and "54321" in serve_help
    sync_help = run_bemidb("sync", "postgres", "--help", check=True).stdout
    for env in ("SOURCE_POSTGRES_DATABASE_URL", "SOURCE_POSTGRES_INCLUDE_TABLES", "DESTINATION_SCHEMA_NAME"):
        assert env in sync_help


def test_version_prints_version_and_bundled_dependencies():
    out = run_bemidb("version", check=True).stdout
    assert f"bemidb {__version__}" in out
    assert "duckdb " in out and "pyiceberg " in out and "pyarrow " in out


@pytest.mark.parametrize(
    "args, env, expected",
    [
        (["serve", "--port", "abc"], {}, "--port: 'abc' is not a TCP port"),
        (["serve"], {"BEMIDB_PORT": "99999"}, "BEMIDB_PORT: '99999' is not a TCP port"),
        (["sync", "postgres", "--database-url", "mysql://x"], {}, "--database-url: expected a URL"),
        (["tables"], {"AWS_S3_BUCKET": "my-bucket"}, "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are missing"),
        (["serve", "--log-level", "loud"], {}, "--log-level: 'loud' is not one of"),
    ],
)
def test_bad_setting_is_one_line_error_and_exit_2(args, env, expected):
    result = run_bemidb(*args, env=env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_flag_exits_2():
    result = run_bemidb("serve", "--no-such-flag")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_flag_beats_env_beats_default():
    parser = config.argparse.ArgumentParser()
    config.add_arguments(parser, config.SERVER)
    assert config.resolve(parser.parse_args([]), config.SERVER, env={}).port == 54321
    assert config.resolve(parser.parse_args([]), config.SERVER, env={"BEMIDB_PORT": "6000"}).port == 6000
    args = parser.parse_args(["--port", "7000"])
    assert config.resolve(args, config.SERVER, env={"BEMIDB_PORT": "6000"}).port == 7000


def test_redacted_config_hides_secrets():
    cfg = config.resolve(None, config.STORAGE + config.SERVER,
                         env={"BEMIDB_USER": "u", "BEMIDB_PASSWORD": "hunter2", "AWS_S3_BUCKET": "b-1",
                              "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "shh"})
    shown = str(cfg.redacted())
    assert "hunter2" not in shown and "shh" not in shown and "AKIA" not in shown


def test_tables_on_empty_embedded_default_refuses_to_create_a_catalog(data_dir):
    result = run_bemidb("tables", "--data-dir", str(data_dir))
    assert result.returncode == 2 and f"no catalog in the data dir {data_dir}" in result.stderr
    assert not (data_dir / "catalog.db").exists()


def test_postgres_fixture_is_a_real_server(pg):
    url = pg.create_database("foundation")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (id int primary key, name text)")
        conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        assert conn.execute("SELECT count(*), max(name) FROM t").fetchone() == (2, "b")
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("15")


def test_postgres_fixture_checks_passwords(pg):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg.url(password="wrong")).close()


def test_seaweedfs_fixture_is_a_real_s3(s3, bucket):
    client = s3.client()
    client.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello bemidb")
    assert client.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == b"hello bemidb"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["dir/hello.txt"]


def test_pyproject_version_matches_package():
    import tomllib

    from tests.support.commands import REPO

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"] == __version__


def test_exit_skips_teardown_but_runs_exit_handlers_and_flushes_output(tmp_path):
    """bemidb ends its process with os._exit once done (the interpreter's teardown cost 0.2 s a run): exit
    handlers must still run, buffered output (stdout to a file or pipe) must still arrive, the code must too."""
    import subprocess
    import sys

    script = ("import atexit, sys\n"
              "from bemidb.cli.launch import exit_now\n"
              f"atexit.register(lambda: open({str(tmp_path / 'ran')!r}, 'w').write('yes'))\n"
              "sys.stdout.write('x' * 100000)\n"  # more than one buffer's worth, no newline
              "sys.stderr.write('to stderr')\n"
              "exit_now(3)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stdout == "x" * 100000 and result.stderr == "to stderr"
    assert (tmp_path / "ran").read_text() == "yes"


def test_server_fixture_is_not_fooled_by_another_listener_on_its_port(data_dir):
    """start_server waits for the server's own "serving" line: a port another process took between picking
    and binding must not pass for a started server (it once made a CI run connect to a dead one)."""
    import socket

    from tests.support.server import start_server

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="port taken 3 times"):
            start_server(data_dir, env={"BEMIDB_PORT": str(port)}, timeout=60)
