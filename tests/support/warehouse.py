"""Where a serve-side test's tables live: local disk or SeaweedFS S3, behind one module-scoped fixture
(`warehouse`, in tests/conftest.py) so every such test runs on both storages, as production serves from S3.

    def server(warehouse):
        write_items(warehouse.data_dir, env=warehouse.env)
        process = start_server(warehouse.data_dir, env=warehouse.env)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bemidb import config
from bemidb.storage.catalog import open_catalog

STORAGES = ["local", "s3"]


@dataclass
class Warehouse:
    kind: str  # "local" or "s3"
    data_dir: Path  # the embedded catalog (and, on local disk, the tables)
    env: dict[str, str]  # what a bemidb process and the writers need: BEMIDB_DATA_DIR, AWS_* on S3

    @property
    def on_s3(self) -> bool:
        return self.kind == "s3"

    def catalog(self):
        return open_catalog(config.resolve(None, config.STORAGE, env=self.env))


def make_warehouse(kind: str, data_dir: Path, s3=None) -> Warehouse:
    """`s3`: the running SeaweedS3 (a fresh bucket is made in it) when kind is "s3"."""
    import uuid

    env = {"BEMIDB_DATA_DIR": str(data_dir)}
    if kind == "s3":
        env.update(s3.env(s3.create_bucket(f"w-{uuid.uuid4().hex[:12]}")))
    return Warehouse(kind, data_dir, env)
