"""The source Postgres: one pg8000 connection, one REPEATABLE READ READ ONLY snapshot, and what is in it."""

from __future__ import annotations

from dataclasses import dataclass

import pg8000.native

from bemidb import pg_connect
from bemidb.quoting import quote_ident
from bemidb.storage.types import NumericScan, PgColumn, needs_numeric_scan, numeric_scan_sql

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

# Session settings that make every value print in the one form the decoder expects, whatever the server's
# or the role's defaults are.
SESSION_SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
    "statement_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    "lock_timeout": "60s",
}


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    kind: str  # r table, p partitioned table, v view, m materialized view, f foreign table
    comment: str | None
    can_select: bool

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


def connect(url: str, timeout: float = 15) -> pg8000.native.Connection:
    conn = pg_connect.connect(url, "source Postgres", timeout)
    # The timeout guards the connect only: a COPY may wait long for its first row on a big query.
    conn._usock.settimeout(None)
    return conn


def begin_snapshot(conn, snapshot: str | None = None) -> None:
    """Open the run's transaction; with `snapshot` (from export_snapshot on the first connection) this
    connection sees exactly what the first one sees, whatever was committed in between."""
    for name, value in SESSION_SETTINGS.items():
        conn.run(f"SET {name} = '{value}'")
    conn.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    if snapshot is not None:
        conn.run(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # the id is Postgres's own: hex digits and dashes


def export_snapshot(conn) -> str:
    """The id other connections import while this connection's transaction stays open."""
    return conn.run("SELECT pg_export_snapshot()")[0][0]


def table_pages(conn) -> dict[tuple[str, str], int]:
    """Each table's size in pages now (what ctid ranges split); partitioned parents report 0."""
    rows = conn.run("""
        SELECT n.nspname, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND has_table_privilege(c.oid, 'SELECT')""")
    return {(schema, name): int(pages) for schema, name, pages in rows}


def list_relations(conn) -> list[Relation]:
    """Tables, partitioned tables (partitions are read through their parent), views, matviews, foreign."""
    rows = conn.run("""
        SELECT n.nspname, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class'),
               has_table_privilege(c.oid, 'SELECT')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
          AND has_schema_privilege(n.oid, 'USAGE')
        ORDER BY 1, 2""")
    return [Relation(*row) for row in rows]


def partition_parents(conn, names: list[str]) -> dict[str, str]:
    """For the names among `names` that are partitions: the partitioned table they are synced through."""
    rows = conn.run("""
        SELECT n.nspname || '.' || c.relname, rn.nspname || '.' || r.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_class r ON r.oid = pg_partition_root(c.oid) JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE c.relispartition AND n.nspname || '.' || c.relname = ANY(CAST(:names AS text[]))""", names=names)
    return dict(rows)


def primary_key(conn, relation: Relation) -> list[str]:
    """The source table's primary-key columns in key order ([] when it has none)."""
    rows = conn.run("""
        SELECT a.attname
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = CAST(:name AS regclass) AND i.indisprimary
        ORDER BY array_position(i.indkey::int2[], a.attnum)""", name=relation.sql_name)
    return [row[0] for row in rows]


def column_defaults(conn, relation: Relation) -> dict[str, dict]:
    """Defaults, identity and generated columns as the source shows them (nextval('orders_id_seq'::regclass),
    now(), GENERATED ... AS IDENTITY): kept as metadata, the served tables being read-only."""
    rows = conn.run("""
        SELECT a.attname, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = CAST(:name AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
          AND (d.adbin IS NOT NULL OR a.attidentity <> '' OR a.attgenerated <> '')
        ORDER BY a.attnum""", name=relation.sql_name)
    out = {}
    for name, default, identity, generated in rows:
        entry = {"default": default, "identity": identity or None, "generated": generated or None}
        out[name] = {k: v for k, v in entry.items() if v}
    return out


def indexes(conn, relation: Relation) -> list[dict]:
    """The source table's indexes other than the primary key's: name, uniqueness, key columns (None for an
    expression) and the definition from USING on, for pg_index / pg_indexes / JDBC getIndexInfo."""
    rows = conn.run("""
        SELECT ic.relname, i.indisunique,
               ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                     LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     WHERE k.n <= i.indnkeyatts ORDER BY k.n),
               substring(pg_get_indexdef(i.indexrelid) from ' USING (.*)$'),
               ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnkeyatts) k),
               string_to_array(i.indoption::text, ' ')::int[], string_to_array(i.indclass::text, ' ')::int8[],
               string_to_array(i.indcollation::text, ' ')::int8[],
               EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype = 'u')
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = CAST(:name AS regclass) AND NOT i.indisprimary
        ORDER BY ic.relname""", name=relation.sql_name)
    # options: per key DESC / NULLS FIRST bits (SQLAlchemy's and DBeaver's column sorting); classes and
    # collations: the built-in operator classes and collations Postgres names there
    return [{"name": name, "unique": unique, "columns": list(columns), "using": using, "keys": list(keys),
             "options": list(options), "classes": list(classes), "collations": list(collations),
             "constraint": constraint}  # a UNIQUE constraint's index (named as the constraint)
            for name, unique, columns, using, keys, options, classes, collations, constraint in rows]


def enum_types(conn, relation: Relation) -> dict[str, dict]:
    """The enum types of the table's columns (arrays' elements too): format_type text -> the source's type and
    array type OIDs and the labels in declaration order, so the server orders and compares them as Postgres
    does and describes them with the OIDs the source's clients know."""
    rows = conn.run("""
        SELECT format_type(t.oid, NULL), t.oid::int8, t.typarray::int8,
               ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
        FROM pg_type t
        WHERE t.typtype = 'e' AND t.oid IN (
            SELECT CASE WHEN el.typcategory = 'A' THEN el.typelem ELSE el.oid END
            FROM pg_attribute a JOIN pg_type el ON el.oid = a.atttypid
            WHERE a.attrelid = CAST(:name AS regclass) AND a.attnum > 0 AND NOT a.attisdropped)""",
                    name=relation.sql_name)
    return {name: {"oid": int(oid), "array_oid": int(array_oid), "labels": list(labels)}
            for name, oid, array_oid, labels in rows}


class TypeResolver:
    """pg_type, read once: domains resolved to their base, arrays to their element."""

    def __init__(self, conn):
        self.types = {row[0]: row[1:] for row in conn.run("""
            SELECT t.oid, t.typname, n.nspname, t.typtype::text, t.typelem, t.typbasetype, t.typtypmod,
                   t.typcategory::text
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace""")}

    def resolve(self, oid: int, typmod: int) -> tuple[str, bool, int]:
        """(base typname or '' for non-built-in, is_array, typmod of the base)."""
        is_array = False
        for _ in range(10):  # domains of arrays of domains...
            name, namespace, typtype, elem, basetype, domain_typmod, category = self.types[oid]
            if typtype == "d":
                oid, typmod = basetype, (domain_typmod if domain_typmod != -1 else typmod)
            elif category == "A" and elem and not is_array:
                oid, is_array = elem, True
            else:
                return (name if namespace == "pg_catalog" else ""), is_array, typmod
        return "", is_array, typmod


def table_columns(conn, relation: Relation, resolver: TypeResolver) -> list[PgColumn]:
    rows = conn.run("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               col_description(a.attrelid, a.attnum), a.atttypid, a.atttypmod
        FROM pg_attribute a
        WHERE a.attrelid = CAST(:name AS regclass) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""", name=relation.sql_name)
    columns = []
    for name, pg_type, not_null, comment, type_oid, typmod in rows:
        base, is_array, base_typmod = resolver.resolve(type_oid, typmod)
        columns.append(PgColumn(name, pg_type, base, is_array, base_typmod, bool(not_null), comment))
    return columns


def scan_numerics(conn, relation: Relation, columns: list[PgColumn]) -> dict[str, NumericScan]:
    """One aggregate query over the unconstrained numeric columns (same snapshot as the COPY)."""
    targets = [c for c in columns if needs_numeric_scan(c)]
    if not targets:
        return {}
    row = conn.run(f"SELECT {', '.join(numeric_scan_sql(c) for c in targets)} FROM {relation.sql_name}")[0]
    return {c.name: NumericScan(int(row[3 * i]), int(row[3 * i + 1]), bool(row[3 * i + 2]))
            for i, c in enumerate(targets)}
