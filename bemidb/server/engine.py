"""The query engine: one shared in-memory DuckDB database, a cursor per session, a view per Iceberg table.

Each Iceberg table is exposed as the view "schema"."table" over the Parquet files of its current snapshot.
Live refresh: before a query (at most about once per second) the catalog's metadata locations are read with
one small SQL query; tables whose location changed get their view replaced. A query already running keeps
the files it bound to (DuckDB binds the view when the query starts).

Sandbox: DuckDB may only read the warehouse (allowed_directories + enable_external_access=false, which
DuckDB refuses to turn back on while running); statements that write or change settings are refused by the
session before they reach DuckDB (see `check_statement`).
"""

from __future__ import annotations

import atexit
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable

import duckdb
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from bemidb.config import Config
from bemidb.console import human_bytes
from bemidb.quoting import quote_ident, quote_literal
from bemidb.server import source_types
from bemidb.server.admission import QueryGate
from bemidb.server.catalog import pg_catalog
from bemidb.server.errors import INSUFFICIENT_PRIVILEGE, READ_ONLY, PgError
from bemidb.storage.catalog import TableInfo, open_catalog, table_info

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0  # seconds between two looks at the catalog

# Statement types a client may run on DuckDB. Everything else (writes, ATTACH, COPY, PRAGMA, SET, CALL,
# EXPORT, LOAD/INSTALL, PREPARE ...) is refused with the SQLSTATE below.
ALLOWED_STATEMENTS = {"SELECT", "RELATION"}
_EXPLAIN_PREFIX = re.compile(r"^\s*explain\b(?:\s*\([^)]*\)|\s+analy[sz]e\b|\s+verbose\b)*", re.I)
_READ_ONLY_STATEMENTS = {"INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "COPY", "MERGE_INTO",
                         "CREATE_FUNC", "VACUUM", "ANALYZE", "COPY_DATABASE", "EXPORT", "TRANSACTION"}


def duckdb_type(iceberg_type) -> str:
    """The DuckDB type of an Iceberg type (for typed empty views and casts)."""
    simple = {BooleanType: "BOOLEAN", IntegerType: "INTEGER", LongType: "BIGINT", FloatType: "FLOAT",
              DoubleType: "DOUBLE", DateType: "DATE", TimeType: "TIME", TimestampType: "TIMESTAMP",
              TimestamptzType: "TIMESTAMPTZ", StringType: "VARCHAR", UUIDType: "UUID", BinaryType: "BLOB",
              FixedType: "BLOB"}
    for cls, name in simple.items():
        if isinstance(iceberg_type, cls):
            return name
    if isinstance(iceberg_type, DecimalType):
        return f"DECIMAL({iceberg_type.precision},{iceberg_type.scale})"
    if isinstance(iceberg_type, ListType):
        return duckdb_type(iceberg_type.element_type) + "[]"
    if isinstance(iceberg_type, MapType):
        return f"MAP({duckdb_type(iceberg_type.key_type)}, {duckdb_type(iceberg_type.value_type)})"
    if isinstance(iceberg_type, StructType):
        fields = ", ".join(f"{quote_ident(f.name)} {duckdb_type(f.field_type)}" for f in iceberg_type.fields)
        return f"STRUCT({fields})"
    return "VARCHAR"


def _column_expr(name: str, iceberg_type, pg_type: str, enums: dict | None = None) -> str:
    """A view column: the Parquet column, cast where the source type says more than Parquet can
    (json/jsonb stored as text -> JSON, uuid stored as text -> UUID), so clients get the right type OID."""
    ident = quote_ident(name)
    base = pg_type.split("(")[0].strip().lower()
    if isinstance(iceberg_type, StringType) and base in ("json", "jsonb"):
        return f"CAST({ident} AS JSON) AS {ident}"
    if isinstance(iceberg_type, StringType) and base == "uuid":
        return f"TRY_CAST({ident} AS UUID) AS {ident}"
    if isinstance(iceberg_type, StringType) and base == "interval" and not pg_type.endswith("]"):
        # stored as Postgres's text ('1 year 2 mons', '-1 days +02:00:00'): read as an INTERVAL so it compares,
        # sums and adds as one; a text DuckDB cannot read fails the query instead of turning NULL
        value = f"TRY_CAST(replace({ident}, ' +', ' ') AS INTERVAL)"
        message = quote_literal(f"bemidb cannot read interval column {name}")
        return f"CASE WHEN {ident} IS NOT NULL AND {value} IS NULL THEN error({message}) ELSE {value} END AS {ident}"
    typed = source_types.view_cast(ident, name, iceberg_type, pg_type, enums or {})  # timetz, enums
    return f"{typed} AS {ident}" if typed else ident


