"""A source URL the way psql users write it: the password and the rest from libpq's environment and password
file, and a one-line error (never a traceback) when the server asks a password nobody gave."""

from __future__ import annotations

import pytest

from tests.support.commands import run_bemidb

DB = "first_hour_connect"


@pytest.fixture(scope="module")
def source(pg):
    pg.create_database(DB)
    pg.execute(DB, "CREATE TABLE items (id int PRIMARY KEY, name text)")
    pg.execute(DB, "INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 5) g")
    return pg


def _sync(url: str, data_dir, home, **env):
    return run_bemidb("sync", "postgres", "--database-url", url, "--data-dir", str(data_dir),
                      env={"HOME": str(home), **env}, timeout=120)


def _assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], result.stderr


def test_password_from_pgpassword(source, data_dir, tmp_path):
    url = f"postgresql://{source.user}@127.0.0.1:{source.port}/{DB}"
    result = _sync(url, data_dir, tmp_path, PGPASSWORD=source.password)
    assert result.returncode == 0, result.stderr
    assert "1 synced, 0 failed, 5 rows" in result.stderr


def test_everything_from_pg_variables(source, data_dir, tmp_path):
    """`postgresql:///` leaves host, port, user, database and password to PGHOST, PGPORT, ... as libpq does."""
    result = _sync("postgresql:///", data_dir, tmp_path, PGHOST="127.0.0.1", PGPORT=str(source.port),
                   PGUSER=source.user, PGDATABASE=DB, PGPASSWORD=source.password, PGSSLMODE="disable")
    assert result.returncode == 0, result.stderr
    assert "1 synced, 0 failed, 5 rows" in result.stderr


def test_password_from_pgpass_and_pgpassfile(source, data_dir, tmp_path):
    url = f"postgresql://{source.user}@127.0.0.1:{source.port}/{DB}"
    pgpass = tmp_path / ".pgpass"
    # the first matching line wins; `*` matches anything; `\:` is a colon inside a field
    pgpass.write_text(f"# comment\nother\\:host:*:*:*:wrong\n127.0.0.1:{source.port}:{DB}:*:{source.password}\n"
                      f"*:*:*:*:wrong\n")
    pgpass.chmod(0o600)
    assert _sync(url, data_dir, tmp_path).returncode == 0  # ~/.pgpass
    moved = tmp_path / "elsewhere.pass"
    pgpass.rename(moved)
    result = _sync(url, data_dir, tmp_path, PGPASSFILE=str(moved))
    assert result.returncode == 0, result.stderr
    moved.chmod(0o644)  # readable by others: ignored, as libpq does, and said so
    _assert_one_line_error(_sync(url, data_dir, tmp_path, PGPASSFILE=str(moved)),
                           "asks a password", "others can read it", "chmod 600")


def test_missing_password_is_one_line_in_sync_and_doctor(source, data_dir, tmp_path):
    url = f"postgresql://{source.user}@127.0.0.1:{source.port}/{DB}"
    _assert_one_line_error(_sync(url, data_dir, tmp_path), f"127.0.0.1:{source.port}/{DB}",
                           f"asks a password for user {source.user}", "PGPASSWORD")
    doctor = run_bemidb("doctor", "--data-dir", str(data_dir), "--database-url", url, "--port", "0",
                        env={"HOME": str(tmp_path), "COLUMNS": "250"})
    assert doctor.returncode == 1
    row = [line for line in doctor.stdout.splitlines() if " source postgres " in line]
    assert len(row) == 1 and "FAIL" in row[0] and "asks a password" in row[0], doctor.stdout
    assert "AttributeError" not in doctor.stdout


def test_wrong_password_names_where_it_came_from(source, data_dir, tmp_path):
    url = f"postgresql://{source.user}@127.0.0.1:{source.port}/{DB}"
    _assert_one_line_error(_sync(url, data_dir, tmp_path, PGPASSWORD="not-it"),
                           "password authentication failed", "password from PGPASSWORD")


def test_sslmode_and_sslrootcert(source, data_dir, tmp_path):
    url = f"postgresql://{source.user}:{source.password}@127.0.0.1:{source.port}/{DB}"
    # the test server has no TLS: require must refuse to go on in plain text
    _assert_one_line_error(_sync(url, data_dir, tmp_path, PGSSLMODE="require"), "SSL")
    assert _sync(url + "?sslmode=disable", data_dir, tmp_path, PGSSLMODE="require").returncode == 0
    missing = tmp_path / "no-such-root.crt"
    result = _sync(url, data_dir, tmp_path, PGSSLMODE="verify-full", PGSSLROOTCERT=str(missing))
    assert result.returncode == 2 and f"no such file {missing}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_unix_socket_from_pghost_or_the_url(source, data_dir, tmp_path):
    """PGHOST (or ?host=) naming a directory is the server's Unix socket there, as in libpq (here: trust auth,
    so no password at all)."""
    result = _sync(f"postgresql:///{DB}", data_dir, tmp_path, PGHOST=str(source.root), PGPORT=str(source.port),
                   PGUSER=source.user)
    assert result.returncode == 0, result.stderr
    result = _sync(f"postgresql://{source.user}@/{DB}?host={source.root}&port={source.port}", data_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 synced, 0 failed, 5 rows" in result.stderr
