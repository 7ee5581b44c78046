"""CREATE / REFRESH / DROP MATERIALIZED VIEW: the only writes a client may do.

A materialized view is an ordinary Iceberg table (source "matview") whose defining query, as the client wrote
it in Postgres SQL, is kept as a table property. CREATE and REFRESH run the query on the session's DuckDB
cursor and stream the Arrow batches into `write_table(..., mode="overwrite")`: one Iceberg commit, so readers
see the old or the new content, never half. The engine is refreshed right after, so the same session sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyiceberg.exceptions import NoSuchTableError

from bemidb.server.catalog import pg_types
from bemidb.server.errors import PgError
from bemidb.server.sql import rewrite
from bemidb.server.sql.plans import Matview
from bemidb.storage.catalog import PROP_MATVIEW_DEFINITION, PROP_SOURCE
from bemidb.storage.writer import PG_TYPE_KEY, write_table

log = logging.getLogger(__name__)

BATCH_ROWS = 64 * 1024


def _target_schema(plan, settings, catalog) -> str:
    """Like Postgres: the schema written, else the first schema of search_path that exists."""
    if plan.schema:
        return plan.schema
    existing = {namespace[0] for namespace in catalog.list_namespaces()}
    for schema in settings.search_path_schemas() if settings is not None else []:
        if schema in existing and schema not in ("pg_catalog", "information_schema"):
            return schema
    return "public"


def _storable(field: pa.Field) -> tuple[pa.Field, Callable[[pa.Array], pa.Array] | None]:
    """A result column as the writer takes it: extension types (json, uuid ...) by their storage, and the
    Postgres type each column had in the query recorded for the catalog (numeric(10,2), jsonb, text[] ...)."""
    pg_type, mod = pg_types.column_type(field.type)
    from bemidb.server.catalog.functions import format_type

    metadata = {PG_TYPE_KEY: format_type(pg_type, mod).encode()}
    if isinstance(field.type, pa.ExtensionType):
        storage = field.type.storage_type
        if pg_type.name == "uuid":  # 16 raw bytes are not text: keep the Postgres name only if we can
            metadata = {PG_TYPE_KEY: b"bytea"}
        return pa.field(field.name, storage, nullable=True, metadata=metadata), lambda a: a.storage
    return pa.field(field.name, field.type, nullable=True, metadata=metadata), None


def _result(cursor, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    reader = cursor.sql(sql).to_arrow_reader(BATCH_ROWS)
    converted = [_storable(f) for f in reader.schema]
    schema = pa.schema([f for f, _ in converted])

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            columns = [fix(col) if fix else col for col, (_, fix) in zip(batch.columns, converted, strict=True)]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return schema, batches()


def _load(catalog, identifier):
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError:
        return None


def _quoted(schema: str, name: str) -> str:
    return f'"{schema}"."{name}"' if schema != "public" else f'"{name}"'


def execute(plan: Matview, engine, cursor, settings=None, notice: Callable[[str, str], None] | None = None) -> str:
    """Run a Matview plan; returns the CommandComplete tag. Raises PgError with Postgres's codes."""
    catalog = engine.catalog
    engine.refresh(force=True)  # the defining query reads the latest snapshot of every table
    schema = _target_schema(plan, settings, catalog)
    identifier = (schema, plan.name)
    existing = _load(catalog, identifier)
    is_matview = existing is not None and existing.properties.get(PROP_SOURCE) == "matview"
    action = plan.action

    if action == "create":
        if existing is not None:
            if "if_not_exists" in plan.flags:
                if notice:
                    notice(f'relation "{plan.name}" already exists, skipping', "42P07")
                return "CREATE MATERIALIZED VIEW"
            raise PgError("42P07", f'relation "{plan.name}" already exists')
        return _write(plan.sql, plan.definition, engine, cursor, identifier, "no_data" in plan.flags, "SELECT")

    if existing is None:
        if action in ("drop", "rename") and "if_exists" in plan.flags:
            if notice:
                notice(f'materialized view "{plan.name}" does not exist, skipping', "00000")
            return "DROP MATERIALIZED VIEW" if action == "drop" else "ALTER MATERIALIZED VIEW"
        raise PgError("42P01", f'relation "{_quoted(schema, plan.name)}" does not exist')
    if not is_matview:
        raise PgError("42809", f'"{plan.name}" is not a materialized view')

    if action == "refresh":
        definition = existing.properties.get(PROP_MATVIEW_DEFINITION, "")
        query = rewrite.translate(definition)
        _write(query.sql, definition, engine, cursor, identifier, "no_data" in plan.flags, "SELECT")
        return "REFRESH MATERIALIZED VIEW"

    if action == "rename":
        target = (schema, plan.new_name)
        if _load(catalog, target) is not None:
            raise PgError("42P07", f'relation "{plan.new_name}" already exists')
        catalog.rename_table(identifier, target)
        engine.refresh(force=True)
        return "ALTER MATERIALIZED VIEW"

    if action == "drop":
        catalog.drop_table(identifier)
        _purge(existing)
        engine.refresh(force=True)
        return "DROP MATERIALIZED VIEW"
    raise PgError("0A000", f"unsupported materialized view action {action!r}")


def _write(sql: str, definition: str, engine, cursor, identifier, no_data: bool, tag: str) -> str:
    # the server's lossless Arrow (TIMETZ keeps its offset) would hand the writer DuckDB's extension layouts
    # (bool8, 16-byte uuids): a materialized view stores plain Arrow, as before
    cursor.execute("SET arrow_lossless_conversion = false")
    try:
        return _write_plain(sql, definition, engine, cursor, identifier, no_data, tag)
    finally:
        try:
            cursor.execute("RESET arrow_lossless_conversion")
        except Exception:  # noqa: BLE001 - an aborted transaction: the session's own error is the one to see
            log.warning("could not reset arrow_lossless_conversion after a materialized view")


def _write_plain(sql: str, definition: str, engine, cursor, identifier, no_data: bool, tag: str) -> str:
    try:
        schema, batches = _result(cursor, sql)
    except PgError:
        raise
    except Exception as exc:  # noqa: BLE001 - the defining query failed: the client sees why
        from bemidb.server.errors import from_exception

        raise from_exception(exc, sql) from None
    properties = {PROP_SOURCE: "matview", PROP_MATVIEW_DEFINITION: definition}
    result = write_table(engine.catalog, identifier, schema, iter(()) if no_data else batches,
                         mode="overwrite", properties=properties)
    engine.refresh(force=True)
    log.info("materialized view %s.%s written: %d rows", *identifier, result.rows)
    return f"{tag} {result.rows}"


def _purge(table) -> None:
    """Delete a dropped view's files (nothing else references them); failures only leave garbage behind."""
    try:
        io = table.io
        for task in table.scan().plan_files():
            io.delete(task.file.file_path)
        io.delete(table.metadata_location)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not delete the files of dropped materialized view: %s", exc)
