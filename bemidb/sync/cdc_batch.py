"""One table's changes from the slot, collapsed to their net effect, then typed like a COPY would type them.

Collapsing: per primary key only the last version counts (or "deleted"); a TRUNCATE forgets everything before
it. A table without a key (REPLICA IDENTITY FULL) counts whole rows instead (cdc_identity). The net effect is
typed like a copy types it, so a CDC row is stored exactly as a full refresh would store it, for every type:
in-process where pgoutput's text is what COPY prints (cdc_local: most columns), else by sending the text values
back to the source (one text[] per column for up to ROWS_PER_QUERY rows), cast to each column's type and
selected with the very expressions the copy uses (bemidb/storage/types.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from bemidb.quoting import quote_ident
from bemidb.storage.changes import ChangeBatch
from bemidb.storage.types import (
    ColumnPlan,
    NumericScan,
    PgColumn,
    needs_numeric_scan,
    numeric_scan_sql,
    plan_column,
)
from bemidb.sync import cdc_identity, pgoutput
from bemidb.sync import postgres_source as source
from bemidb.sync.cdc_local import local_plan, parse_texts
from bemidb.sync.postgres_copy import copy_csv_chunks, decode_chunks

ROWS_PER_QUERY = 10_000  # rows typed by one query to the source
LOCAL_ROWS = 100_000  # rows typed in-process at a time
_DELETED = None


@dataclass(slots=True)
class _Version:
    """One row version as pgoutput sent it: the values tuple itself (no per-row dict: a big transaction holds
    one of these per changed row) and its relation's column -> position map, shared by all its rows."""
    values: tuple  # text | None | pgoutput.UNCHANGED, in the relation's column order
    index: dict[str, int]
    fill_key: tuple | None = None  # the stored row whose unchanged values this version keeps

    def get(self, name: str):
        position = self.index.get(name)
        return None if position is None else self.values[position]


@dataclass
class TableChanges:
    keys: list[str]  # primary-key columns (the source's); none: a REPLICA IDENTITY FULL table, rows counted
    rows: dict[tuple, _Version | None] = field(default_factory=dict)  # key -> last version, None = deleted
    truncated: bool = False
    changes: int = 0
    _indexes: dict[int, tuple] = field(default_factory=dict)  # id(relation) -> (relation, index, key positions)
    columns: tuple[str, ...] = ()  # without keys: the column order of `rows`' keys (whole rows -> net count)
    lost: str | None = None  # without keys: why these changes cannot be applied (the table is copied again)

    def add(self, relation: pgoutput.Relation, change: pgoutput.Change) -> None:
        self.changes += 1
        if not self.keys:
            cdc_identity.count(self, relation, change)
            return
        index, key_positions = self._index(relation)
        if change.kind == "D":
            self.rows[tuple(change.old[i] for i in key_positions)] = _DELETED
            return
        new = change.new
        key = tuple(new[i] for i in key_positions)
        old_key = tuple(change.old[i] for i in key_positions) if change.old is not None else key
        if change.kind == "U" and old_key != key:
            previous = self.rows.get(old_key)
            self.rows[old_key] = _DELETED  # a changed primary key: the old row goes
        else:
            previous = self.rows.get(key)
        version = _Version(new, index)
        if any(v is pgoutput.UNCHANGED for v in new):
            names = relation.columns
            if previous is not None:  # an earlier version in this batch has the values (or knows where)
                new = tuple(previous.get(names[i]) if v is pgoutput.UNCHANGED else v for i, v in enumerate(new))
                version.fill_key = previous.fill_key
            elif not self.truncated:  # after a TRUNCATE in this batch nothing stored is left
                version.fill_key = old_key
            if version.fill_key is None:  # nothing stored to keep: the value is unknown, never invented
                new = tuple(None if v is pgoutput.UNCHANGED else v for v in new)
            version.values = new
        self.rows[key] = version

    def truncate(self) -> None:
        self.changes += 1
        self.rows.clear()
        self.truncated = True

    def _index(self, relation: pgoutput.Relation) -> tuple[dict[str, int], list[int]]:
        cached = self._indexes.get(id(relation))
        if cached is None or cached[0] is not relation:
            index = {name: i for i, name in enumerate(relation.columns)}
            cached = (relation, index, [index[k] for k in self.keys])
            self._indexes[id(relation)] = cached
        return cached[1], cached[2]