def _empty_column(field, pg_type: str, enums: dict) -> str:
    """A column of a table without files, typed as it reads with files (an enum as its ENUM, timetz...)."""
    null = f"CAST(NULL AS {duckdb_type(field.field_type)})"
    return source_types.view_cast(null, field.name, field.field_type, pg_type, enums) or null


def _duckdb_path(path: str) -> str:
    """Iceberg file URIs -> what DuckDB opens: local paths plain, s3:// through the registered filesystem."""
    if path.startswith("file://"):
        return path[len("file://"):]
    if path.startswith("file:/"):  # Iceberg Java's spelling of a local file
        return path[len("file:"):]
    if path.startswith(("s3a://", "s3n://")):
        return "s3://" + path.split("://", 1)[1]
    return path


def view_sql(schema: str, name: str, table, by_field_id: bool = True,
             same_by_name: Callable[[str, str], bool] | None = None) -> str:
    """CREATE OR REPLACE VIEW over the current snapshot's data files (typed and empty when there are none).

    Columns are found by Iceberg field id; but a table that never changed its schema has every file in that
    one schema, so when `same_by_name(file, options)` says a file reads the same by name, it is read by name:
    DuckDB then plans a query ~0.5-0.8 ms faster (a primary-key lookup is ~3 ms in all).

    Position deletes other engines write (Trino's DELETE, Spark merge-on-read) are applied: a data file with
    delete files reads without the rows they name; pyiceberg's scan planning decides which delete files apply
    to which data file (sequence numbers, partitions). Equality deletes (Flink upserts) pyiceberg cannot plan
    yet: such a table answers every query with an error saying so, never with rows that were deleted."""
    iceberg_schema = table.schema()
    info = table_info(table, schema, name)
    pg_types = [c.pg_type for c in info.columns]
    target = f"{quote_ident(schema)}.{quote_ident(name)}"
    try:
        tasks = list(table.scan().plan_files()) if table.current_snapshot() is not None else []
    except ValueError as exc:
        if "equality deletes" not in str(exc):
            raise
        message = quote_literal(f"table {schema}.{name} has equality delete files (written by another engine, "
                                f"e.g. Flink); bemidb cannot apply them yet")
        columns = ", ".join(f"CAST(error({message}) AS {duckdb_type(f.field_type)}) AS {quote_ident(f.name)}"
                            for f in iceberg_schema.fields)
        log.warning("table %s.%s has equality delete files: queries on it fail until they are compacted",
                    schema, name)
        return f"CREATE OR REPLACE VIEW {target} AS SELECT {columns or '1 AS dummy'}"
    if not tasks:
        columns = ", ".join(f"{_empty_column(f, pg_types[i] if i < len(pg_types) else '', info.enums)} "
                            f"AS {quote_ident(f.name)}" for i, f in enumerate(iceberg_schema.fields))
        return f"CREATE OR REPLACE VIEW {target} AS SELECT {columns or '1 AS dummy'} WHERE false"
    columns = ", ".join(_column_expr(f.name, f.field_type, pg_types[i] if i < len(pg_types) else "", info.enums)
                        for i, f in enumerate(iceberg_schema.fields))
    if by_field_id:
        # Columns found by Iceberg field id, as Iceberg readers must: a renamed column still reads its old
        # files, and a column added later reads as NULL in files written before it.
        mapping = ", ".join(f"{f.field_id}: {{name: {quote_literal(f.name)}, "
                            f"type: {quote_literal(duckdb_type(f.field_type))}, default_value: NULL}}"
                            for f in iceberg_schema.fields)
        options = f"schema = MAP {{{mapping}}}"
        whole_files = [task.file.file_path for task in tasks if not task.delete_files]
        if (same_by_name is not None and len(table.metadata.schemas) == 1 and whole_files
                and same_by_name(_duckdb_path(whole_files[0]), options)):
            options = ""
    else:  # files without field ids (written by another tool): by name, missing columns as NULL
        options = "union_by_name = true"

    def source(paths: list[str], extra: str = "") -> str:
        files = ", ".join(quote_literal(_duckdb_path(path)) for path in paths)
        return f"read_parquet({', '.join(a for a in (f'[{files}]', options, extra) if a)})"

    whole = [task.file.file_path for task in tasks if not task.delete_files]
    parts = [f"SELECT {columns} FROM {source(whole)}"] if whole else []
    for task in tasks:
        if task.delete_files:
            parts.append(f"SELECT {columns} FROM {source([task.file.file_path], 'file_row_number = true')} "
                         f"AS t WHERE {_not_deleted(task)}")
    return f"CREATE OR REPLACE VIEW {target} AS " + " UNION ALL ".join(parts)


