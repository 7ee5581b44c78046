"""Fixtures of the permissions suite: the source Postgres with roles and policies, and bemidb serving the same
data with the same grants from a users file (local disk)."""

from __future__ import annotations

import pytest

from tests.support import permissions as world
from tests.support.commands import run_bemidb
from tests.support.server import start_server


@pytest.fixture(scope="package")
def source(pg):
    return world.create_source(pg)


@pytest.fixture(scope="package")
def synced(source, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("permissions") / "data"
    data_dir.mkdir()
    run_bemidb("sync", "postgres", "--database-url", source, env={"BEMIDB_DATA_DIR": str(data_dir)}, check=True)
    return data_dir


@pytest.fixture(scope="package")
def server(synced, tmp_path_factory):
    users_file = tmp_path_factory.mktemp("users") / "users.toml"
    users_file.write_text(world.users_toml())
    process = start_server(synced, env={"BEMIDB_USER": world.ADMIN, "BEMIDB_PASSWORD": world.ADMIN_PASSWORD,
                                        "BEMIDB_USERS_FILE": str(users_file)}, log_level="INFO")
    process.users_file = users_file
    yield process
    process.stop()
