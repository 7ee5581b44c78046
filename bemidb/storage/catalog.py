"""The Iceberg catalog bemidb opens: an Iceberg SQL catalog on a SQLite file (embedded) or a Postgres database.

Both use the standard Iceberg SQL-catalog tables (iceberg_tables, iceberg_namespace_properties), so Spark,
Trino or pyiceberg itself can open the same catalog with catalog name "bemidb". Also: the table properties
bemidb writes, and what the query server reads of each table (TableInfo).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bemidb.config import Config
from bemidb.storage.catalog_db import CatalogDatabase
from bemidb.storage.sql_catalog import SqlCatalog

CATALOG_NAME = "bemidb"

# Table properties bemidb writes on every table (read by the server's pg_catalog layer and `bemidb tables`).
PROP_SOURCE = "bemidb.source"  # postgres | amplitude | attio | matview
PROP_PG_TYPES = "bemidb.pg-types"  # JSON list: the source Postgres type of each column, in order
PROP_SYNCED_AT = "bemidb.synced-at"  # ISO-8601 UTC time of the last commit by a sync
PROP_COMMENT = "comment"  # table comment, when the source has one
PROP_PRIMARY_KEY = "bemidb.primary-key"  # JSON list: the source table's primary-key columns, in key order
PROP_CDC_SLOT = "bemidb.cdc.slot"  # CDC: the replication slot whose changes this table holds
PROP_CDC_LSN = "bemidb.cdc.lsn"  # CDC: source position applied through (transactions committed before it are in)
PROP_MATVIEW_DEFINITION = "bemidb.matview-definition"  # the defining query of a materialized view (Postgres SQL)
# JSON object: column -> {"default": pg_get_expr text, "identity": "a"|"d", "generated": "s"}, for the columns
# that have any of them at the source (read-only metadata: shown in \d, JDBC, SQLAlchemy as Postgres shows it)
PROP_COLUMN_DEFAULTS = "bemidb.column-defaults"
# JSON list of the source's other indexes: {"name", "unique", "columns" (null for an expression), "using"}
PROP_INDEXES = "bemidb.indexes"
# JSON object: an enum column's source type (format_type text) -> {"oid": source pg_type OID, "labels": [...] in
# declaration order}; the server types such columns as DuckDB ENUMs, so they sort and compare as in Postgres
PROP_PG_ENUMS = "bemidb.pg-enums"


def catalog_database(cfg: Config) -> CatalogDatabase:
    if cfg.catalog_database_url:
        return CatalogDatabase.postgres(cfg.catalog_database_url)
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    return CatalogDatabase.sqlite(cfg.sqlite_catalog_path)


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


def open_catalog(cfg: Config) -> SqlCatalog:
    if not cfg.uses_s3:
        cfg.local_warehouse_path.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG_NAME, catalog_database(cfg), warehouse=cfg.warehouse, **file_io_properties(cfg))


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
    synced_at: str | None = None  # PROP_SYNCED_AT: the last commit by a sync (ISO-8601 UTC)
    sync_mode: str = ""  # cdc, incremental, full_refresh, or the source's own (append, refresh)
    source_lsn: str | None = None  # PROP_CDC_LSN: the source position a CDC table is current with
    row_count: int | None = None  # total-records of the current snapshot (pg_class.reltuples, n_live_tup)
    defaults_json: str = "{}"  # PROP_COLUMN_DEFAULTS as stored
    indexes_json: str = "[]"  # PROP_INDEXES as stored
    enums_json: str = "{}"  # PROP_PG_ENUMS as stored

    @property
    def column_defaults(self) -> dict[str, dict]:
        try:
            value = json.loads(self.defaults_json)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def indexes(self) -> list[dict]:
        try:
            value = json.loads(self.indexes_json)
        except ValueError:
            return []
        return value if isinstance(value, list) else []

    @property
    def enums(self) -> dict[str, dict]:
        """Source enum type text -> {"oid", "labels"} (tables synced before enums were recorded: {})."""
        try:
            value = json.loads(self.enums_json)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


# Fallback when a table has no PROP_PG_TYPES (written by another engine): the Iceberg type's closest PG type.
_ICEBERG_TO_PG = {"boolean": "boolean", "int": "integer", "long": "bigint", "float": "real",
                  "double": "double precision", "date": "date", "time": "time without time zone",
                  "timestamp": "timestamp without time zone", "timestamptz": "timestamp with time zone",
                  "string": "text", "uuid": "uuid", "binary": "bytea", "fixed": "bytea"}


def pg_type_of(iceberg_type) -> str:
    from pyiceberg.types import DecimalType, ListType

    if isinstance(iceberg_type, ListType):
        return pg_type_of(iceberg_type.element_type) + "[]"
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
        pg_type = pg_types[position] if position < len(pg_types) else pg_type_of(field.field_type)
        columns.append(ColumnInfo(field.name, pg_type, not field.required, field.doc))
    props = table.properties
    return TableInfo(schema, name, table.metadata_location, tuple(columns),
                     props.get(PROP_SOURCE, ""), props.get(PROP_COMMENT),
                     props.get(PROP_MATVIEW_DEFINITION),
                     tuple(json.loads(props.get(PROP_PRIMARY_KEY, "[]"))),
                     props.get(PROP_SYNCED_AT), _sync_mode(props), props.get(PROP_CDC_LSN),
                     _row_count(table), props.get(PROP_COLUMN_DEFAULTS, "{}"), props.get(PROP_INDEXES, "[]"),
                     enums_json=props.get(PROP_PG_ENUMS, "{}"))


def _sync_mode(props: dict[str, str]) -> str:
    if PROP_CDC_LSN in props:
        return "cdc"
    if "bemidb.cursor-column" in props or "bemidb.amplitude.last-hour" in props:  # sync/incremental, amplitude
        return "incremental"
    return {"matview": "refresh", "": ""}.get(props.get(PROP_SOURCE, ""), "full_refresh")


def _row_count(table) -> int | None:
    snapshot = table.current_snapshot()
    if snapshot is None:
        return 0
    try:
        return int(snapshot.summary.get("total-records")) if snapshot.summary else None
    except (TypeError, ValueError):
        return None