def _not_deleted(task) -> str:
    """The condition on a data file's rows (alias t) that its position delete files do not remove."""
    files = ", ".join(quote_literal(_duckdb_path(d.file_path)) for d in task.delete_files)
    return (f"NOT EXISTS (SELECT 1 FROM read_parquet([{files}]) AS d "
            f"WHERE d.file_path = {quote_literal(task.file.file_path)} AND d.pos = t.file_row_number)")


def _s3_filesystem(cfg: Config, cache_bytes: int):
    """pyarrow's S3 filesystem behind our thread-safe read-only wrapper (see bemidb.storage.object_store),
    registered in DuckDB under the s3:// protocol."""
    from pyarrow.fs import S3FileSystem

    from bemidb.storage.object_store import ObjectStoreFS

    endpoint = cfg.s3_endpoint_url
    kwargs = {"access_key": cfg.aws_access_key_id, "secret_key": cfg.aws_secret_access_key,
              "region": cfg.aws_region}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host, scheme=scheme, force_virtual_addressing=False)
    return ObjectStoreFS(S3FileSystem(**kwargs), cache_bytes=cache_bytes)


S3_CACHE_SHARE = 0.25  # of BEMIDB_MEMORY_LIMIT, for the bytes read from S3 (the rest is DuckDB's)
QUERY_MEMORY = 64 * 2**20  # what one running query is planned with: DuckDB's share / this = query slots