def typed_batch(conn, changes: TableChanges, plans: list[ColumnPlan], schema: pa.Schema) -> ChangeBatch:
    """The net effect as a ChangeBatch, every value decoded through the source by the copy's plans."""
    if not changes.keys:
        return _typed_counts(conn, changes, plans, schema)
    key_plans = [next(p for p in plans if p.column.name == k) for k in changes.keys]
    key_schema = pa.schema([schema.field(k) for k in changes.keys])
    versions = [v for v in changes.rows.values() if v is not None]
    unchanged, fill_from = {}, None
    if any(v.fill_key is not None for v in versions):
        for plan in plans:
            mask = [v.get(plan.column.name) is pgoutput.UNCHANGED for v in versions]
            if any(mask):
                unchanged[plan.column.name] = pa.array(mask, pa.bool_())
        fill_from = _decode(conn, key_plans, key_schema, versions,
                            lambda v: v.fill_key if v.fill_key is not None else _key_of(v, changes.keys))
    upserts = _decode(conn, plans, schema, versions, lambda v: [_known(v.get(p.column.name)) for p in plans])
    dropped = _decode(conn, key_plans, key_schema, list(changes.rows), lambda key: key)
    return ChangeBatch(changes.keys, upserts, dropped, changes.truncated, unchanged, fill_from)


def _typed_counts(conn, changes: TableChanges, plans: list[ColumnPlan], schema: pa.Schema) -> ChangeBatch:
    """A keyless table's net counts: rows to append and rows to remove (each as many times as counted), whole
    rows typed by the same plans as the upserts, so a removed row equals the row stored for it."""
    added, added_counts, removed, removed_counts = cdc_identity.rows_by_sign(changes)
    to_row = _row_reader(changes.columns, [p.column.name for p in plans])
    upserts = _repeated(_decode(conn, plans, schema, added, to_row), added_counts)
    dropped = _repeated(_decode(conn, plans, schema, removed, to_row), removed_counts)
    return ChangeBatch([], upserts, dropped, changes.truncated)


def _row_reader(columns: tuple[str, ...], names: list[str]):
    """A counted row (values in `columns`' order) -> its values in `names`' order (a column added at the
    source after the drain's last change reads NULL)."""
    where = {name: i for i, name in enumerate(columns)}
    positions = [where.get(name) for name in names]
    return lambda row: [None if i is None else _known(row[i]) for i in positions]


def _repeated(table: pa.Table, counts: list[int]) -> pa.Table:
    if all(n == 1 for n in counts):
        return table
    # One index per copy: the counted rows are Python values already, so a list costs what they do (and a
    # drain does not import numpy for it).
    return table.take(pa.array([i for i, n in enumerate(counts) for _ in range(n)], pa.int64()))


def _key_of(version: _Version, keys: list[str]) -> tuple:
    return tuple(version.get(k) for k in keys)


def _known(value):
    return None if value is pgoutput.UNCHANGED else value


def _decode(conn, plans: list[ColumnPlan], schema: pa.Schema, items: list, to_row) -> pa.Table:
    """to_row(item) for every item, typed like the copy types it: in-process where the text parses here
    (cdc_local), through the source for the other columns (and for a batch whose text does not parse)."""
    local = [local_plan(plan) for plan in plans]
    parts = []
    for start in range(0, len(items), LOCAL_ROWS):
        rows = [to_row(item) for item in items[start:start + LOCAL_ROWS]]
        columns: list = [None] * len(plans)
        here = [i for i, plan in enumerate(local) if plan is not None]
        if here:
            texts = {i: pa.array([row[i] for row in rows], pa.string()) for i in here}
            parsed = parse_texts([local[i] for i in here], list(texts.values()), pa.schema([schema.field(i) for i in here]))
            if parsed is None:  # a value Arrow cannot parse (BC, infinity): only its column goes to the source
                for i in here:
                    alone = parse_texts([local[i]], [texts[i]], pa.schema([schema.field(i)]))
                    columns[i] = alone.column(0) if alone is not None else None
            else:
                for position, i in enumerate(here):
                    columns[i] = parsed.column(position)
        remote = [i for i, column in enumerate(columns) if column is None]
        if remote:
            typed = _decode_by_source(conn, [plans[i] for i in remote], pa.schema([schema.field(i) for i in remote]),
                                      [[row[i] for i in remote] for row in rows])
            for position, i in enumerate(remote):
                columns[i] = typed.column(position)
        parts.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _decode_by_source(conn, plans: list[ColumnPlan], schema: pa.Schema, rows: list[list]) -> pa.Table:
    """The rows sent back to the source and selected with the copy's expressions, a query's worth at a time."""
    batches = []
    for start in range(0, len(rows), ROWS_PER_QUERY):
        select = _values_select(plans, rows[start:start + ROWS_PER_QUERY])
        batches.extend(b for b in decode_chunks(copy_csv_chunks(conn, select), plans, schema) if b.num_rows)
    return pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()


