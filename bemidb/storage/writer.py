"""Streaming Iceberg writer: Arrow record batches in, Parquet data files out, ONE snapshot committed.

Readers see the old snapshot or the new one, never a mix: data files are written first (they are invisible
until a snapshot references them) and a single catalog commit swaps them in. Memory holds one input batch plus
one row group being encoded, never the table. A failure before the commit deletes the files written so far;
a SIGKILL leaves them unreferenced, and `bemidb vacuum` (run after every sync) removes them later.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.io.pyarrow import (
    _pyarrow_to_schema_without_ids,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table import TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.update import AddSchemaUpdate, SetCurrentSchemaUpdate
from pyiceberg.typedef import Record
from pyiceberg.types import ListType, MapType, NestedField, StructType

from bemidb.storage import layout
from bemidb.storage.catalog import PROP_PG_TYPES, PROP_SYNCED_AT, pg_type_of
from bemidb.storage.parts import Parts, write_parts

log = logging.getLogger(__name__)

PG_TYPE_KEY = b"pg_type"  # Arrow field metadata: the source Postgres type, recorded into PROP_PG_TYPES
FIELD_ID_KEY = b"PARQUET:field_id"

# A row group is flushed when either bound is reached. 122,880 rows is DuckDB's own row-group size: its scans
# parallelise and prune per row group, and 1M-row groups scanned ~1.5-2x slower on 2 cores (bench/storage.py);
# the byte bound keeps the sync's memory flat when rows are wide.
ROW_GROUP_BYTES = 32 * 1024 * 1024
ROW_GROUP_ROWS = 122_880

# Every table keeps its metadata history short: pyiceberg deletes older metadata JSON files on commit.
DEFAULT_TABLE_PROPERTIES = {
    TableProperties.METADATA_DELETE_AFTER_COMMIT_ENABLED: "true",
    TableProperties.METADATA_PREVIOUS_VERSIONS_MAX: "10",
    TableProperties.PARQUET_COMPRESSION: "zstd",
}


@dataclass
class WriteResult:
    rows: int
    bytes: int  # Parquet bytes written (compressed, as stored)
    files: int
    snapshot_id: int | None


def write_table(catalog, identifier: tuple[str, str], arrow_schema: pa.Schema,
                batches: Iterable[pa.RecordBatch], *, mode: str = "overwrite",
                properties: dict[str, str] | None = None,
                on_progress: Callable[[int, int], None] | None = None,
                target_file_size: int = 128 * 1024 * 1024) -> WriteResult:
    """Write `batches` as the new content of the table (overwrite) or as added rows (append), in one commit.

    `batches` may be a Parts: several streams written side by side (one thread and one set of files each).

    on_progress(rows_so_far, parquet_bytes_so_far) is called after each input batch.
    """
    if mode not in ("overwrite", "append"):
        raise ValueError(f"mode must be 'overwrite' or 'append', not {mode!r}")
    namespace, name = identifier
    _ensure_namespace(catalog, namespace)
    wanted = iceberg_schema(arrow_schema)
    table_props = {**DEFAULT_TABLE_PROPERTIES, **pg_types_property(arrow_schema, wanted),
                   PROP_SYNCED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   **(properties or {})}
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        table = None
    if table is None:
        # The table appears in the catalog only at commit: a killed first sync leaves no empty table behind.
        txn = catalog.create_table_transaction(identifier, wanted, location=_contained_location(catalog, *identifier),
                                               properties=table_props)
        existing_files: list[DataFile] = []
    else:
        txn = table.transaction()
        _evolve_schema(txn, wanted, mode)
        txn.set_properties(table_props)
        existing_files = live_data_files(table) if mode == "overwrite" else []
    metadata = txn.table_metadata
    schema = metadata.schema()

    io = table_io(catalog, table, txn)
    streams = batches if isinstance(batches, Parts) else Parts([batches])
    writers = [RollingParquetWriter(io, metadata, schema, target_file_size) for _ in streams]
    written = lambda: sum(w.bytes_written for w in writers)  # noqa: E731
    rows = 0
    lock = threading.Lock()

    def count(n: int) -> None:
        nonlocal rows
        with lock:
            rows += n
            if on_progress:
                on_progress(rows, written())

    def abort() -> None:
        for w in writers:
            w.abort()

    try:
        if len(streams) == 1:
            for batch in streams[0]:
                if batch.num_rows:
                    writers[0].add(batch)
                    count(batch.num_rows)
        else:
            write_parts(streams, writers, count)
        data_files = [f for w in writers for f in w.finish()]
        if on_progress:
            on_progress(rows, written())
        if mode == "overwrite":
            with txn.update_snapshot().overwrite() as overwrite:
                for data_file in existing_files:
                    overwrite.delete_data_file(data_file)
                for data_file in data_files:
                    overwrite.append_data_file(data_file)
        else:
            with txn.update_snapshot().fast_append() as append:
                for data_file in data_files:
                    append.append_data_file(data_file)
    except BaseException:
        abort()
        raise
    try:
        committed = txn.commit_transaction()
    except CommitFailedException:
        abort()  # definitely not committed (a concurrent commit won): our files are garbage
        raise
    # Any other error here may have happened after the catalog committed (the answer was lost): the files
    # are kept, and `vacuum` deletes them later only if no snapshot references them.
    snapshot = committed.current_snapshot()
    return WriteResult(rows, written(), len(data_files), snapshot.snapshot_id if snapshot else None)


def check_warehouse_writable(catalog) -> None:
    """Write and delete a tiny object in the warehouse: a sync fails in a second, not after reading a table,
    when the bucket is unreachable, missing or read-only. Raises OSError with the storage's reason."""
    from pyiceberg.io import load_file_io

    warehouse = catalog.properties.get("warehouse", "").rstrip("/")
    if not warehouse:
        return
    io = load_file_io(catalog.properties, warehouse)
    probe = f"{warehouse}/.bemidb-write-check-{uuid.uuid4().hex}"
    try:
        with io.new_output(probe).create(overwrite=True) as stream:
            stream.write(b"ok")
        io.delete(probe)
    except Exception as exc:  # noqa: BLE001 - any storage error becomes one clear line
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise OSError(f"cannot write to the warehouse {warehouse}: {reason}") from None