class Engine:
    def __init__(self, cfg: Config, user: str = ""):
        self.cfg = cfg
        self.catalog = open_catalog(cfg)
        # No replacement scans: a client's `FROM name` must never resolve to a Python object of the server.
        self.db = duckdb.connect(":memory:", config={"python_enable_replacements": False})
        self._setup_sandbox()
        self.gate = QueryGate(max(1, self.query_memory // QUERY_MEMORY))
        self._internal = self.db.cursor()  # DDL for views; never handed to a client
        self._ddl_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._checked_at = 0.0
        self._locations: dict[tuple[str, str], str] = {}
        self._infos: dict[tuple[str, str], TableInfo] = {}
        self._schemas: set[str] = set()
        self.generation = 0  # bumped when schemas appear or tables go: sessions re-resolve search_path
        self.tables_version = 0  # bumped after any table's view or info changed (what results are described by)
        self.pg_catalog = pg_catalog
        try:
            pg_catalog.install(self._internal, cfg.database, user or "bemidb")
        except Exception as exc:  # noqa: BLE001 - serve tables even when the catalog emulation breaks
            log.warning("pg_catalog emulation unavailable: %s", exc)
            self.pg_catalog = None
        self.refresh(force=True)

    def _setup_sandbox(self) -> None:
        allowed = []
        # BEMIDB_MEMORY_LIMIT is shared: on S3 a quarter keeps the bytes read (local disk has the OS page
        # cache), the rest caps DuckDB's buffers (joins, aggregates, sorts), which spill to `spill` beyond it.
        budget = self.cfg.memory_limit_bytes
        cache_bytes = int(budget * S3_CACHE_SHARE) if self.cfg.uses_s3 else 0
        self.query_memory = max(16 * 2**20, budget - cache_bytes)
        if self.cfg.uses_s3:
            self.db.register_filesystem(_s3_filesystem(self.cfg, cache_bytes))
            allowed.append(f"s3://{self.cfg.aws_s3_bucket}/iceberg/")
        else:
            allowed.append(str(self.cfg.local_warehouse_path) + "/")
        # DuckDB always lets queries read its temp_directory (default ./.tmp under the server's working
        # directory, where any file may lie): spill to a private, empty directory of our own instead.
        spill = tempfile.mkdtemp(prefix="bemidb-spill-")
        atexit.register(shutil.rmtree, spill, True)
        self.db.execute(f"SET temp_directory = {quote_literal(spill)}")
        self.db.execute(f"SET memory_limit = '{self.query_memory // 1024}KiB'")
        log.info("query memory limit %s, S3 read cache %s (BEMIDB_MEMORY_LIMIT), spilling to %s",
                 self.db.execute("SELECT current_setting('memory_limit')").fetchone()[0],
                 human_bytes(cache_bytes), spill)
        self.db.execute("SET GLOBAL integer_division = true")  # Postgres: 5 / 2 = 2 between integers
        self.db.execute("SET GLOBAL arrow_lossless_conversion = true")  # TIMETZ keeps its offset
        self.db.execute("SET allowed_directories = " + "[" + ", ".join(quote_literal(p) for p in allowed) + "]")
        self.db.execute("SET enable_external_access = false")  # cannot be turned back on while running
        # Iceberg data files never change once written: their Parquet footers can be cached across queries.
        # GLOBAL: an extension's option set plainly holds for this connection only, not the sessions' cursors
        # (each client query then read and parsed the footers again: ~0.25 ms of a ~3 ms primary-key lookup).
        self.db.execute("SET GLOBAL parquet_metadata_cache = true")
        # Parquet prefetching stays on, on local disk too: off, a PK lookup took ~0.2 ms less but the 22 TPC-H
        # queries 20% longer (each page read on its own instead of a row group's column chunks at once).
        self.db.execute("SET autoinstall_known_extensions = false")
        self.db.execute("SET autoload_known_extensions = false")

    # -- sessions ------------------------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.db.cursor()

    def tables(self) -> list[TableInfo]:
        return list(self._infos.values())

    def table(self, schema: str, name: str) -> TableInfo | None:
        return self._infos.get((schema, name))

    # -- live refresh --------------------------------------------------------------------------------------

    def maybe_refresh(self) -> None:
        """Look at the catalog if the last look is older than REFRESH_INTERVAL; never raises to the caller
        (a catalog outage keeps the current views and is logged)."""
        if time.monotonic() - self._checked_at < REFRESH_INTERVAL:
            return
        try:
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - the catalog being down must not fail the query
            log.warning("could not refresh tables from the catalog: %s", exc)

    def _current_locations(self) -> dict[tuple[str, str], str]:
        return self.catalog.table_locations()

    def refresh(self, force: bool = False) -> None:
        with self._refresh_lock:
            if not force and time.monotonic() - self._checked_at < REFRESH_INTERVAL:
                return  # another session refreshed while we waited
            locations = self._current_locations()
            self._checked_at = time.monotonic()
            if locations == self._locations:
                return
            changed = [key for key, loc in locations.items() if self._locations.get(key) != loc]
            removed = [key for key in self._locations if key not in locations]
            for schema, name in changed:
                self._load_view(schema, name)
            for schema, name in removed:
                self._run_ddl(f"DROP VIEW IF EXISTS {quote_ident(schema)}.{quote_ident(name)}")
                self._infos.pop((schema, name), None)
                self._locations.pop((schema, name), None)
            if removed:
                self.generation += 1
            self.tables_version += 1  # after the infos changed: a reader of the old number looks again later
            log.info("tables refreshed: %d changed, %d removed, %d total", len(changed), len(removed),
                     len(self._infos))
            if self.pg_catalog is not None:
                try:
                    self.pg_catalog.refresh(self._internal, self.tables())
                except Exception as exc:  # noqa: BLE001
                    log.warning("pg_catalog refresh failed: %s", exc)

    def _load_view(self, schema: str, name: str) -> None:
        try:
            table = self.catalog.load_table((schema, name))
            if schema not in self._schemas:
                self._run_ddl(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                self._schemas.add(schema)
                self.generation += 1
            try:
                self._run_ddl(view_sql(schema, name, table, same_by_name=self._same_by_name))
            except duckdb.Error as exc:  # DuckDB binds the view now: files without field ids end up here
                log.debug("table %s.%s: reading columns by name (%s)", schema, name, exc)
                self._run_ddl(view_sql(schema, name, table, by_field_id=False))
        except Exception as exc:  # noqa: BLE001 - one broken table must not hide the others
            log.warning("table %s.%s is not available: %s", schema, name, exc)
            return
        self._infos[(schema, name)] = table_info(table, schema, name)
        self._locations[(schema, name)] = table.metadata_location

    def _same_by_name(self, path: str, options: str) -> bool:
        """Whether a data file has the same columns, in order and type, read by name as by field id."""
        describe = "DESCRIBE SELECT * FROM read_parquet({}{})"
        try:
            with self._ddl_lock:
                by_id = self._internal.execute(describe.format(quote_literal(path), ", " + options)).fetchall()
                by_name = self._internal.execute(describe.format(quote_literal(path), "")).fetchall()
        except duckdb.Error:
            return False
        return [row[:2] for row in by_id] == [row[:2] for row in by_name]

    def _run_ddl(self, sql: str) -> None:
        with self._ddl_lock:
            self._internal.execute(sql)


_APPROVED: dict[str, None] = {}  # texts already checked (clients repeat them); bounded, oldest dropped first
_APPROVED_MAX = 4096


def check_statement(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but reads before DuckDB runs it: 25006 for writes, 42501 for the rest."""
    if sql in _APPROVED:
        return
    _check_statement(cursor, sql)
    if len(_APPROVED) >= _APPROVED_MAX:
        try:
            _APPROVED.pop(next(iter(_APPROVED)), None)
        except (RuntimeError, StopIteration):  # another session trimmed it at the same moment
            pass
    _APPROVED[sql] = None


def _check_statement(cursor: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = cursor.extract_statements(sql)
    except duckdb.Error:
        return  # DuckDB will report the syntax error itself, with a position
    for statement in statements:
        kind = statement.type.name
        if kind == "EXPLAIN":
            # EXPLAIN ANALYZE runs the statement it explains: that one must be a read as well.
            inner = _EXPLAIN_PREFIX.sub("", statement.query.strip(), count=1)
            if inner == statement.query.strip() or not inner.strip():
                raise PgError(INSUFFICIENT_PRIVILEGE, "permission denied: this EXPLAIN form is not allowed")
            _check_statement(cursor, inner)
            continue
        if kind in ALLOWED_STATEMENTS:
            continue
        if kind in _READ_ONLY_STATEMENTS:
            raise PgError(READ_ONLY, f"cannot execute {kind.replace('_', ' ')} in a read-only transaction")
        raise PgError(INSUFFICIENT_PRIVILEGE, f"permission denied: {kind} statements are not allowed")


def interruptible(cursor: duckdb.DuckDBPyConnection, timeout: float | None,
                  on_timeout: Callable[[], None]) -> threading.Timer | None:
    """A timer that interrupts `cursor` after `timeout` seconds (statement_timeout); caller cancels it."""
    if not timeout or timeout <= 0:
        return None
    def fire() -> None:
        on_timeout()
        cursor.interrupt()
    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    timer.start()
    return timer
