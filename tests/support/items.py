"""A small typed table (`items`: every common type, NULLs, quoting) written straight into a catalog, for the
server tests that need data but no source Postgres."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from bemidb import config
from bemidb.storage.catalog import open_catalog
from bemidb.storage.writer import write_table

UTC = dt.UTC


def catalog_for(data_dir: Path, env: dict | None = None):
    """The catalog of `data_dir`; `env` adds the rest of the warehouse's settings (AWS_* on S3)."""
    return open_catalog(config.resolve(None, config.STORAGE, env={"BEMIDB_DATA_DIR": str(data_dir), **(env or {})}))


def _field(name: str, arrow_type: pa.DataType, pg_type: str) -> pa.Field:
    return pa.field(name, arrow_type, metadata={b"pg_type": pg_type.encode()})


ITEMS_SCHEMA = pa.schema([
    _field("id", pa.int64(), "bigint"),
    _field("name", pa.string(), "text"),
    _field("price", pa.decimal128(10, 2), "numeric(10,2)"),
    _field("active", pa.bool_(), "boolean"),
    _field("created", pa.timestamp("us", tz="UTC"), "timestamp with time zone"),
    _field("tags", pa.list_(pa.string()), "text[]"),
    _field("payload", pa.string(), "jsonb"),
    _field("blob", pa.binary(), "bytea"),
    _field("day", pa.date32(), "date"),
    _field("ratio", pa.float64(), "double precision"),
])
ITEMS = [
    {"id": 1, "name": "apple", "price": Decimal("1.50"), "active": True,
     "created": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), "tags": ["red", "fruit"],
     "payload": '{"a": 1, "b": [1, 2]}', "blob": b"\x00\x01\xff", "day": dt.date(2024, 1, 2), "ratio": 0.1},
    {"id": 2, "name": "pear, \"green\"", "price": Decimal("-20.05"), "active": False,
     "created": dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), "tags": ["a b", None, ""],
     "payload": '{"x": null}', "blob": b"", "day": dt.date(1999, 12, 31), "ratio": -1.5e100},
    {"id": 3, "name": None, "price": None, "active": None, "created": None, "tags": None, "payload": None,
     "blob": None, "day": None, "ratio": None},
]


def write_items(data_dir: Path, schema: str = "public", name: str = "items", env: dict | None = None) -> None:
    batch = pa.RecordBatch.from_pylist(ITEMS, schema=ITEMS_SCHEMA)
    write_table(catalog_for(data_dir, env), (schema, name), ITEMS_SCHEMA, [batch])
