"""Incremental Postgres sync by cursor column (`--incremental schema.table:column,...`).

The first run copies the whole table. Each run stores max(cursor) in the Iceberg table's properties, in the
same commit as the data, so a run that dies commits neither and the next run starts from the same value.
Later runs read `WHERE cursor >= last` (>=: a row committed after the previous run with the same cursor value
is not lost) inside the run's snapshot, and merge: see bemidb/storage/merge.py for the tie rule and how a
primary key makes an updated row replace its old version. Rows whose cursor is NULL are copied by full
refreshes only; deleted rows are not seen by cursor syncs (`--full-refresh` rewrites the table).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import pyarrow as pa
from pyiceberg.exceptions import NoSuchTableError

from bemidb.console import UserError
from bemidb.quoting import quote_ident, quote_literal
from bemidb.storage import evolution
from bemidb.storage.merge import MergeRule, merge_table
from bemidb.storage.types import ColumnPlan
from bemidb.storage.writer import iceberg_schema, write_table
from bemidb.sync.detect_deletes import missing_keys
from bemidb.sync.postgres_copy import copy_csv_chunks, decode_chunks
from bemidb.sync.postgres_source import primary_key

PROP_CURSOR_COLUMN = "bemidb.cursor-column"
PROP_CURSOR_VALUE = "bemidb.cursor-value"  # max(cursor)::text in the run's snapshot; "" when the table was empty
PROP_KEY_COLUMNS = "bemidb.key-columns"  # JSON list: the primary key the merge used ([] = none) at that sync

# Types whose order Postgres and Arrow agree on (the tie rule compares cursor values on both sides).
CURSOR_TYPES = {"int2", "int4", "int8", "numeric", "date", "timestamp", "timestamptz"}


class CursorError(Exception):
    """This table cannot be synced incrementally as asked (one line, the table fails)."""


@dataclass(frozen=True)
class Cursor:
    column: str
    full_refresh: bool = False  # --full-refresh: copy everything this run, still record the cursor
    detect_deletes: bool = False  # --detect-deletes: rows whose key left the source are removed too


@dataclass
class Step:
    """How _copy_into runs this table: a WHERE appended to its SELECT, properties, and the write function."""
    where: str
    write: object
    properties: dict[str, str] = field(default_factory=dict)


def parse_cursors(text: str | None, full_refresh: bool = False, detect_deletes: bool = False) -> dict[str, Cursor]:
    """'schema.table:column,...' -> {'schema.table': Cursor}; a bare table means public.table."""
    cursors: dict[str, Cursor] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        table, sep, column = item.rpartition(":")
        table, column = table.strip(), column.strip()
        if not sep or not table or not column:
            raise UserError(f"--incremental: {item!r} is not schema.table:cursor_column", 2)
        if "." not in table:
            table = f"public.{table}"
        if table in cursors and cursors[table].column != column:
            raise UserError(f"--incremental: {table} is given two cursor columns", 2)
        cursors[table] = Cursor(column, full_refresh, detect_deletes)
    return cursors


def prepare(conn, catalog, relation, identifier, plans: list[ColumnPlan], schema: pa.Schema, cursor: Cursor,
            progress) -> Step:
    """Decide full copy or merge for this table, in the run's snapshot."""
    plan = next((p for p in plans if p.column.name == cursor.column), None)
    if plan is None:
        raise CursorError(f"cursor column {cursor.column} is not a column of the table")
    if plan.column.is_array or plan.column.base not in CURSOR_TYPES:
        raise CursorError(f"cursor column {cursor.column} has type {plan.column.pg_type}; use an integer, "
                          f"numeric, date or timestamp column")
    keys = primary_key(conn, relation)  # [] when none: then the re-read rows at `last` are replaced
    column_sql = quote_ident(cursor.column)
    cast = f"CAST({{}} AS {plan.column.pg_type})"
    properties = {PROP_CURSOR_COLUMN: cursor.column, PROP_KEY_COLUMNS: json.dumps(keys)}

    table = _load(catalog, identifier)
    last, why_full = _stored_cursor(table, cursor, keys, schema)
    if why_full is not None:
        if why_full:
            progress.note(f"{relation.qualified}: full refresh: {why_full}")
        new_max = conn.run(f"SELECT max({column_sql})::text FROM {relation.sql_name}")[0][0]
        properties[PROP_CURSOR_VALUE] = new_max if new_max is not None else ""
        return Step("", write_table, properties)

    where = f" WHERE {column_sql} >= {cast.format(quote_literal(last))}"
    new_max = conn.run(f"SELECT max({column_sql})::text FROM {relation.sql_name}{where}")[0][0]
    properties[PROP_CURSOR_VALUE] = new_max if new_max is not None else last
    change = evolution.compare(table.schema(), iceberg_schema(schema))
    if change.changed and change.describe():
        progress.note(f"{relation.qualified}: schema evolved: {change.describe()}")
    rule = MergeRule(keys, cursor.column, typed_value(conn, plan, last))
    deleted = None
    if cursor.detect_deletes:
        if keys:
            deleted = missing_keys(conn, relation, plans, schema, keys, table)
        else:
            progress.note(f"{relation.qualified}: --detect-deletes needs a primary key; deletes not seen")
    return Step(where, functools.partial(merge_table, rule=rule, deleted=deleted), properties)


def _load(catalog, identifier):
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def _stored_cursor(table, cursor: Cursor, keys: list[str], schema: pa.Schema) -> tuple[str | None, str | None]:
    """(last cursor value, None) to merge, or (None, why a full copy is needed; "" = say nothing)."""
    if cursor.full_refresh:
        return None, ""
    if table is None:
        return None, ""  # first run
    props = table.properties
    if props.get(PROP_CURSOR_COLUMN) != cursor.column:
        return None, "no cursor stored for this column yet"
    last = props.get(PROP_CURSOR_VALUE)
    if not last:
        return None, ""  # the source table was empty last time: copying it all is the same
    if json.loads(props.get(PROP_KEY_COLUMNS, "[]")) != keys:
        return None, "the source's primary key changed"
    if _has_row_deletes(table):  # a merge reads the old files as they are: deleted rows would come back
        return None, "the table has row-level deletes written by another engine"
    change = evolution.compare(table.schema(), iceberg_schema(schema))
    if change.incompatible:
        return None, f"{change.incompatible} (not an in-place promotion)"
    return last, None


def _has_row_deletes(table) -> bool:
    """Delete files (another engine's DELETE or merge-on-read) apply to the table's live rows. Planned like
    a scan: after a full refresh, old position deletes name files no longer live and no longer count."""
    if table.current_snapshot() is None:
        return False
    try:
        return any(task.delete_files for task in table.scan().plan_files())
    except ValueError:  # equality deletes, which pyiceberg cannot plan: a full refresh each run stays correct
        return True


def typed_value(conn, plan: ColumnPlan, text: str) -> pa.Scalar:
    """The cursor value as the column's Arrow type, decoded the same way as the COPY decodes the column."""
    name = quote_ident(plan.column.name)
    select = (f"SELECT {plan.select_sql} FROM (SELECT CAST({quote_literal(text)} AS {plan.column.pg_type}) "
              f"AS {name}) AS s")
    schema = pa.schema([plan.arrow_field])
    batches = [b for b in decode_chunks(copy_csv_chunks(conn, select), [plan], schema) if b.num_rows]
    return batches[0].column(0)[0]

