"""The Iceberg SQL catalog (the JDBC catalog's tables) on a CatalogDatabase, as a pyiceberg Catalog.

The same tables and rows as pyiceberg's SqlCatalog and Iceberg Java's JdbcCatalog (schema v1, with the
iceberg_type column), so Spark, Trino or pyiceberg itself open a bemidb catalog as it is. Table metadata,
staging and commits are pyiceberg's (MetastoreCatalog); this class only stores the pointer to each table's
current metadata file, swapping it with a compare-and-set so concurrent commits cannot lose each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg.catalog import Catalog, MetastoreCatalog, PropertiesUpdateSummary
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import CommitTableResponse, Table, TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties

from bemidb.storage.catalog_db import CatalogDatabase, UniqueViolation

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.table.update import TableRequirement, TableUpdate

# The JDBC catalog's tables, as pyiceberg's SqlCatalog creates them (schema v1).
CREATE_TABLES = (
    """CREATE TABLE IF NOT EXISTS iceberg_tables (
        catalog_name VARCHAR(255) NOT NULL, table_namespace VARCHAR(255) NOT NULL,
        table_name VARCHAR(255) NOT NULL, metadata_location VARCHAR(1000),
        previous_metadata_location VARCHAR(1000), iceberg_type VARCHAR(5),
        PRIMARY KEY (catalog_name, table_namespace, table_name))""",
    """CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
        catalog_name VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL,
        property_key VARCHAR(255) NOT NULL, property_value VARCHAR(1000) NOT NULL,
        PRIMARY KEY (catalog_name, namespace, property_key))""",
)
TABLE_TYPE = "TABLE"
NAMESPACE_MINIMAL_PROPERTIES = {"exists": "true"}


def _escape_like(text: str) -> str:
    return text.replace("!", "!!").replace("_", "!_").replace("%", "!%")


class SqlCatalog(MetastoreCatalog):
    def __init__(self, name: str, db: CatalogDatabase, **properties: str):
        super().__init__(name, **properties)
        self.db = db
        self._init_tables()

    def _init_tables(self) -> None:
        """Create the catalog tables when absent; tell a v0 catalog (no iceberg_type column) from a v1 one."""
        try:
            self.db.execute("SELECT iceberg_type FROM iceberg_tables WHERE 1 = 0")
            self._v1 = True
            return
        except Exception:  # noqa: BLE001 - no table, or no column: look closer below
            pass
        try:
            self.db.execute("SELECT 1 FROM iceberg_tables WHERE 1 = 0")
            self._v1 = False  # written by an old pyiceberg or Iceberg Java: views impossible, tables fine
        except Exception:  # noqa: BLE001 - no catalog tables yet
            for statement in CREATE_TABLES:
                try:
                    self.db.execute(statement)
                except UniqueViolation:  # Postgres: another process created it at the same moment
                    pass
            self._v1 = True

    # -- tables --------------------------------------------------------------------------------------------

    @staticmethod
    def _split(identifier: str | Identifier) -> tuple[str, str]:
        namespace = Catalog.namespace_to_string(Catalog.namespace_from(identifier))
        return namespace, Catalog.table_name_from(identifier)

    @property
    def _tables_only(self) -> str:
        """Excludes view rows written by other engines (none in a v0 catalog)."""
        return " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)" if self._v1 else ""

    def _insert_table(self, namespace: str, table_name: str, metadata_location: str) -> None:
        columns = "catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location"
        values = ":catalog, :namespace, :name, :location, NULL"
        if self._v1:
            columns, values = columns + ", iceberg_type", values + ", :type"
        params = {"type": TABLE_TYPE} if self._v1 else {}
        try:
            self.db.execute(f"INSERT INTO iceberg_tables ({columns}) VALUES ({values})", catalog=self.name,
                            namespace=namespace, name=table_name, location=metadata_location, **params)
        except UniqueViolation as exc:
            raise TableAlreadyExistsError(f"Table {namespace}.{table_name} already exists") from exc

    def table_locations(self) -> dict[tuple[str, str], str]:
        """(namespace, table) -> current metadata file, for every table: one cheap query."""
        rows, _ = self.db.execute("SELECT table_namespace, table_name, metadata_location FROM iceberg_tables "
                                  "WHERE catalog_name = :catalog" + self._tables_only, catalog=self.name)
        return {(namespace, name): location for namespace, name, location in rows if location}

    def load_table(self, identifier: str | Identifier) -> Table:
        namespace, table_name = self._split(identifier)
        rows, _ = self.db.execute(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = :catalog AND "
            "table_namespace = :namespace AND table_name = :name" + self._tables_only,
            catalog=self.name, namespace=namespace, name=table_name)
        if not rows or not rows[0][0]:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{table_name}")
        metadata_location = rows[0][0]
        io = load_file_io(properties=self.properties, location=metadata_location)
        metadata = FromInputFile.table_metadata(io.new_input(metadata_location))
        return Table(identifier=Catalog.identifier_to_tuple(namespace) + (table_name,), metadata=metadata,
                     metadata_location=metadata_location,
                     io=self._load_file_io(metadata.properties, metadata_location), catalog=self)

    def create_table(self, identifier: str | Identifier, schema: Schema | pa.Schema, location: str | None = None,
                     partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
                     sort_order: SortOrder = UNSORTED_SORT_ORDER, properties: Properties = EMPTY_DICT) -> Table:
        format_version = int(properties.get(TableProperties.FORMAT_VERSION, TableProperties.DEFAULT_FORMAT_VERSION))
        schema = self._convert_schema_if_needed(schema, format_version)
        namespace, table_name = self._split(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        location = self._resolve_table_location(location, namespace, table_name)
        metadata_location = load_location_provider(location, properties).new_table_metadata_file_location()
        metadata = new_table_metadata(location=location, schema=schema, partition_spec=partition_spec,
                                      sort_order=sort_order, properties=properties)
        self._write_metadata(metadata, load_file_io(self.properties, metadata_location), metadata_location)
        self._insert_table(namespace, table_name, metadata_location)
        return self.load_table(identifier)

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        if overwrite:
            raise NotImplementedError("`overwrite` isn't supported")
        namespace, table_name = self._split(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        self._insert_table(namespace, table_name, metadata_location)
        return self.load_table(identifier)

    def drop_table(self, identifier: str | Identifier) -> None:
        namespace, table_name = self._split(identifier)
        _, changed = self.db.execute(
            "DELETE FROM iceberg_tables WHERE catalog_name = :catalog AND table_namespace = :namespace AND "
            "table_name = :name" + self._tables_only, catalog=self.name, namespace=namespace, name=table_name)
        if changed < 1:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{table_name}")

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        from_namespace, from_name = self._split(from_identifier)
        to_namespace, to_name = self._split(to_identifier)
        if not self.namespace_exists(to_namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {to_namespace}")
        try:
            _, changed = self.db.execute(
                "UPDATE iceberg_tables SET table_namespace = :to_namespace, table_name = :to_name "
                "WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :name"
                + self._tables_only, to_namespace=to_namespace, to_name=to_name, catalog=self.name,
                namespace=from_namespace, name=from_name)
        except UniqueViolation as exc:
            raise TableAlreadyExistsError(f"Table {to_namespace}.{to_name} already exists") from exc
        if changed < 1:
            raise NoSuchTableError(f"Table does not exist: {from_name}")
        return self.load_table(to_identifier)

    def commit_table(self, table: Table, requirements: tuple[TableRequirement, ...],
                     updates: tuple[TableUpdate, ...]) -> CommitTableResponse:
        namespace, table_name = self._split(table.name())
        try:
            current = self.load_table(table.name())
        except NoSuchTableError:
            current = None  # a create-table transaction
        staged = self._update_and_stage_table(current, table.name(), requirements, updates)
        if current is not None and staged.metadata == current.metadata:
            return CommitTableResponse(metadata=current.metadata, metadata_location=current.metadata_location)
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        if current is None:
            self._insert_table(namespace, table_name, staged.metadata_location)
        else:
            # compare-and-set: only if nobody committed since we loaded the table
            _, changed = self.db.execute(
                "UPDATE iceberg_tables SET metadata_location = :new, previous_metadata_location = :old "
                "WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :name AND "
                "metadata_location = :old", new=staged.metadata_location, old=current.metadata_location,
                catalog=self.name, namespace=namespace, name=table_name)
            if changed < 1:
                raise CommitFailedException(f"Table has been updated by another process: {namespace}.{table_name}")
        return CommitTableResponse(metadata=staged.metadata, metadata_location=staged.metadata_location)

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        namespace = Catalog.namespace_to_string(namespace)
        rows, _ = self.db.execute("SELECT table_name FROM iceberg_tables WHERE catalog_name = :catalog AND "
                                  "table_namespace = :namespace" + self._tables_only,
                                  catalog=self.name, namespace=namespace)
        return [Catalog.identifier_to_tuple(namespace) + (name,) for (name,) in rows]

    # -- namespaces ----------------------------------------------------------------------------------------

    def namespace_exists(self, namespace: str | Identifier) -> bool:
        name = Catalog.namespace_to_string(Catalog.identifier_to_tuple(namespace), NoSuchNamespaceError)
        children = _escape_like(name) + ".%"
        for table, column in (("iceberg_tables", "table_namespace"), ("iceberg_namespace_properties", "namespace")):
            rows, _ = self.db.execute(
                f"SELECT 1 FROM {table} WHERE catalog_name = :catalog AND ({column} = :name OR "
                f"{column} LIKE :children ESCAPE '!') LIMIT 1", catalog=self.name, name=name, children=children)
            if rows:
                return True
        return False

    def create_namespace(self, namespace: str | Identifier, properties: Properties = EMPTY_DICT) -> None:
        if self.namespace_exists(namespace):
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists")
        name = Catalog.namespace_to_string(namespace, NoSuchNamespaceError)
        try:
            with self.db.transaction() as run:
                for key, value in (properties or NAMESPACE_MINIMAL_PROPERTIES).items():
                    run("INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, "
                        "property_value) VALUES (:catalog, :namespace, :key, :value)",
                        catalog=self.name, namespace=name, key=key, value=value)
        except UniqueViolation as exc:  # created by another process since namespace_exists
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists") from exc

    def drop_namespace(self, namespace: str | Identifier) -> None:
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        name = Catalog.namespace_to_string(namespace)
        if tables := self.list_tables(namespace):
            raise NamespaceNotEmptyError(f"Namespace {name} is not empty. {len(tables)} tables exist.")
        self.db.execute("DELETE FROM iceberg_namespace_properties WHERE catalog_name = :catalog AND "
                        "namespace = :namespace", catalog=self.name, namespace=name)

    def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        prefix = Catalog.identifier_to_tuple(namespace)
        level = len(prefix) + 1
        rows, _ = self.db.execute(
            "SELECT table_namespace FROM iceberg_tables WHERE catalog_name = :catalog UNION "
            "SELECT namespace FROM iceberg_namespace_properties WHERE catalog_name = :catalog", catalog=self.name)
        names = {Catalog.identifier_to_tuple(row[0]) for row in rows}
        return list({name[:level] for name in names if len(name) >= level and name[:level - 1] == prefix})

    def load_namespace_properties(self, namespace: str | Identifier) -> Properties:
        name = Catalog.namespace_to_string(namespace)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace {name} does not exists")
        rows, _ = self.db.execute("SELECT property_key, property_value FROM iceberg_namespace_properties "
                                  "WHERE catalog_name = :catalog AND namespace = :namespace",
                                  catalog=self.name, namespace=name)
        return dict(rows)

    def update_namespace_properties(self, namespace: str | Identifier, removals: set[str] | None = None,
                                    updates: Properties = EMPTY_DICT) -> PropertiesUpdateSummary:
        name = Catalog.namespace_to_string(namespace)
        current = self.load_namespace_properties(namespace)
        summary = self._get_updated_props_and_update_summary(current, removals, updates)[0]
        where = "WHERE catalog_name = :catalog AND namespace = :namespace AND property_key = :key"
        with self.db.transaction() as run:
            for key in set(removals or ()) | set(updates):
                run(f"DELETE FROM iceberg_namespace_properties {where}", catalog=self.name, namespace=name, key=key)
            for key, value in updates.items():
                run("INSERT INTO iceberg_namespace_properties (catalog_name, namespace, property_key, "
                    "property_value) VALUES (:catalog, :namespace, :key, :value)",
                    catalog=self.name, namespace=name, key=key, value=value)
        return summary

    # -- views: not stored by bemidb (materialized views are tables) ----------------------------------------

    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        return []

    def view_exists(self, identifier: str | Identifier) -> bool:
        return False

    def load_view(self, identifier: str | Identifier):
        raise NotImplementedError("bemidb's catalog stores no Iceberg views")

    def create_view(self, *args, **kwargs):
        raise NotImplementedError("bemidb's catalog stores no Iceberg views")

    def register_view(self, identifier: str | Identifier, metadata_location: str):
        raise NotImplementedError("bemidb's catalog stores no Iceberg views")

    def drop_view(self, identifier: str | Identifier) -> None:
        raise NotImplementedError("bemidb's catalog stores no Iceberg views")

    def close(self) -> None:
        self.db.close()
