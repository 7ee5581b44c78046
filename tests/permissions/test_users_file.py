"""The users file: logins with SCRAM verifiers in Postgres's own format, `bemidb users add`, reload on SIGHUP
without dropping connections, a broken file keeping the old grants, clear errors for bad files at boot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from bemidb.server.grants.users import UsersFileError, Verifier, load
from tests.support import permissions as world
from tests.support.commands import run_bemidb
from tests.support.server import start_server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_verifier_is_postgres_own_format(pg):
    """Postgres takes our verifier as a role's stored password and accepts the password it was made from."""
    verifier = Verifier.from_password("s3cret-for-pg")
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS verifier_check")
        conn.execute(f"CREATE ROLE verifier_check LOGIN PASSWORD '{verifier.text()}'")
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'verifier_check'").fetchone()[0]
    assert stored == verifier.text()
    assert Verifier.parse(stored) == verifier
    with psycopg.connect(pg.url(user="verifier_check", password="s3cret-for-pg")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("verifier_check",)


def test_users_add_prints_an_entry_that_logs_in(tmp_path, pg):
    result = subprocess.run([sys.executable, "-m", "bemidb", "users", "add", "bi-tool"], input="pw-of-bi\n",
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr
    assert "pw-of-bi" not in result.stdout
    path = tmp_path / "users.toml"
    path.write_text(result.stdout)
    users = load(path)
    assert list(users) == ["bi-tool"] and users["bi-tool"].grants == ()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = start_server(data_dir, env={"BEMIDB_USERS_FILE": str(path)}, log_level="INFO")
    try:
        with psycopg.connect(server.dsn("bi-tool", "pw-of-bi"), autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        for user, password in (("bi-tool", "wrong"), ("nobody", "pw-of-bi")):
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(server.dsn(user, password), connect_timeout=10)
    finally:
        server.stop()


def test_logins(server):
    with psycopg.connect(server.dsn(world.ADMIN, world.ADMIN_PASSWORD), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM secret").fetchone() == (2,)  # BEMIDB_USER sees everything
    with psycopg.connect(server.dsn("analyst", world.PASSWORDS["analyst"]), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("analyst",)
    for user, password in (("analyst", world.PASSWORDS["tenant1"]), ("ghost", "x"), (world.ADMIN, "x")):
        with pytest.raises(psycopg.OperationalError, match=f'password authentication failed for user "{user}"'):
            psycopg.connect(server.dsn(user, password), connect_timeout=10)


def _wait_for(predicate, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sighup_reloads_without_dropping_connections_and_a_broken_file_keeps_the_grants(source, tmp_path):
    server = world.sync_and_serve(source, tmp_path)
    try:
        conn = psycopg.connect(server.dsn("analyst", world.PASSWORDS["analyst"]), autocommit=True)
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM secret")
        server.users_file.write_text(world.users_toml('\n  { table = "public.secret", columns = ["id"] },'))
        os.kill(server.pid, signal.SIGHUP)
        _wait_for(lambda: "reloaded" in server.log())
        assert conn.execute("SELECT id FROM secret ORDER BY id").fetchall() == [(1,), (2,)]  # same connection
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT payload FROM secret")
        server.users_file.write_text('[users.analyst]\npassword = "not a verifier"\n')
        os.kill(server.pid, signal.SIGHUP)
        _wait_for(lambda: "keeping the previous users and grants" in server.log())
        assert conn.execute("SELECT id FROM secret ORDER BY id").fetchall() == [(1,), (2,)]
        line = [x for x in server.log().splitlines() if "keeping the previous" in x]
        assert len(line) == 1 and "user 'analyst'" in line[0]
        with psycopg.connect(server.dsn("tenant1", world.PASSWORDS["tenant1"])) as other:  # old users still log in
            assert other.execute("SELECT count(*) FROM orders").fetchone() == (30,)
        conn.close()
        assert server.alive()
    finally:
        server.stop()


@pytest.mark.parametrize("text, message", [
    ("[users.a]\ngrants = []\n", "password (a SCRAM-SHA-256 verifier) is missing"),
    ("[users.a\n", "invalid TOML"),
    ('[users.a]\npassword = "SCRAM-SHA-256$4096:c2FsdA==$abc:def"\n', "password verifier"),
    ("[users.a]\npassword = \"{v}\"\ngrants = [{{ table = \"orders\" }}]\n", "is not schema.table"),
    ("[users.a]\npassword = \"{v}\"\ngrants = [{{ table = \"public.t\", rows = \"x = (SELECT 1 FROM y)\" }}]\n",
     "no subqueries"),
    ("[users.a]\npassword = \"{v}\"\ngrants = [{{ table = \"public.t\", rows = \"x = = 1\" }}]\n", "row filter"),
    ("[users.a]\npassword = \"{v}\"\ngrants = [{{ table = \"public.t\", colums = [] }}]\n", "unknown key 'colums'"),
    ("[users.admin]\npassword = \"{v}\"\n", "is BEMIDB_USER already"),
])
def test_a_bad_users_file_stops_serve_with_one_line(tmp_path, text, message):
    path = tmp_path / "users.toml"
    path.write_text(text.format(v=Verifier.from_password("x").text()))
    result = run_bemidb("serve", "--users-file", str(path), "--port", "1", "--host", "127.0.0.1",
                        env={"BEMIDB_DATA_DIR": str(tmp_path), "BEMIDB_USER": "admin"}, timeout=60)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and message in errors[0] and str(path) in errors[0], result.stderr
    with pytest.raises(UsersFileError, match="users file"):
        from bemidb.server.grants.store import UsersStore
        UsersStore(path, reserved="admin")
