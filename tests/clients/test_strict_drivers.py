"""Strict drivers that send parameters in binary as the server describes them: pgx v4 (Go, built offline in
GOPATH mode from Debian's golang-github-jackc-pgx-v4-dev) and tokio-postgres 0.7 (Rust, built offline against
Debian's librust-*-dev crates: cargo, librust-tokio-postgres-dev, librust-tokio-dev, librust-serde-json-dev,
librust-uuid-dev, librust-chrono-dev), against the test Postgres and bemidb serving a sync of it, compared.
Slow (the builds take ~30 s and ~2 min); each is skipped when its toolchain is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.clients.test_parameters import SOURCE_DDL
from tests.support.commands import run_bemidb
from tests.support.server import start_server

PGX_SOURCE = Path(__file__).parent / "pgx" / "main.go"
TOKIO_SOURCE = Path(__file__).parent / "tokio"
GOPATH = "/usr/share/gocode"
CRATES = Path("/usr/share/cargo/registry")
pytestmark = pytest.mark.slow
needs_go = pytest.mark.skipif(shutil.which("go") is None or not Path(GOPATH, "src/github.com/jackc/pgx/v4").exists(),
                              reason="go or pgx v4 missing (apt-get install golang-go golang-github-jackc-pgx-v4-dev)")
needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None or not any(CRATES.glob("tokio-postgres-*")),
                                 reason="cargo or Debian's tokio-postgres crates missing")
CARGO_CONFIG = f"""[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "{CRATES}"

[net]
offline = true
"""


@pytest.fixture(scope="module")
def tokio_binary(tmp_path_factory):
    where = tmp_path_factory.mktemp("tokio")
    shutil.copytree(TOKIO_SOURCE, where, dirs_exist_ok=True)
    (where / ".cargo").mkdir(exist_ok=True)
    (where / ".cargo" / "config.toml").write_text(CARGO_CONFIG)
    env = {**os.environ, "CARGO_HOME": str(where / "cargo-home")}
    done = subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=where, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stderr
    return where / "target" / "release" / "tokio-probe"


@pytest.fixture(scope="module")
def pgx_binary(tmp_path_factory):
    where = tmp_path_factory.mktemp("pgx")
    shutil.copy(PGX_SOURCE, where / "main.go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": GOPATH, "GOCACHE": str(where / "cache")}
    done = subprocess.run(["go", "build", "-o", "pgxprobe", "main.go"], cwd=where, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return where / "pgxprobe"


@pytest.fixture(scope="module")
def source(pg):
    url = pg.create_database("compat_strict")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCE_DDL)
    return url


@pytest.fixture(scope="module")
def server(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("compat-strict") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    process = start_server(data_dir, log_level="INFO")
    yield process
    process.stop()


def _run(binary: Path, dsn: str) -> dict:
    done = subprocess.run([str(binary), dsn], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@needs_go
def test_pgx_as_postgres(server, source, pgx_binary):
    ours, theirs = _run(pgx_binary, server.dsn("alice")), _run(pgx_binary, source)
    assert theirs["uuid"] == [[1, "ann"]]
    assert ours == theirs


@needs_cargo
def test_tokio_postgres_as_postgres(server, source, tokio_binary):
    ours, theirs = _run(tokio_binary, server.dsn("alice")), _run(tokio_binary, source)
    assert theirs["uuid"] == [1] and theirs["any text[]"] == [1, 3]
    assert ours == theirs
