"""Apply one batch of row changes (upserts, deletes by key, a truncate) to an Iceberg table in ONE commit.

Merge-on-read: the new rows go to a new Parquet file, and the stored rows they replace (or that were deleted)
are named by (file, position) in one position delete file, as Spark and Trino write them and as the server
applies them. Finding those rows reads only the key columns of the files whose key bounds reach the batch's
keys; no stored row is rewritten, so 1% of changed rows costs about 1% of a copy, wherever they lie.
One snapshot adds both files, with the caller's properties (CDC stores the source position it applied
through) in the same commit: readers see the table before or after the batch, never half of it.
compact() later rewrites a table whose commits left many small files and delete files into few files.

Unchanged TOASTed values (an update that did not send a large value) arrive as NULL plus a mask: they are
filled from the row the table stores for the key the update came from, so a large value is never wiped.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
)
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _FastAppendFiles, _OverwriteFiles
from pyiceberg.typedef import Record

from bemidb.storage import evolution
from bemidb.storage.catalog import PROP_SYNCED_AT
from bemidb.storage.merge import (
    MergeRule,
    files_where,
    key_values,
    open_data_file,
    overwrite_files,
    pg_types_in_order,
    python_value,
    read_columns,
)
from bemidb.storage.writer import (
    DEFAULT_TABLE_PROPERTIES,
    RollingParquetWriter,
    WriteResult,
    iceberg_schema,
    live_data_files,
)

COMPACT_AFTER_FILES = 16  # small data + delete files a table may gather before compact() rewrites them

# Field ids the Iceberg spec reserves for a position delete file's columns.
POSITION_PATH_ID, POSITION_POS_ID = 2147483546, 2147483545
POSITION_DELETE_SCHEMA = pa.schema([
    pa.field("file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": str(POSITION_PATH_ID).encode()}),
    pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": str(POSITION_POS_ID).encode()}),
])


@dataclass
class ChangeBatch:
    """What a batch does to one table, typed like the table's columns."""
    keys: list[str]  # primary-key columns
    upserts: pa.Table  # the final version of every inserted or updated row
    dropped: pa.Table  # key columns of every row to remove first (deleted, updated, or a changed key's old one)
    truncated: bool = False  # remove every stored row first
    unchanged: dict[str, pa.Array] = field(default_factory=dict)  # column -> mask over upserts: keep stored
    fill_from: pa.Table | None = None  # key columns, one row per upsert: the stored row to keep values from


def apply_changes(catalog, identifier: tuple[str, str], arrow_schema: pa.Schema, batch: ChangeBatch, *,
                  properties: dict[str, str], target_file_size: int = 128 * 1024 * 1024,
                  before_commit: Callable[[], None] | None = None) -> WriteResult:
    """One commit: schema evolved, rows replaced, properties set. Raises ValueError on a schema change that
    cannot be applied in place (the caller re-copies the table)."""
    table = catalog.load_table(identifier)
    wanted = iceberg_schema(arrow_schema)
    change = evolution.compare(table.schema(), wanted)
    if change.incompatible:
        raise ValueError(change.incompatible)
    target = evolution.target_arrow_schema(arrow_schema, change)
    upserts = batch.upserts.cast(target) if batch.upserts.schema != target else batch.upserts
    rule = MergeRule(batch.keys, "", None)
    if batch.unchanged and upserts.num_rows:
        upserts = _keep_unchanged(table, target, rule, upserts, batch)
    txn = table.transaction()
    evolution.apply(txn, wanted, change)
    schema = txn.table_metadata.schema()
    txn.set_properties({**DEFAULT_TABLE_PROPERTIES, **pg_types_in_order(arrow_schema, schema),
                        PROP_SYNCED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **properties})
    files = RollingParquetWriter(table.io, txn.table_metadata, schema, target_file_size)
    delete_paths: list[str] = []
    try:
        for record_batch in upserts.to_batches():
            files.add(record_batch)
        replaced, delete_files = [], []
        if batch.truncated:
            replaced = live_data_files(table)
        elif batch.dropped.num_rows:
            dropped = batch.dropped.cast(pa.schema([target.field(k) for k in batch.keys]))
            positions = _positions(table, target, rule, dropped)
            if positions.num_rows:
                delete_files.append(_write_position_deletes(table, positions, delete_paths))
        data_files = files.finish()
        if before_commit is not None:  # every file is written and none is referenced yet
            before_commit()
        if replaced:
            overwrite_files(txn, replaced, data_files)
        elif data_files or delete_files:
            producer = _AppendWithDeletes(delete_files, operation=Operation.OVERWRITE if delete_files
                                          else Operation.APPEND, transaction=txn, io=table.io)
            for data_file in data_files:
                producer.append_data_file(data_file)
            producer.commit()
        committed = txn.commit_transaction()
    except BaseException:
        files.abort()
        for path in delete_paths:
            try:
                table.io.delete(path)
            except Exception:  # noqa: BLE001 - unreferenced: vacuum removes it later
                pass
        raise
    snapshot = committed.current_snapshot()
    return WriteResult(upserts.num_rows, files.bytes_written, len(data_files),
                       snapshot.snapshot_id if snapshot else None)