def _values_select(plans: list[ColumnPlan], rows: list[list]) -> str:
    return f"SELECT {', '.join(p.select_sql for p in plans)} FROM {_values([p.column for p in plans], rows)}"


def _values(columns: list[PgColumn], rows: list[list]) -> str:
    """The rows as a subquery of typed columns: one text[] literal per column, unnested together and cast
    (Postgres parses one array literal much faster than a VALUES list of as many expressions)."""
    arrays = ", ".join(_array_literal(values) + "::text[]" for values in zip(*rows, strict=True))
    casts = ", ".join(f"CAST(u.c{i} AS {c.pg_type}) AS {quote_ident(c.name)}" for i, c in enumerate(columns))
    names = ", ".join(f"c{i}" for i in range(len(columns)))
    return f"(SELECT {casts} FROM unnest({arrays}) AS u({names})) AS v"


def _array_literal(values) -> str:
    """A text[] literal as an SQL string: elements double-quoted (backslash and quote escaped), NULL bare."""
    elements = ",".join("NULL" if v is None or v is pgoutput.UNCHANGED
                        else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "'{" + elements.replace("'", "''") + "}'"


def scan_numerics(conn, changes: TableChanges, columns: list[PgColumn]) -> dict[str, NumericScan]:
    """What the copy's pre-scan finds in unconstrained numeric columns, over the changed rows only."""
    targets = [c for c in columns if needs_numeric_scan(c)]
    if not targets:
        return {}
    if changes.keys:
        rows = [[_known(v.get(c.name)) for c in targets] for v in changes.rows.values() if v is not None]
    else:  # rows removed too: they are typed by the same plans
        rows = list(map(_row_reader(changes.columns, [c.name for c in targets]), changes.rows))
    if not rows:
        return {}
    row = conn.run(f"SELECT {', '.join(numeric_scan_sql(c) for c in targets)} FROM {_values(targets, rows)}")[0]
    return {c.name: NumericScan(int(row[3 * i]), int(row[3 * i + 1]), bool(row[3 * i + 2]))
            for i, c in enumerate(targets)}


def typed_changes(conn, table, relation, changes: TableChanges, resolver) -> tuple[pa.Schema, ChangeBatch]:
    """The Arrow schema and `changes` to `table` typed as the copy types the source's current columns.
    Raises ValueError when the changes cannot be applied (the caller copies the table again)."""
    if changes.lost:
        raise ValueError(changes.lost)
    columns = source.table_columns(conn, relation, resolver)
    scans = scan_numerics(conn, changes, columns)
    plans = [plan_column(column, _numeric_scan(table.schema(), column, scans.get(column.name)), safe=True)
             for column in columns]
    schema = pa.schema([plan.arrow_field for plan in plans])
    return schema, typed_batch(conn, changes, plans, schema)


def _numeric_scan(iceberg_schema, column, changed: NumericScan | None) -> NumericScan | None:
    """An unconstrained numeric keeps the decimal scale (or the text fallback) its copy chose, unless the
    changed values need more: then the plan differs from the table and the table is copied again."""
    if not needs_numeric_scan(column):
        return None
    changed = changed or NumericScan(0, 0, False)
    try:
        stored = iceberg_schema.find_field(column.name).field_type
    except ValueError:  # a new column
        return changed
    scale = getattr(stored, "scale", None)
    if scale is None:  # stored as text (NaN, or too many digits): stays text
        return NumericScan(0, 0, True)
    return NumericScan(max(scale, changed.max_scale), changed.max_integer_digits, changed.has_special)
