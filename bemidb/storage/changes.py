"""Apply one batch of row changes (upserts, deletes by key, a truncate) to an Iceberg table in ONE commit.

Copy-on-write, as the incremental merge (storage/merge.py, whose file-level helpers this reuses): the new rows
go to new Parquet files, the data files holding any changed or deleted key are rewritten without those rows,
and one snapshot swaps them, with the caller's properties (CDC stores the source position it applied through)
in the same commit. Readers see the table before or after the batch, never half of it.

Unchanged TOASTed values (an update that did not send a large value) arrive as NULL plus a mask: they are
filled from the row the table stores for the key the update came from, so a large value is never wiped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual

from bemidb.storage import evolution
from bemidb.storage.catalog import PROP_SYNCED_AT
from bemidb.storage.merge import (
    MergeRule,
    _files_where,
    _key_values,
    _open,
    _pg_types_in_order,
    _python_value,
    _read_columns,
    _rewrite_affected,
)
from bemidb.storage.writer import (
    DEFAULT_TABLE_PROPERTIES,
    WriteResult,
    _iceberg_schema,
    _live_data_files,
    _RollingParquetWriter,
)


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
    wanted = _iceberg_schema(arrow_schema)
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
    txn.set_properties({**DEFAULT_TABLE_PROPERTIES, **_pg_types_in_order(arrow_schema, schema),
                        PROP_SYNCED_AT: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **properties})
    files = _RollingParquetWriter(table.io, txn.table_metadata, schema, target_file_size)
    try:
        for record_batch in upserts.to_batches():
            files.add(record_batch)
        if batch.truncated:
            replaced = _live_data_files(table)
        elif batch.dropped.num_rows:
            dropped = batch.dropped.cast(pa.schema([target.field(k) for k in batch.keys]))
            replaced = _rewrite_affected(table, schema, target, rule, [_key_values(dropped, batch.keys)],
                                         [dropped.column(batch.keys[0]).combine_chunks()], files)
        else:
            replaced = []
        data_files = files.finish()
        if before_commit is not None:  # every file is written and none is referenced yet
            before_commit()
        if replaced:
            with txn.update_snapshot().overwrite() as overwrite:
                for data_file in replaced:
                    overwrite.delete_data_file(data_file)
                for data_file in data_files:
                    overwrite.append_data_file(data_file)
        elif data_files:
            with txn.update_snapshot().fast_append() as append:
                for data_file in data_files:
                    append.append_data_file(data_file)
        committed = txn.commit_transaction()
    except BaseException:
        files.abort()
        raise
    snapshot = committed.current_snapshot()
    return WriteResult(upserts.num_rows, files.bytes_written, len(data_files),
                       snapshot.snapshot_id if snapshot else None)


def _keep_unchanged(table, target: pa.Schema, rule: MergeRule, upserts: pa.Table, batch: ChangeBatch) -> pa.Table:
    """Replace the masked values of `upserts` by the stored row's (looked up by batch.fill_from's keys)."""
    columns = list(batch.unchanged)
    fill_from = batch.fill_from.cast(pa.schema([target.field(k) for k in rule.keys]))
    wanted_keys = _key_values(fill_from, rule.keys)
    stored = _stored_rows(table, target, rule, fill_from, wanted_keys, columns)
    if stored is None:
        positions = pa.nulls(upserts.num_rows, pa.int32())
    else:
        positions = pc.index_in(wanted_keys, value_set=_key_values(stored, rule.keys))
    for name in columns:
        mask = batch.unchanged[name]
        kept = (stored.column(name).take(positions) if stored is not None
                else pa.nulls(upserts.num_rows, target.field(name).type))
        index = upserts.schema.get_field_index(name)
        merged = pc.if_else(mask, kept, upserts.column(index))
        upserts = upserts.set_column(index, target.field(name), merged)
    return upserts


def _stored_rows(table, target: pa.Schema, rule: MergeRule, fill_from: pa.Table, wanted_keys: pa.Array,
                 columns: list[str]) -> pa.Table | None:
    """Key and `columns` of the stored rows whose key is among `wanted_keys` (files pruned by key bounds)."""
    first = fill_from.column(rule.keys[0])
    bounds = pc.min_max(first)
    low, high = _python_value(bounds["min"]), _python_value(bounds["max"])
    row_filter = (And(GreaterThanOrEqual(rule.keys[0], low), LessThanOrEqual(rule.keys[0], high))
                  if low is not None and high is not None else AlwaysTrue())
    names = list(dict.fromkeys([*rule.keys, *columns]))
    parts = []
    for data_file in _files_where(table, row_filter):
        with _open(table, data_file) as parquet:
            found = _read_columns(parquet, table.schema(), names, target)
        if found is None:
            continue
        found = found.filter(pc.is_in(_key_values(found, rule.keys), value_set=wanted_keys))
        if found.num_rows:
            parts.append(found)
    return pa.concat_tables(parts).combine_chunks() if parts else None