def _keep_unchanged(table, target: pa.Schema, rule: MergeRule, upserts: pa.Table, batch: ChangeBatch) -> pa.Table:
    """Replace the masked values of `upserts` by the stored row's (looked up by batch.fill_from's keys)."""
    columns = list(batch.unchanged)
    fill_from = batch.fill_from.cast(pa.schema([target.field(k) for k in rule.keys]))
    wanted_keys = key_values(fill_from, rule.keys)
    stored = _stored_rows(table, target, rule, fill_from, wanted_keys, columns)
    if stored is None:
        positions = pa.nulls(upserts.num_rows, pa.int32())
    else:
        positions = pc.index_in(wanted_keys, value_set=key_values(stored, rule.keys))
    for name in columns:
        mask = batch.unchanged[name]
        kept = (stored.column(name).take(positions) if stored is not None
                else pa.nulls(upserts.num_rows, target.field(name).type))
        index = upserts.schema.get_field_index(name)
        merged = pc.if_else(mask, kept, upserts.column(index))
        upserts = upserts.set_column(index, target.field(name), merged)
    return upserts


def _key_filter(rule: MergeRule, keys: pa.Table):
    """Rows whose first key column lies within the batch's bounds (lets manifests prune files)."""
    bounds = pc.min_max(keys.column(rule.keys[0]))
    low, high = python_value(bounds["min"]), python_value(bounds["max"])
    if low is None or high is None:
        return AlwaysTrue()
    return And(GreaterThanOrEqual(rule.keys[0], low), LessThanOrEqual(rule.keys[0], high))


def _stored_rows(table, target: pa.Schema, rule: MergeRule, fill_from: pa.Table, wanted_keys: pa.Array,
                 columns: list[str]) -> pa.Table | None:
    """Key and `columns` of the live rows whose key is among `wanted_keys` (a scan: deletes applied)."""
    names = list(dict.fromkeys([*rule.keys, *columns]))
    found = table.scan(row_filter=_key_filter(rule, fill_from), selected_fields=tuple(names)).to_arrow()
    found = found.select(names).cast(pa.schema([target.field(n) for n in names]))
    found = found.filter(pc.is_in(key_values(found, rule.keys), value_set=wanted_keys))
    return found.combine_chunks() if found.num_rows else None


def _positions(table, target: pa.Schema, rule: MergeRule, dropped: pa.Table) -> pa.Table:
    """(file_path, pos) of every stored row holding one of the dropped keys, sorted as the spec asks. A row
    an earlier delete file already removed may be named again: deleting it twice changes nothing."""
    keys = key_values(dropped, rule.keys)
    paths, positions = [], []
    for data_file in files_where(table, _key_filter(rule, dropped)):
        with open_data_file(table, data_file) as parquet:
            found = read_columns(parquet, table.schema(), rule.keys, target)
        if found is None:
            continue
        hits = pc.indices_nonzero(pc.is_in(key_values(found, rule.keys), value_set=keys))
        if len(hits):
            positions.append(hits.cast(pa.int64()))
            paths.append(pa.array([data_file.file_path] * len(hits), pa.string()))
    if not positions:
        return POSITION_DELETE_SCHEMA.empty_table()
    result = pa.Table.from_arrays([pa.concat_arrays(paths), pa.concat_arrays(positions)],
                                  schema=POSITION_DELETE_SCHEMA)
    return result.sort_by([("file_path", "ascending"), ("pos", "ascending")])