def _path_part(name: str) -> str:
    """A table or schema name as one folder name: names are the source's, and a source table called
    '../../x' or 'a/b' must not put files (or `vacuum`'s deletions) outside the warehouse."""
    if name.strip(".") == "":
        return name.replace(".", "%2E")
    if "/" in name or "\\" in name or "\0" in name:
        return quote(name, safe="")
    return name


def _contained_location(catalog, namespace: str, name: str) -> str | None:
    """pyiceberg's default location (warehouse/namespace/table) unless a name needs escaping."""
    warehouse = catalog.properties.get("warehouse")
    parts = (_path_part(namespace), _path_part(name))
    if not warehouse or parts == (namespace, name):
        return None
    return f"{warehouse.rstrip('/')}/{parts[0]}/{parts[1]}"


def table_io(catalog, table, txn):
    """The FileIO for this table: the loaded table's, else the catalog's (new table)."""
    if table is not None:
        return table.io
    return catalog._load_file_io(txn.table_metadata.properties, txn.table_metadata.location)


# ---------------------------------------------------------------------------------------------------------
# Schema


def iceberg_schema(arrow_schema: pa.Schema) -> Schema:
    """Arrow -> Iceberg, nullability and b"doc" comments kept; ids assigned 1..n in column order."""
    return assign_fresh_schema_ids(_pyarrow_to_schema_without_ids(arrow_schema))


def _shape(schema: Schema) -> list[tuple]:
    """What makes two schemas the same for our purposes: ids aside, names, types, nullability, comments."""
    def type_shape(t):
        if isinstance(t, ListType):
            return ("list", type_shape(t.element_type), t.element_required)
        if isinstance(t, MapType):
            return ("map", type_shape(t.key_type), type_shape(t.value_type), t.value_required)
        if isinstance(t, StructType):
            return ("struct", tuple((f.name, type_shape(f.field_type), f.required) for f in t.fields))
        return str(t)

    return [(f.name, type_shape(f.field_type), f.required, f.doc) for f in schema.fields]


