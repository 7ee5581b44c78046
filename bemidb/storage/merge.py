"""Merge changed rows into an Iceberg table in ONE commit, copy-on-write.

The new rows are streamed into new Parquet files (as the writer does). Then only the data files that may hold
a replaced row (pruned by the manifests' column bounds, confirmed by reading the key column) are rewritten
without those rows, and one snapshot deletes them and adds the rewritten and the new files. Readers see the
old table or the merged one; the table never holds two versions of a row. No delete files: the query server
reads plain data files.

The re-read rule of cursor syncs (WHERE cursor >= last, so rows arriving later with the last value are not
lost) is applied here:
- with a primary key, a re-read row whose cursor is still `last` and whose key the table already holds at
  `last` was synced by the previous run: it is skipped (no rewrite for an unchanged tail); every other row
  replaces the table's row with the same key;
- without a key, the table's rows with cursor >= last are replaced by the re-read ones.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual

from bemidb.storage import evolution
from bemidb.storage.catalog import PROP_SYNCED_AT
from bemidb.storage.writer import (
    DEFAULT_TABLE_PROPERTIES,
    FIELD_ID_KEY,
    RollingParquetWriter,
    WriteResult,
    iceberg_schema,
    pg_types_property,
)

log = logging.getLogger(__name__)

READ_BATCH_ROWS = 64 * 1024


@dataclass(frozen=True)
class MergeRule:
    keys: list[str]  # the source's primary key (empty: none)
    cursor: str  # the cursor column
    last: pa.Scalar | None  # the cursor value the previous sync stopped at (typed like the column)


def merge_table(catalog, identifier: tuple[str, str], arrow_schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                rule: MergeRule, *, properties: dict[str, str] | None = None, deleted: pa.Table | None = None,
                on_progress: Callable[[int, int], None] | None = None,
                target_file_size: int = 128 * 1024 * 1024, **_ignored) -> WriteResult:
    """Merge `batches` (rows read from the cursor on) into the existing table: one commit, schema evolved
    in the same commit. Raises ValueError when the schema change is incompatible (the caller refreshes)."""
    table = catalog.load_table(identifier)
    old_schema = table.schema()
    wanted = iceberg_schema(arrow_schema)
    change = evolution.compare(old_schema, wanted)
    if change.incompatible:
        raise ValueError(change.incompatible)
    target = evolution.target_arrow_schema(arrow_schema, change)
    txn = table.transaction()
    evolution.apply(txn, wanted, change)
    schema = txn.table_metadata.schema()
    txn.set_properties({**DEFAULT_TABLE_PROPERTIES, **pg_types_in_order(arrow_schema, schema),
                        PROP_SYNCED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        **(properties or {})})
    files = RollingParquetWriter(table.io, txn.table_metadata, schema, target_file_size)
    rows = 0
    try:
        synced_tail = _keys_at_last(table, rule, target) if rule.keys and rule.last is not None else None
        changed_keys: list[pa.Array] = []
        changed_first: list[pa.Array] = []
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if target is not arrow_schema:
                batch = batch.cast(target)
            if synced_tail is not None and len(synced_tail):
                batch = batch.filter(pc.invert(_matches(batch, rule, synced_tail, at_last=True)))
            if batch.num_rows == 0:
                continue
            files.add(batch)
            rows += batch.num_rows
            if rule.keys:
                changed_keys.append(key_values(batch, rule.keys))
                changed_first.append(batch.column(batch.schema.get_field_index(rule.keys[0])))
            if on_progress:
                on_progress(rows, files.bytes_written)
        if deleted is not None and deleted.num_rows and rule.keys:  # --detect-deletes: keys gone from the source
            deleted = deleted.cast(pa.schema([target.field(k) for k in rule.keys]))
            changed_keys.append(key_values(deleted, rule.keys))
            changed_first.append(deleted.column(rule.keys[0]).combine_chunks())
        replaced = _rewrite_affected(table, schema, target, rule, changed_keys, changed_first, files)
        data_files = files.finish()
        if on_progress:
            on_progress(rows, files.bytes_written)
        if replaced:
            overwrite_files(txn, replaced, data_files)
        elif data_files:
            with txn.update_snapshot().fast_append() as append:
                for data_file in data_files:
                    append.append_data_file(data_file)
        committed = txn.commit_transaction()
    except BaseException:
        files.abort()
        raise
    snapshot = committed.current_snapshot()
    return WriteResult(rows, files.bytes_written, len(data_files), snapshot.snapshot_id if snapshot else None)


def overwrite_files(txn, replaced: list, added: list) -> None:
    """One overwrite snapshot in `txn`: the rewritten files out, their replacements and new rows in."""
    with txn.update_snapshot().overwrite() as overwrite:
        for data_file in replaced:
            overwrite.delete_data_file(data_file)
        for data_file in added:
            overwrite.append_data_file(data_file)


def pg_types_in_order(arrow_schema: pa.Schema, schema) -> dict[str, str]:
    by_name = {f.name: f for f in arrow_schema}
    return pg_types_property(pa.schema([by_name[f.name] for f in schema.fields]), schema)


# ---------------------------------------------------------------------------------------------------------
# Which rows of the table are replaced


def files_where(table, row_filter) -> list:
    if table.current_snapshot() is None:
        return []
    try:
        return [task.file for task in table.scan(row_filter=row_filter).plan_files()]
    except Exception as exc:  # noqa: BLE001 - a bound pyiceberg cannot express: no pruning, still correct
        log.debug("no pruning (%s)", exc)
        return [task.file for task in table.scan().plan_files()]


def python_value(scalar: pa.Scalar):
    try:
        return scalar.as_py()
    except (ValueError, OverflowError):  # infinity timestamps, BC dates: no bound to prune with
        return None


def _keys_at_last(table, rule: MergeRule, target: pa.Schema) -> pa.Array | None:
    """Keys the table holds with cursor == last (synced by the previous run), read from the key and cursor
    columns of the files whose cursor bounds reach `last`."""
    value = python_value(rule.last)
    row_filter = GreaterThanOrEqual(rule.cursor, value) if value is not None else AlwaysTrue()
    columns = list(dict.fromkeys([*rule.keys, rule.cursor]))  # the key may be the cursor itself
    parts = []
    for data_file in files_where(table, row_filter):
        with open_data_file(table, data_file) as parquet:
            found = read_columns(parquet, table.schema(), columns, target)
        if found is None:
            continue
        at_last = pc.fill_null(pc.equal(found[rule.cursor], rule.last.cast(found.schema.field(rule.cursor).type)),
                               False)
        parts.append(key_values(found.filter(at_last), rule.keys))
    return pa.concat_arrays(parts) if parts else None


def key_values(data, keys: list[str]) -> pa.Array:
    """One comparable value per row for the key: the column itself, or for a composite key its columns as text
    joined by NUL (Postgres text cannot hold NUL, so two different keys never join to the same value)."""
    columns = [data.column(data.schema.get_field_index(k)) for k in keys]
    if len(columns) == 1:
        values = columns[0]
    else:
        binary = any(pa.types.is_binary(c.type) for c in columns)  # bytea in the key: join as bytes
        text = pa.binary() if binary else pa.string()
        parts = [c if pa.types.is_binary(c.type) else c.cast(pa.string()).cast(text) for c in columns]
        values = pc.binary_join_element_wise(*parts, pa.scalar("\x00", text))
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _matches(batch, rule: MergeRule, key_set: pa.Array, at_last: bool = False) -> pa.Array:
    """Boolean mask: rows of `batch` whose key is in `key_set` (and, with at_last, whose cursor == last)."""
    result = pc.is_in(key_values(batch, rule.keys), value_set=key_set)
    if at_last:
        cursor = batch.column(batch.schema.get_field_index(rule.cursor))
        result = pc.and_(result, pc.fill_null(pc.equal(cursor, rule.last.cast(cursor.type)), False))
    return result


def _rewrite_affected(table, schema, target: pa.Schema, rule: MergeRule, changed_keys: list[pa.Array],
                      changed_first: list[pa.Array], files: RollingParquetWriter) -> list:
    """Rewrite, without their replaced rows, the data files that hold any; return those files."""
    if rule.keys:
        if not changed_keys:
            return []
        keys = pa.concat_arrays(changed_keys)
        # Prune by the first key column's bounds over the changed rows (its min/max are in the manifests).
        first = pa.chunked_array(changed_first)
        bounds = pc.min_max(first)
        low, high = python_value(bounds["min"]), python_value(bounds["max"])
        row_filter = (And(GreaterThanOrEqual(rule.keys[0], low), LessThanOrEqual(rule.keys[0], high))
                      if low is not None and high is not None else AlwaysTrue())
    else:
        if rule.last is None:
            return []
        keys = None
        value = python_value(rule.last)
        row_filter = GreaterThanOrEqual(rule.cursor, value) if value is not None else AlwaysTrue()
    replaced = []
    old_schema = table.schema()
    for data_file in files_where(table, row_filter):
        with open_data_file(table, data_file) as parquet:
            columns = rule.keys or [rule.cursor]
            found = read_columns(parquet, old_schema, columns, target)
            if found is None:
                continue
            if keys is not None:
                drop = _matches(found, rule, keys)
            else:
                cursor = found[rule.cursor]
                drop = pc.fill_null(pc.greater_equal(cursor, rule.last.cast(cursor.type)), False)
            if not pc.any(drop).as_py():
                continue
            keep = pc.invert(drop)
            copy_kept_rows(parquet, schema, target, keep, files)
        replaced.append(data_file)
    return replaced


# ---------------------------------------------------------------------------------------------------------
# Reading the table's files, by Iceberg field id (names may have changed since a file was written)


class open_data_file:
    def __init__(self, table, data_file):
        self.stream = table.io.new_input(data_file.file_path).open()

    def __enter__(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.stream)

    def __exit__(self, *exc):
        self.stream.close()


def _file_columns(parquet: pq.ParquetFile) -> dict[int, int]:
    """Iceberg field id -> column index in this file."""
    ids = {}
    for index, arrow_field in enumerate(parquet.schema_arrow):
        meta = arrow_field.metadata or {}
        if FIELD_ID_KEY in meta:
            ids[int(meta[FIELD_ID_KEY])] = index
    return ids


def read_columns(parquet: pq.ParquetFile, schema, names: list[str], target: pa.Schema) -> pa.Table | None:
    """These columns of the file, named and typed as in `target`; None when the file lacks one of them."""
    by_id = _file_columns(parquet)
    file_names = []
    for name in names:
        index = by_id.get(schema.find_field(name).field_id)
        if index is None:
            return None
        file_names.append(parquet.schema_arrow.field(index).name)
    table = parquet.read(columns=file_names, use_threads=False)
    return pa.Table.from_arrays([table.column(i).cast(target.field(n).type) for i, n in enumerate(names)],
                                names=names)


def copy_kept_rows(parquet: pq.ParquetFile, schema, target: pa.Schema, keep: pa.Array | None,
                   files: RollingParquetWriter) -> None:
    """The file's rows where `keep` is true (every row when None), batch by batch, in `target`'s columns
    (found by field id; a column the file lacks reads as NULL)."""
    offset = 0
    for conformed in conformed_batches(parquet, schema, target):
        n = conformed.num_rows
        kept = conformed.filter(keep.slice(offset, n)) if keep is not None else conformed
        offset += n
        if kept.num_rows:
            files.add(kept)


def conformed_batches(parquet: pq.ParquetFile, schema, target: pa.Schema) -> Iterable[pa.RecordBatch]:
    """The file's rows in order, a batch at a time, in `target`'s columns (found by field id; a column the
    file lacks reads as NULL)."""
    by_id = _file_columns(parquet)
    sources = [by_id.get(schema.find_field(f.name).field_id) for f in target]
    for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, use_threads=False):
        n = batch.num_rows
        arrays = [batch.column(index).cast(f.type) if index is not None else pa.nulls(n, f.type)
                  for index, f in zip(sources, target, strict=True)]
        yield pa.RecordBatch.from_arrays(arrays, schema=target)
