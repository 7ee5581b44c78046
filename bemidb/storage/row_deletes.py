"""Removing rows of a table without a key by their whole value, as a multiset (CDC of REPLICA IDENTITY FULL
tables, sync/cdc_identity.py).

A batch asks to remove k rows equal to a value; the table may hold that value more than k times (identical
rows). Equal means bit for bit, column by column, NULL equal to NULL: each row is reduced to one binary
fingerprint (per column a null flag, then the value's fixed-width bytes or its length and bytes; lists
element by element), so a float's NaN equals NaN, -0.0 differs from 0.0, and every type compares as stored.
The removed rows were typed by the very plans that typed the stored ones, so equal source values give equal
bytes. The live rows (rows already removed by committed or staged position deletes are skipped) are read file
by file, a batch at a time, and the first k matches of each value are named by position.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual

from bemidb.storage.merge import conformed_batches, open_data_file, python_value

POSITION_COLUMNS = ("file_path", "pos")
_PRESENT, _NULL = pa.scalar(b"\x01", pa.binary()), pa.scalar(b"\x00", pa.binary())
_NO_BYTES = pa.scalar(b"", pa.binary())


def fingerprints(data) -> pa.Array:
    """One binary value per row of `data` (a Table or RecordBatch): equal exactly when the rows are."""
    parts = [_fingerprint(_one_chunk(column)) for column in data.columns]
    if not parts:
        return pa.repeat(_NO_BYTES, data.num_rows)
    return pc.binary_join_element_wise(*parts, _NO_BYTES) if len(parts) > 1 else parts[0]


def _one_chunk(column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _fingerprint(array: pa.Array) -> pa.Array:
    """Per value: a null flag, then bytes that tell values of this column's type apart."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return _fingerprint(array.dictionary_decode())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        flat = _fingerprint(array.values)  # every element, NULL elements flagged
        rebuilt = type(array).from_arrays(array.offsets, flat)  # offsets carry the array's own slice
        value = _length_prefixed(pc.binary_join(rebuilt, _NO_BYTES))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind) \
            or pa.types.is_large_binary(kind):
        value = _length_prefixed(array.cast(pa.binary()))
    elif pa.types.is_boolean(kind):
        value = _fixed_bytes(array.cast(pa.int8()))
    elif pa.types.is_fixed_size_binary(kind):
        value = array.cast(pa.binary())
    else:  # numbers, decimals, dates, times, timestamps: their fixed-width bytes (a float's sign and NaN too)
        value = _fixed_bytes(array)
    null = array.is_null()
    return pc.binary_join_element_wise(pc.if_else(null, _NULL, _PRESENT), pc.if_else(null, _NO_BYTES, value),
                                       _NO_BYTES)


def _fixed_bytes(array: pa.Array) -> pa.Array:
    width = array.type.bit_width // 8
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(array), [None, array.buffers()[1]],
                                                offset=array.offset).cast(pa.binary())


def _length_prefixed(values: pa.Array) -> pa.Array:
    lengths = pc.fill_null(pc.binary_length(values), 0).cast(pa.int32())
    return pc.binary_join_element_wise(_fixed_bytes(lengths), pc.fill_null(values, _NO_BYTES), _NO_BYTES)


class Wanted:
    """Rows to remove, as distinct fingerprints each with how many stored rows are still to find."""

    def __init__(self, rows: pa.Table):
        counted = pc.value_counts(fingerprints(rows))
        self.values = counted.field("values")
        self.remaining = np.asarray(counted.field("counts"), dtype=np.int64).copy()
        # Columns whose values are compared exactly by Arrow's hashing (no float, no list): a stored row can
        # only match if each of them holds one of the removed rows' values. Cheap to test on every row, so
        # only the few rows that pass are fingerprinted.
        exact = [i for i, column in enumerate(rows.columns) if _hashed_exactly(column.type)]
        fixed = [i for i in exact if not _is_text(rows.column(i).type)]
        self.screen = [(i, pc.unique(rows.column(i))) for i in (fixed or exact)]

    @property
    def missing(self) -> int:
        return int(self.remaining.sum())

    def take(self, batch: pa.RecordBatch, live: np.ndarray | None) -> np.ndarray:
        """Row numbers (within `batch`) of the matches to remove, at most the remaining count per value,
        the first ones in batch order; `live` masks out rows removed before."""
        passed = np.ones(batch.num_rows, dtype=bool) if live is None else live.copy()
        for index, values in self.screen:
            passed &= np.asarray(pc.is_in(batch.column(index), value_set=values, skip_nulls=False)
                                 .to_numpy(zero_copy_only=False), dtype=bool)
        candidates = np.flatnonzero(passed)
        if not len(candidates):
            return candidates
        found = pc.index_in(fingerprints(batch.take(pa.array(candidates))), value_set=self.values)
        which = np.asarray(pc.fill_null(found, -1), dtype=np.int64)
        hits = candidates[which >= 0]
        which = which[which >= 0]
        if not len(hits):
            return hits
        value = which
        order = np.argsort(value, kind="stable")  # by value, batch order kept within one
        value, hits = value[order], hits[order]
        starts = np.flatnonzero(np.r_[True, value[1:] != value[:-1]])
        rank = np.arange(len(value)) - np.repeat(starts, np.diff(np.r_[starts, len(value)]))
        chosen = rank < self.remaining[value]
        self.remaining -= np.bincount(value[chosen], minlength=len(self.remaining))
        return np.sort(hits[chosen])