def _evolve_schema(txn, wanted: Schema, mode: str) -> None:
    current = txn.table_metadata.schema()
    if _shape(current) == _shape(wanted):
        return
    if mode == "append":
        # Keep existing field ids (old files stay readable): add new columns, promote widened types.
        with txn.update_schema() as update:
            update.union_by_name(wanted)
        return
    # Overwrite replaces every data file, so any change (even an incompatible type change) is just a new
    # schema with fresh ids above the old ones, in the same commit as the data.
    last_id = txn.table_metadata.last_column_id
    counter = iter(range(last_id + 1, last_id + 1_000_000))
    fresh = assign_fresh_schema_ids(wanted, next_id=lambda: next(counter))
    schema_id = max(s.schema_id for s in txn.table_metadata.schemas) + 1
    fresh = Schema(*fresh.fields, schema_id=schema_id)
    txn._apply((AddSchemaUpdate(schema=fresh), SetCurrentSchemaUpdate(schema_id=-1)))


def pg_types_property(arrow_schema: pa.Schema, schema: Schema) -> dict[str, str]:
    types = []
    for field, iceberg_field in zip(arrow_schema, schema.fields, strict=True):
        meta = field.metadata or {}
        types.append(meta[PG_TYPE_KEY].decode() if PG_TYPE_KEY in meta else pg_type_of(iceberg_field.field_type))
    return {PROP_PG_TYPES: json.dumps(types)}


def _file_arrow_type(arrow_type: pa.DataType, iceberg_type) -> pa.DataType:
    """The input Arrow type with Iceberg field ids on nested fields (lists name their child 'element')."""
    if isinstance(iceberg_type, ListType):
        element = iceberg_type.element_field
        value_type = arrow_type.value_type
        return pa.list_(pa.field("element", _file_arrow_type(value_type, element.field_type),
                                 nullable=not element.required,
                                 metadata={FIELD_ID_KEY: str(element.field_id).encode()}))
    if isinstance(iceberg_type, StructType):
        return pa.struct([_file_arrow_field(arrow_type.field(f.name), f) for f in iceberg_type.fields])
    return arrow_type


def _file_arrow_field(arrow_field: pa.Field | None, field: NestedField) -> pa.Field:
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    if arrow_field is None:  # append into a table with a column this source no longer has: NULLs
        arrow_type = schema_to_pyarrow(Schema(field), include_field_ids=True).field(0).type
    else:
        arrow_type = _file_arrow_type(arrow_field.type, field.field_type)
    return pa.field(field.name, arrow_type, nullable=not field.required,
                    metadata={FIELD_ID_KEY: str(field.field_id).encode()})


# ---------------------------------------------------------------------------------------------------------
# Files


def live_data_files(table) -> list[DataFile]:
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    return [entry.data_file
            for manifest in snapshot.manifests(table.io)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
            if entry.data_file.content == DataFileContent.DATA]