def _write_position_deletes(table, positions: pa.Table, written: list[str]) -> DataFile:
    path = f"{table.location()}/data/{uuid.uuid4().hex}-deletes.parquet"
    written.append(path)
    with table.io.new_output(path).create(overwrite=True) as out:
        pq.write_table(positions, out, compression="zstd")
    paths = positions.column("file_path")
    return DataFile.from_args(
        content=DataFileContent.POSITION_DELETES, file_path=path, file_format=FileFormat.PARQUET,
        partition=Record(), record_count=positions.num_rows, file_size_in_bytes=len(table.io.new_input(path)),
        # Bounds on file_path let readers attach this file only to the data files it names.
        lower_bounds={POSITION_PATH_ID: paths[0].as_py().encode()},
        upper_bounds={POSITION_PATH_ID: paths[-1].as_py().encode()},
        spec_id=table.metadata.default_spec_id, equality_ids=None, sort_order_id=None, key_metadata=None)


class _DeleteManifestWriter(ManifestWriterV2):
    def content(self) -> ManifestContent:
        return ManifestContent.DELETES


class _AppendWithDeletes(_FastAppendFiles):
    """pyiceberg commits data files only: this snapshot also carries one manifest of delete files."""

    def __init__(self, delete_files: list[DataFile], **kwargs):
        super().__init__(**kwargs)
        self._delete_files = delete_files

    def _manifests(self):
        manifests = super()._manifests()
        if not self._delete_files:
            return manifests
        writer = _DeleteManifestWriter(self.spec(self._transaction.table_metadata.default_spec_id), self.schema(),
                                       self.new_manifest_output(), self._snapshot_id, self._compression)
        with writer:
            for delete_file in self._delete_files:
                writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=self._snapshot_id,
                                                   data_file=delete_file))
        return manifests + [writer.to_manifest_file()]


def compact(table, target_file_size: int = 128 * 1024 * 1024, after_files: int = COMPACT_AFTER_FILES) -> bool:
    """Once a table gathered more than `after_files` small data files and delete files (CDC commits, appends),
    rewrite those files, deleted rows dropped, into few files; big files without deletes stay. One commit:
    readers see the old files or the new ones."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return False
    tasks = list(table.scan().plan_files())
    delete_files = [m for m in snapshot.manifests(table.io) if m.content == ManifestContent.DELETES]
    rewrite = [t for t in tasks if t.delete_files or t.file.file_size_in_bytes < target_file_size // 4]
    deletes = sum((m.added_files_count or 0) + (m.existing_files_count or 0) for m in delete_files)
    if len(rewrite) + deletes <= after_files:
        return False
    txn = table.transaction()
    files = RollingParquetWriter(table.io, txn.table_metadata, table.schema(), target_file_size)
    try:
        scan = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue())
        for record_batch in scan.to_record_batches(rewrite):
            files.add(record_batch)
        data_files = files.finish()
        # Every file a delete file applies to is rewritten, so every delete manifest can go.
        replace = _ReplaceAll(operation=Operation.OVERWRITE, transaction=txn, io=table.io)
        for task in rewrite:
            replace.delete_data_file(task.file)
        for data_file in data_files:
            replace.append_data_file(data_file)
        replace.commit()
        txn.commit_transaction()
    except BaseException:
        files.abort()
        raise
    return True


class _ReplaceAll(_OverwriteFiles):
    """Files replaced with every delete file's targets among them: the delete manifests go too."""

    def _existing_manifests(self):
        return [m for m in super()._existing_manifests() if m.content != ManifestContent.DELETES]
