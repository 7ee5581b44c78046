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

A table without a key (REPLICA IDENTITY FULL) removes rows by their whole value instead, as many of each value
as the batch names (row_deletes.py), and only ever appends the others.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual
from pyiceberg.expressions.visitors import _InclusiveMetricsEvaluator
from pyiceberg.io.pyarrow import _pyarrow_schema_ensure_small_types, schema_to_pyarrow
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

from bemidb.storage import evolution, row_deletes
from bemidb.storage.catalog import PROP_SYNCED_AT
from bemidb.storage.merge import (
    MergeRule,
    copy_kept_rows,
    files_where,
    key_values,
    open_data_file,
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
    keys: list[str]  # primary-key columns; none: rows are removed by whole value (REPLICA IDENTITY FULL)
    upserts: pa.Table  # the final version of every inserted or updated row (without keys: rows to append)
    dropped: pa.Table  # key columns of every row to remove first (deleted, updated, or a changed key's old one);
    #                    without keys: whole rows, one per stored row to remove
    truncated: bool = False  # remove every stored row first
    unchanged: dict[str, pa.Array] = field(default_factory=dict)  # column -> mask over upserts: keep stored
    fill_from: pa.Table | None = None  # key columns, one row per upsert: the stored row to keep values from


@dataclass
class Staged:
    """One table's changes written to files and not committed yet: the parts of a drain bigger than memory
    (a million-row transaction). The last part commits them all in ONE snapshot, so a reader sees the table
    before the whole drain or after it, never part of a transaction; a run that dies first leaves only
    unreferenced files (vacuum removes them) and the source still holds every change."""
    table: Any  # as loaded before the first part: every part's replaced rows are found against it
    txn: Any  # its schema already evolved; committed by apply_changes
    target: pa.Schema  # the Arrow schema every part is written in
    data_files: list[DataFile] = field(default_factory=list)
    delete_files: list[DataFile] = field(default_factory=list)
    truncated: bool = False  # a part removed every stored row: the committed files all go at the commit
    removed: dict[str, list] = field(default_factory=dict)  # keyless: data file -> positions the parts removed
    rows: int = 0
    bytes: int = 0

    @property
    def schema(self):
        return self.txn.table_metadata.schema()

    def discard(self) -> None:
        """Delete every file written so far (nothing references them)."""
        for data_file in [*self.data_files, *self.delete_files]:
            try:
                self.table.io.delete(data_file.file_path)
            except Exception:  # noqa: BLE001 - unreferenced: vacuum removes it later
                pass
        self.data_files, self.delete_files = [], []
        self.removed.clear()


def stage_changes(catalog, identifier: tuple[str, str], arrow_schema: pa.Schema, batch: ChangeBatch,
                  staged: Staged | None = None, target_file_size: int = 128 * 1024 * 1024) -> Staged:
    """Write one part's files (new rows, position deletes naming the rows they replace among the stored
    files and the earlier parts' files) without committing. Raises ValueError on a schema change that cannot
    be applied in place (the caller re-copies the table); on any failure the parts staged so far are deleted."""
    try:
        if staged is None:
            table = catalog.load_table(identifier)
            wanted = iceberg_schema(arrow_schema)
            change = evolution.compare(table.schema(), wanted)
            if change.incompatible:
                raise ValueError(change.incompatible)
            txn = table.transaction()
            evolution.apply(txn, wanted, change)
            staged = Staged(table, txn, evolution.target_arrow_schema(arrow_schema, change))
        else:
            change = evolution.compare(staged.table.schema(), iceberg_schema(arrow_schema))
            if change.incompatible or evolution.target_arrow_schema(arrow_schema, change) != staged.target:
                raise ValueError("the source's columns changed within one drain's changes")
        _write_part(staged, batch, target_file_size)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    return staged


def apply_changes(catalog, identifier: tuple[str, str], arrow_schema: pa.Schema, batch: ChangeBatch, *,
                  properties: dict[str, str], staged: Staged | None = None,
                  target_file_size: int = 128 * 1024 * 1024,
                  before_commit: Callable[[], None] | None = None) -> WriteResult:
    """One commit: schema evolved, rows replaced (this batch's and every staged part's), properties set.
    Raises ValueError on a schema change that cannot be applied in place (the caller re-copies the table)."""
    staged = stage_changes(catalog, identifier, arrow_schema, batch, staged, target_file_size)
    table, txn = staged.table, staged.txn
    try:
        txn.set_properties({**DEFAULT_TABLE_PROPERTIES, **pg_types_in_order(arrow_schema, staged.schema),
                            PROP_SYNCED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **properties})
        if before_commit is not None:  # every file is written and none is referenced yet
            before_commit()
        if staged.truncated:
            producer = _OverwriteWithDeletes(staged.delete_files, operation=Operation.OVERWRITE
                                             if table.current_snapshot() else Operation.APPEND,
                                             transaction=txn, io=table.io)
            for data_file in live_data_files(table):
                producer.delete_data_file(data_file)
        else:
            producer = _AppendWithDeletes(staged.delete_files, operation=Operation.OVERWRITE
                                          if staged.delete_files else Operation.APPEND, transaction=txn, io=table.io)
        if staged.data_files or staged.delete_files or staged.truncated:
            for data_file in staged.data_files:
                producer.append_data_file(data_file)
            producer.commit()
        committed = txn.commit_transaction()
    except BaseException:
        staged.discard()
        raise
    snapshot = committed.current_snapshot()
    return WriteResult(staged.rows, staged.bytes, len(staged.data_files), snapshot.snapshot_id if snapshot else None)


def _write_part(staged: Staged, batch: ChangeBatch, target_file_size: int) -> None:
    table, target = staged.table, staged.target
    upserts = batch.upserts.cast(target) if batch.upserts.schema != target else batch.upserts
    rule = MergeRule(batch.keys, "", None)
    if batch.truncated:  # nothing stored before this part survives, nor anything an earlier part wrote
        staged.discard()
        staged.truncated = True
    if batch.unchanged and upserts.num_rows:
        upserts = _keep_unchanged(staged, rule, upserts, batch)
    files = RollingParquetWriter(table.io, staged.txn.table_metadata, staged.schema, target_file_size)
    try:
        for record_batch in upserts.to_batches():
            files.add(record_batch)
        if batch.dropped.num_rows and not batch.truncated:
            if batch.keys:
                dropped = batch.dropped.cast(pa.schema([target.field(k) for k in batch.keys]))
                positions = _positions(staged, rule, dropped)
            else:  # whole rows, by value (the positions are kept in staged.removed for later parts)
                dropped = batch.dropped.cast(target) if batch.dropped.schema != target else batch.dropped
                positions = pa.Table.from_arrays(row_deletes.positions(staged, dropped).columns,
                                                 schema=POSITION_DELETE_SCHEMA)
            if positions.num_rows:
                staged.delete_files.append(_write_position_deletes(table, positions))
        staged.data_files.extend(files.finish())
    except BaseException:
        files.abort()
        raise
    staged.rows += upserts.num_rows
    staged.bytes += files.bytes_written


def _keep_unchanged(staged: Staged, rule: MergeRule, upserts: pa.Table, batch: ChangeBatch) -> pa.Table:
    """Replace the masked values of `upserts` by the stored row's (looked up by batch.fill_from's keys): the
    latest staged part's version of the row, else the committed one."""
    target = staged.target
    columns = list(batch.unchanged)
    fill_from = batch.fill_from.cast(pa.schema([target.field(k) for k in rule.keys]))
    wanted_keys = key_values(fill_from, rule.keys)
    stored = _stored_rows(staged, rule, fill_from, wanted_keys, columns)
    if stored is None:
        positions = pa.nulls(upserts.num_rows, pa.int32())
    else:  # index_in takes the first match: the latest version comes first
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


def _stored_rows(staged: Staged, rule: MergeRule, fill_from: pa.Table, wanted_keys: pa.Array,
                 columns: list[str]) -> pa.Table | None:
    """Key and `columns` of the rows whose key is among `wanted_keys`: the staged parts' versions, latest
    first, then the committed live rows (a scan: deletes applied), unless a staged part truncated them."""
    target = staged.target
    names = list(dict.fromkeys([*rule.keys, *columns]))
    names_schema = pa.schema([target.field(n) for n in names])
    row_filter = _key_filter(rule, fill_from)
    found = []
    for data_file in reversed(_staged_files_where(staged, row_filter)):
        with open_data_file(staged.table, data_file) as parquet:
            part = read_columns(parquet, staged.schema, names, target)
        if part is not None:
            found.append(part.filter(pc.is_in(key_values(part, rule.keys), value_set=wanted_keys)))
    if not staged.truncated and staged.table.current_snapshot() is not None:
        committed = staged.table.scan(row_filter=row_filter, selected_fields=tuple(names)).to_arrow()
        committed = committed.select(names).cast(names_schema)
        found.append(committed.filter(pc.is_in(key_values(committed, rule.keys), value_set=wanted_keys)))
    found = [pa.Table.from_arrays(part.columns, schema=names_schema) for part in found if part.num_rows]
    return pa.concat_tables(found).combine_chunks() if found else None


def _staged_files_where(staged: Staged, row_filter) -> list[DataFile]:
    """The staged data files whose column bounds may hold rows matching `row_filter`, in the order written."""
    try:
        may_hold = _InclusiveMetricsEvaluator(staged.schema, row_filter).eval
        return [f for f in staged.data_files if may_hold(f)]
    except Exception:  # noqa: BLE001 - a bound pyiceberg cannot express: every file, still correct
        return list(staged.data_files)


def _positions(staged: Staged, rule: MergeRule, dropped: pa.Table) -> pa.Table:
    """(file_path, pos) of every stored or staged row holding one of the dropped keys, sorted as the spec
    asks. A row an earlier delete file already removed may be named again: deleting it twice changes
    nothing. Position deletes apply to data files of the same snapshot, so staged files can be named."""
    keys = key_values(dropped, rule.keys)
    row_filter = _key_filter(rule, dropped)
    candidates = [] if staged.truncated else [(f, staged.table.schema()) for f in files_where(staged.table, row_filter)]
    candidates += [(f, staged.schema) for f in _staged_files_where(staged, row_filter)]
    paths, positions = [], []
    for data_file, schema in candidates:
        with open_data_file(staged.table, data_file) as parquet:
            found = read_columns(parquet, schema, rule.keys, staged.target)
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


def _write_position_deletes(table, positions: pa.Table) -> DataFile:
    path = f"{table.location()}/data/{uuid.uuid4().hex}-deletes.parquet"
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


class _WithDeleteFiles:
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


class _AppendWithDeletes(_WithDeleteFiles, _FastAppendFiles):
    pass


class _OverwriteWithDeletes(_WithDeleteFiles, _OverwriteFiles):
    """A truncate's commit: every stored file out, the staged data and delete files in."""


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
    schema = table.schema()
    # The current schema's types (a widened column widens its old files' values), in the small string,
    # binary and list types the sync writes.
    target = _pyarrow_schema_ensure_small_types(schema_to_pyarrow(schema, include_field_ids=False))
    files = RollingParquetWriter(table.io, txn.table_metadata, schema, target_file_size)
    try:
        # File by file, a batch at a time: memory stays that of a batch and a row group, whatever the table's
        # size (a scan would hold a whole file: 1.5 GB for a 5M-row table).
        for task in rewrite:
            deleted = row_deletes.deleted_positions(table, task)
            with open_data_file(table, task.file) as parquet:
                keep = None if deleted is None else _kept(parquet.metadata.num_rows, deleted)
                copy_kept_rows(parquet, schema, target, keep, files)
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


def _kept(rows: int, deleted: pa.Array) -> pa.Array:
    """Boolean mask over `rows` rows: false at the deleted positions."""
    positions = pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), rows)), 1)
    return pc.invert(pc.is_in(positions, value_set=deleted.cast(pa.int64())))


class _ReplaceAll(_OverwriteFiles):
    """Files replaced with every delete file's targets among them: the delete manifests go too."""

    def _existing_manifests(self):
        return [m for m in super()._existing_manifests() if m.content != ManifestContent.DELETES]