class RollingParquetWriter:
    """Buffers batches into row groups, writes them to Parquet files rolled at target_file_size."""

    def __init__(self, io, metadata, schema: Schema, target_file_size: int):
        self.io = io
        self.metadata = metadata
        self.schema = schema
        self.target_file_size = target_file_size
        self.locations = load_location_provider(metadata.location, metadata.properties)
        self.stats_plan = compute_statistics_plan(schema, metadata.properties)
        self.id_mapping = parquet_path_to_id_mapping(schema)
        self.run_id = uuid.uuid4().hex
        self.file_schema: pa.Schema | None = None
        self.pending: list[pa.RecordBatch] = []
        self.pending_bytes = 0
        self.pending_rows = 0
        self.paths: list[str] = []  # every file started, for abort()
        self.data_files: list[DataFile] = []
        self.closed_bytes = 0
        self.current = None  # (path, stream, ParquetWriter)

    @property
    def bytes_written(self) -> int:
        return self.closed_bytes + (self.current[1].tell() if self.current else 0)

    def add(self, batch: pa.RecordBatch) -> None:
        if self.file_schema is None:
            by_name = {f.name: f for f in batch.schema}
            self.file_schema = pa.schema([_file_arrow_field(by_name.get(f.name), f) for f in self.schema.fields])
        self.pending.append(batch)
        self.pending_bytes += batch.nbytes
        self.pending_rows += batch.num_rows
        while self.pending and (self.pending_bytes >= ROW_GROUP_BYTES or self.pending_rows >= ROW_GROUP_ROWS):
            self._flush_row_group()

    def _conform(self, table: pa.Table) -> pa.Table:
        columns = []
        for field in self.file_schema:
            if field.name in table.column_names:
                columns.append(table.column(field.name))
            else:
                columns.append(pa.nulls(table.num_rows, field.type))
        conformed = pa.Table.from_arrays(columns, names=self.file_schema.names)
        # Zero-copy when only names/metadata differ; a real cast when append promoted a type.
        return conformed.cast(self.file_schema)

    def _flush_row_group(self) -> None:
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending)
        self.pending, self.pending_bytes, self.pending_rows = [], 0, 0
        if table.num_rows > ROW_GROUP_ROWS:  # exact-size row groups; the rest waits for the next one (no copy)
            rest = table.slice(ROW_GROUP_ROWS)
            table = table.slice(0, ROW_GROUP_ROWS)
            self.pending = rest.to_batches()
            self.pending_rows, self.pending_bytes = rest.num_rows, rest.nbytes
        table = self._conform(table)
        if self.current is None:
            self._open(table)
        self.current[2].write_table(table, row_group_size=table.num_rows)
        del table
        if self.current[1].tell() >= self.target_file_size:
            self._close_current()

    def _open(self, first: pa.Table) -> None:
        path = self.locations.new_data_location(f"{self.run_id}-{len(self.paths):05d}.parquet")
        self.paths.append(path)
        stream = self.io.new_output(path).create(overwrite=True)
        writer = pq.ParquetWriter(stream, self.file_schema,
                                  **layout.parquet_options(first, self.metadata.properties, ROW_GROUP_ROWS))
        self.current = (path, stream, writer)

    def _close_current(self) -> None:
        path, stream, writer = self.current
        self.current = None
        writer.close()
        size = stream.tell()
        stream.close()
        try:
            stats = data_file_statistics_from_parquet_metadata(writer.writer.metadata, self.stats_plan,
                                                               self.id_mapping)
        except (ValueError, OverflowError):
            # Bounds Python cannot hold (infinity dates/timestamps, BC years): keep counts, drop min/max
            # for temporal columns of this file. Readers then just cannot prune this file by them.
            stats = data_file_statistics_from_parquet_metadata(writer.writer.metadata,
                                                               _counts_only_for_temporal(self.stats_plan),
                                                               self.id_mapping)
        self.closed_bytes += size
        self.data_files.append(DataFile.from_args(
            content=DataFileContent.DATA, file_path=path, file_format=FileFormat.PARQUET, partition=Record(),
            file_size_in_bytes=size, sort_order_id=None, spec_id=self.metadata.default_spec_id,
            equality_ids=None, key_metadata=None, **stats.to_serialized_dict()))

    def finish(self) -> list[DataFile]:
        while self.pending:
            self._flush_row_group()
        if self.current is not None:
            self._close_current()
        return self.data_files

    def abort(self) -> None:
        """Best effort: remove every file this write started (the commit did not happen)."""
        if self.current is not None:
            # No footer for a file about to be deleted; and the writer must not try to write one later from
            # __del__ into the closed stream ("Exception ignored in ParquetWriter.__del__" on every Ctrl-C).
            self.current[2].is_open = False
            try:
                self.current[1].close()
            except Exception:  # noqa: BLE001 - the stream may already be broken (that is why we abort)
                pass
            self.current = None
        for path in self.paths:
            try:
                self.io.delete(path)
            except Exception as exc:  # noqa: BLE001 - leftovers are unreferenced; vacuum removes them
                log.debug("could not delete partial file %s: %s", path, exc)


def _counts_only_for_temporal(plan: dict) -> dict:
    from pyiceberg.io.pyarrow import StatisticsCollector, match_metrics_mode
    from pyiceberg.types import DateType, TimestampType, TimestamptzType, TimeType

    counts = match_metrics_mode("counts")
    return {field_id: (StatisticsCollector(c.field_id, c.iceberg_type, counts, c.column_name)
                       if isinstance(c.iceberg_type, DateType | TimeType | TimestampType | TimestamptzType)
                       else c)
            for field_id, c in plan.items()}


def _ensure_namespace(catalog, namespace: str) -> None:
    try:
        catalog.create_namespace_if_not_exists(namespace)
    except NamespaceAlreadyExistsError:  # created by a concurrent sync between the check and the insert
        pass