def _hashed_exactly(kind: pa.DataType) -> bool:
    return (pa.types.is_integer(kind) or pa.types.is_temporal(kind) or pa.types.is_boolean(kind)
            or pa.types.is_decimal(kind) or _is_text(kind))


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_binary(kind)


def positions(staged, rows: pa.Table) -> pa.Table:
    """(file_path, pos) of live stored or staged rows equal to `rows`, as many of each value as `rows` holds,
    sorted as the spec asks, and noted in `staged.removed` (a later part must not find them again). Raises
    ValueError when the table holds fewer (it was not what the source had: the caller copies it again rather
    than keep a row the source deleted)."""
    wanted = Wanted(rows)
    target = staged.target
    row_filter = _bounds_filter(rows)
    found_paths, found_positions = [], []
    for data_file, schema, dead in _candidates(staged, row_filter):
        if not wanted.missing:
            break
        offset = 0
        with open_data_file(staged.table, data_file) as parquet:
            for batch in conformed_batches(parquet, schema, target):
                n = batch.num_rows
                live = None if dead is None else ~np.isin(np.arange(offset, offset + n), dead)
                chosen = wanted.take(batch, live)
                if len(chosen):
                    found_positions.append(chosen + offset)
                    staged.removed.setdefault(data_file.file_path, []).append(chosen + offset)
                    found_paths.append(pa.repeat(pa.scalar(data_file.file_path, pa.string()), len(chosen)))
                offset += n
                if not wanted.missing:
                    break
    if wanted.missing:
        raise ValueError(f"{wanted.missing} row(s) deleted at the source are not in the table")
    if not found_positions:
        return pa.table({"file_path": pa.array([], pa.string()), "pos": pa.array([], pa.int64())})
    found = pa.table({"file_path": pa.concat_arrays(found_paths),
                      "pos": pa.array(np.concatenate(found_positions), pa.int64())})
    return found.sort_by([("file_path", "ascending"), ("pos", "ascending")])


def _candidates(staged, row_filter):
    """(data file, its schema, positions already removed) of every committed file the rows may lie in (unless
    a staged part truncated them), then of every staged data file."""
    if not staged.truncated and staged.table.current_snapshot() is not None:
        for task in _tasks(staged.table, row_filter):
            # The evolved schema: its field ids name the old files' columns too, and an added column
            # (absent from them) reads NULL, as the source's old rows hold it.
            yield task.file, staged.schema, _dead(staged, task.file.file_path, deleted_positions(staged.table, task))
    for data_file in staged.data_files:
        yield data_file, staged.schema, _dead(staged, data_file.file_path, None)


def _tasks(table, row_filter):
    try:
        return list(table.scan(row_filter=row_filter).plan_files())
    except Exception:  # noqa: BLE001 - a bound pyiceberg cannot express: every file, still correct
        return list(table.scan().plan_files())


def _dead(staged, path: str, committed: pa.Array | None) -> np.ndarray | None:
    parts = list(staged.removed.get(path, ()))
    if committed is not None:
        parts.append(np.asarray(committed, dtype=np.int64))
    return np.concatenate(parts) if parts else None


def deleted_positions(table, task) -> pa.Array | None:
    """Row positions of `task`'s data file that its position delete files remove (None when none do)."""
    found = []
    for delete_file in task.delete_files:
        with open_data_file(table, delete_file) as parquet:
            named = parquet.read(columns=list(POSITION_COLUMNS), use_threads=False)
        named = named.filter(pc.equal(named.column("file_path"), task.file.file_path))
        found.append(named.column("pos").combine_chunks())
    found = [a for a in found if len(a)]
    return pa.concat_arrays(found) if found else None


def _bounds_filter(rows: pa.Table):
    """Rows whose integer, date and timestamp columns lie within the removed rows' bounds (where those have
    no NULL): lets the manifests' column bounds skip files."""
    condition = AlwaysTrue()
    for name, column in zip(rows.column_names, rows.columns, strict=True):
        kind = column.type
        if column.null_count or not (pa.types.is_integer(kind) or pa.types.is_date(kind)
                                     or pa.types.is_timestamp(kind)):
            continue
        bounds = pc.min_max(column)
        low, high = python_value(bounds["min"]), python_value(bounds["max"])
        if low is not None and high is not None:
            condition = And(condition, And(GreaterThanOrEqual(name, low), LessThanOrEqual(name, high)))
    return condition
