"""The Iceberg catalog: pyiceberg's SqlCatalog, on a SQLite file (embedded) or a Postgres database.

Both use the standard Iceberg SQL-catalog tables (iceberg_tables, iceberg_namespace_properties), so Spark,
Trino or pyiceberg itself can open the same catalog with catalog name "bemidb".
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from bemidb.config import Config

CATALOG_NAME = "bemidb"

# Table properties bemidb writes on every table (read by the server's pg_catalog layer and `bemidb tables`).
PROP_SOURCE = "bemidb.source"  # postgres | amplitude | attio | matview
PROP_PG_TYPES = "bemidb.pg-types"  # JSON list: the source Postgres type of each column, in order
PROP_SYNCED_AT = "bemidb.synced-at"  # ISO-8601 UTC time of the last commit by a sync
PROP_COMMENT = "comment"  # table comment, when the source has one
PROP_PRIMARY_KEY = "bemidb.primary-key"  # JSON list: the source table's primary-key columns, in key order
PROP_MATVIEW_DEFINITION = "bemidb.matview-definition"  # the defining query of a materialized view (Postgres SQL)


class BemiCatalog(SqlCatalog):
    """SqlCatalog with an engine we build ourselves: SQLite in WAL mode, pg8000 with sslmode honoured."""

    def __init__(self, name: str, engine: Engine, **properties: str):
        Catalog.__init__(self, name, **properties)
        self.engine = engine
        self._init_catalog()


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record):  # readers never block the writer, and vice versa
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _ssl_connect_args(database_url: str) -> dict:
    """Translate libpq's sslmode into a pg8000 ssl_context (pg8000 does not read sslmode itself)."""
    mode = parse_qs(urlparse(database_url).query).get("sslmode", ["prefer"])[0]
    if mode in ("disable", "allow", "prefer"):
        # "prefer" would need a retry without TLS on refusal; we take the libpq-compatible safe reading of
        # "try nothing special": plain connection, as most local catalogs are.
        return {}
    context = ssl.create_default_context()
    if mode in ("require",):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return {"ssl_context": context}


def catalog_engine(cfg: Config) -> Engine:
    url = cfg.catalog_sqlalchemy_url
    if url.startswith("sqlite"):
        cfg.data_path.mkdir(parents=True, exist_ok=True)
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, connect_args=_ssl_connect_args(cfg.catalog_database_url))


def file_io_properties(cfg: Config) -> dict[str, str]:
    """pyiceberg FileIO settings: pyarrow's filesystems, S3 keys and endpoint when a bucket is used."""
    props = {"py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
    if cfg.uses_s3:
        props.update({
            "s3.region": cfg.aws_region,
            "s3.access-key-id": cfg.aws_access_key_id,
            "s3.secret-access-key": cfg.aws_secret_access_key,
        })
        if cfg.s3_endpoint_url:
            props["s3.endpoint"] = cfg.s3_endpoint_url
            props["s3.force-virtual-addressing"] = "false"
    return props


def open_catalog(cfg: Config) -> BemiCatalog:
    if not cfg.uses_s3:
        (cfg.data_path / "warehouse").mkdir(parents=True, exist_ok=True)
    return BemiCatalog(CATALOG_NAME, catalog_engine(cfg), warehouse=cfg.warehouse, **file_io_properties(cfg))


# ---------------------------------------------------------------------------------------------------------
# What the query server needs to know about each table, read from the catalog (no data files opened).

@dataclass(frozen=True)
class ColumnInfo:
    name: str
    pg_type: str  # the SOURCE Postgres type as format_type() prints it: bigint, numeric(10,2), text[], ...
    nullable: bool
    comment: str | None = None


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    metadata_location: str  # changes with every commit: the cheap "did it change?" check
    columns: tuple[ColumnInfo, ...]
    source: str = ""  # PROP_SOURCE
    comment: str | None = None
    definition: str | None = None  # PROP_MATVIEW_DEFINITION, for materialized views
    primary_key: tuple[str, ...] = ()  # PROP_PRIMARY_KEY: shown by pg_constraint/pg_index to ORMs and BI tools


# Fallback when a table has no PROP_PG_TYPES (written by another engine): the Iceberg type's closest PG type.
_ICEBERG_TO_PG = {"boolean": "boolean", "int": "integer", "long": "bigint", "float": "real",
                  "double": "double precision", "date": "date", "time": "time without time zone",
                  "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
                  "string": "text", "uuid": "uuid", "binary": "bytea", "fixed": "bytea"}


def _pg_type_of(iceberg_type) -> str:
    from pyiceberg.types import DecimalType, ListType

    if isinstance(iceberg_type, ListType):
        return _pg_type_of(iceberg_type.element_type) + "[]"
    if isinstance(iceberg_type, DecimalType):
        return f"numeric({iceberg_type.precision},{iceberg_type.scale})"
    name = str(iceberg_type).split("(")[0].split("<")[0]
    return _ICEBERG_TO_PG.get(name, "text")


def table_info(table, schema: str, name: str) -> TableInfo:
    """TableInfo of a loaded pyiceberg Table."""
    iceberg_schema = table.schema()
    pg_types = json.loads(table.properties.get(PROP_PG_TYPES, "[]"))
    columns = []
    for position, field in enumerate(iceberg_schema.fields):
        pg_type = pg_types[position] if position < len(pg_types) else _pg_type_of(field.field_type)
        columns.append(ColumnInfo(field.name, pg_type, not field.required, field.doc))
    return TableInfo(schema, name, table.metadata_location, tuple(columns),
                     table.properties.get(PROP_SOURCE, ""), table.properties.get(PROP_COMMENT),
                     table.properties.get(PROP_MATVIEW_DEFINITION),
                     tuple(json.loads(table.properties.get(PROP_PRIMARY_KEY, "[]"))))


def list_table_infos(catalog: Catalog) -> list[TableInfo]:
    infos = []
    for (namespace, *_rest) in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            infos.append(table_info(catalog.load_table(identifier), namespace, identifier[-1]))
    return infos
