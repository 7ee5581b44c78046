"""Fixtures of the permissions suite: the source Postgres with roles and policies, and bemidb serving the same
data with the same grants from a users file (local disk)."""

from __future__ import annotations

import pytest

from tests.support import permissions as world


@pytest.fixture(scope="package")
def source(pg):
    return world.create_source(pg)


@pytest.fixture(scope="package")
def server(source, tmp_path_factory):
    process = world.sync_and_serve(source, tmp_path_factory.mktemp("permissions"))
    yield process
    process.stop()
