"""Tables the hardening tests attack, written straight into a data dir's catalog with pyiceberg.

The server only needs Iceberg tables in the catalog; writing them with pyiceberg (as the syncer does) keeps
these tests independent of any source, and the shape is exactly what `bemidb sync` commits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from bemidb import config
from bemidb.storage.catalog import PROP_PG_TYPES, PROP_SOURCE, open_catalog

_PG_TYPES = {pa.int32(): "integer", pa.int64(): "bigint", pa.string(): "text", pa.float64(): "double precision",
             pa.bool_(): "boolean", pa.date32(): "date"}


def storage_config(data_dir: Path | str, env: dict | None = None) -> config.Config:
    return config.resolve(None, config.STORAGE, env={"BEMIDB_DATA_DIR": str(data_dir), **(env or {})})


def write_table(data_dir: Path | str, schema: str, name: str, data: pa.Table, env: dict | None = None) -> None:
    """Create (or replace the contents of) schema.name with `data`, as one Iceberg snapshot."""
    catalog = open_catalog(storage_config(data_dir, env))
    catalog.create_namespace_if_not_exists(schema)
    pg_types = [_PG_TYPES.get(field.type, "text") for field in data.schema]
    table = catalog.create_table_if_not_exists(
        (schema, name), schema=data.schema,
        properties={PROP_PG_TYPES: json.dumps(pg_types), PROP_SOURCE: "postgres"})
    if table.current_snapshot() is None:
        table.append(data)
    else:
        table.overwrite(data)


def numbers(rows: int) -> pa.Table:
    """id 1..rows, grp = id % 10, label = 'row-<id>', amount = id * 0.5: easy to check any result against."""
    import pyarrow.compute as pc

    ids = pa.array(range(1, rows + 1), pa.int64())
    return pa.table({
        "id": ids,
        "grp": pc.cast(pc.subtract(ids, pc.multiply(pc.divide(ids, 10), 10)), pa.int32()),
        "label": pc.binary_join_element_wise("row-", pc.cast(ids, pa.string()), ""),
        "amount": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
    })


def seed_standard(data_dir: Path | str, env: dict | None = None) -> None:
    """public.small (1k rows) and public.big (100k rows) of numbers(): what load, fuzz and sandbox query."""
    write_table(data_dir, "public", "small", numbers(1_000), env)
    write_table(data_dir, "public", "big", numbers(100_000), env)
