"""`bemidb sync postgres`: full refresh of source tables into Iceberg, one consistent snapshot for the run.

Each table is read with COPY inside one REPEATABLE READ READ ONLY transaction (a SAVEPOINT per table, so one
failing table does not abort the others' snapshot), streamed as Arrow batches into the writer, and committed as
one Iceberg snapshot: readers see the previous content until the swap. Tables not in this run are left alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pyarrow as pa
from pg8000.exceptions import DatabaseError, InterfaceError

from bemidb.console import UserError
from bemidb.pg_connect import describe_error
from bemidb.storage import maintenance
from bemidb.storage.catalog import (
    PROP_COLUMN_DEFAULTS,
    PROP_COMMENT,
    PROP_INDEXES,
    PROP_PG_ENUMS,
    PROP_PRIMARY_KEY,
    PROP_SOURCE,
    open_catalog,
)
from bemidb.storage.types import ColumnPlan, plan_column
from bemidb.storage.writer import check_warehouse_writable, write_table
from bemidb.sync import interrupt, parallel, parallel_copy
from bemidb.sync import postgres_source as source
from bemidb.sync.naming import destination, select_tables
from bemidb.sync.postgres_copy import CopyError, UnsafeValues, copy_csv_chunks, decode_chunks
from bemidb.sync.progress import SyncProgress

log = logging.getLogger(__name__)

SOURCE_NAME = "postgres"
KEEP_SNAPSHOTS_AFTER_SYNC = 3  # readers mid-query on a recent snapshot keep their files


class SourceLost(Exception):
    """The source connection broke: the run's snapshot is gone, the remaining tables cannot be read."""


@dataclass
class TableOutcome:
    rows: int
    bytes: int


def run(cfg, args) -> int:
    url = cfg.source_postgres_database_url
    if not url:
        raise UserError("the source is missing: set --database-url or SOURCE_POSTGRES_DATABASE_URL", 2)
    mode = cfg.source_postgres_sync_mode
    if mode == "cdc" or getattr(args, "drop_slot", False):
        from bemidb.sync import cdc  # logical replication: its own driver, reusing _sync for the copies

        return cdc.run(cfg, args)
    incremental_tables = ",".join(filter(None, [cfg.source_postgres_incremental,
                                                cfg.source_postgres_cursor_columns]))
    if mode == "incremental" and not incremental_tables:
        raise UserError("SOURCE_POSTGRES_SYNC_MODE=INCREMENTAL needs cursor columns: set --incremental or "
                        "SOURCE_POSTGRES_CURSOR_COLUMNS", 2)
    cursors = {}
    if incremental_tables:
        # Imported only when asked for: a full refresh needs none of the merge machinery (nor numpy).
        from bemidb.sync import incremental

        cursors = incremental.parse_cursors(incremental_tables, getattr(args, "full_refresh", False),
                                            getattr(args, "detect_deletes", False))
    namespace = cfg.destination_schema or "public"
    catalog = _open_catalog(cfg)
    try:
        check_warehouse_writable(catalog)
    except OSError as exc:
        raise UserError(str(exc)) from None
    conn = source.connect(url)
    pool = None
    try:
        with interrupt.cleanup_on_interrupt(lambda: pool.abandon() if pool else interrupt.abandon_connection(conn)):
            source.begin_snapshot(conn)
            pool = parallel.SourcePool(url, conn, getattr(cfg, "source_postgres_threads", 1) or 1)
            return _sync(cfg, args, catalog, pool, namespace, cursors)
    except (DatabaseError, InterfaceError) as exc:  # while listing tables: the run cannot start
        raise UserError(f"source Postgres: {_one_line(exc)}") from None
    finally:
        if pool is not None:
            pool.close()
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            pass


def _open_catalog(cfg):
    try:
        return open_catalog(cfg)
    except Exception as exc:  # noqa: BLE001 - any driver error: one line, no traceback
        where = "catalog database (CATALOG_DATABASE_URL)" if cfg.catalog_database_url else "catalog"
        raise UserError(f"cannot open the {where}: {_one_line(exc)}") from None


def _sync(cfg, args, catalog, pool, namespace: str, cursors=None, cdc=None) -> int:
    """cdc: called per table to be synced, returns the extra properties of its copy, or None when it is
    kept up to date by CDC and needs no copy this run (sync/cdc.py)."""
    conn = pool.acquire()  # the first connection: the run's snapshot was opened on it
    relations = source.list_relations(conn)
    pages = source.table_pages(conn) if pool.limit > 1 else {}
    by_name = {(r.schema, r.name): r for r in relations}
    tables = [(r.schema, r.name) for r in relations if r.kind in ("r", "p")]
    include = cfg.source_postgres_include_tables or []
    exclude = cfg.source_postgres_exclude_tables or []
    selection = select_tables([(r.schema, r.name) for r in relations], include, exclude)
    parents = source.partition_parents(conn, selection.unknown) if selection.unknown else {}
    unknown = {pattern: (f"a partition of {parents[pattern]}, synced through it (--include {parents[pattern]})"
                         if pattern in parents else "no such table in the source (from --include)")
               for pattern in selection.unknown}
    if include and not selection.selected:
        reasons = [f"{pattern}: {why}" for pattern, why in unknown.items()] + selection.empty_wildcards
        raise UserError(f"--include matches no table in the source ({'; '.join(reasons)})")
    resolver = source.TypeResolver(conn)
    pool.release(conn)
    synced: list[tuple[str, str]] = []
    destinations: dict[tuple[str, str], str] = {}
    keep = bool(cfg.source_postgres_keep_schemas)
    with SyncProgress(f"sync postgres -> {'source schemas' if keep else namespace}") as progress:
        for pattern in selection.empty_wildcards:
            progress.note(f"--include {pattern} matches no table")
        for pattern, why in unknown.items():
            progress.table_done(pattern, 0, 0, error=why)
        for name in sorted(set(cursors or {}) - {f"{s}.{t}" for s, t in selection.selected}):
            progress.note(f"--incremental {name}: not a table synced in this run")
        progress = parallel.LockedProgress(progress)
        jobs: list[parallel.TableJob] = []
        extras: dict[tuple[str, str], dict] = {}  # CDC: properties each copy commits with its rows
        for key in selection.selected:
            relation = by_name[key]
            name = relation.qualified
            target = destination(relation.schema, relation.name, namespace, keep)
            named = name in include  # asked for by exact name, not through a wildcard or by default
            skip = _why_not(relation, target, destinations, None, explicit=named)
            if skip is not None:
                is_error, message = skip
                if is_error:
                    progress.table_done(name, 0, 0, error=message)
                else:
                    progress.note(message)
                continue
            destinations[target] = name
            extra = cdc(relation, progress) if cdc is not None else {}
            if extra is None:
                continue
            extras[key] = extra
            jobs.append(parallel.TableJob(key, pages.get(key, 0), target, splittable=name not in (cursors or {})))

        def work(job: parallel.TableJob, conn) -> bool:
            relation = by_name[job.key]
            name = relation.qualified
            if pool.lost:
                progress.table_done(name, 0, 0, error=f"not synced: {pool.lost}")
                return True
            progress.table_started(name)
            try:
                outcome = _sync_table(conn, catalog, relation, job.target, resolver, progress,
                                      cursor=(cursors or {}).get(name), job=job, pool=pool,
                                      extra=extras.get(job.key))
            except SourceLost as exc:
                if pool.abandoned:  # Ctrl-C: the interrupt's summary says what was left how
                    return False
                pool.lost = f"source connection lost ({exc})"
                progress.table_done(name, 0, 0, error=pool.lost)
                return False
            except Exception as exc:  # noqa: BLE001 - one table's failure never stops the others
                if pool.abandoned:
                    return False
                log.debug("table %s failed", name, exc_info=True)
                progress.table_done(name, 0, 0, error=_one_line(exc))
            else:
                synced.append(job.target)
                progress.table_done(name, outcome.rows, outcome.bytes)
            return True

        parallel.run_tables(pool, jobs, work)
        lost = pool.lost
        if getattr(args, "delete_old_tables", False) and not lost:
            source_targets = {destination(s, t, namespace, keep) for s, t in tables}
            for schema in sorted({schema for schema, _name in source_targets}):
                _delete_old_tables(catalog, schema, {name for s, name in source_targets if s == schema}, progress)
    _vacuum(catalog, synced)
    return 1 if progress.failed else 0


def _why_not(relation, target: tuple[str, str], destinations: dict[tuple[str, str], str], lost: str | None,
             explicit: bool) -> tuple[bool, str] | None:
    """(is_error, message) when this relation is not synced in this run, else None."""
    if relation.kind not in ("r", "p"):
        kind = {"v": "view", "m": "materialized view", "f": "foreign table"}[relation.kind]
        return False, f"skipped {kind} {relation.qualified}: only tables are synced"
    if not relation.can_select:
        # Asked for by name: a failure. Part of "all tables": a note, as BemiDB skips them silently.
        message = "no SELECT privilege for the source user"
        return (True, message) if explicit else (False, f"skipped {relation.qualified}: {message}")
    if target in destinations:
        return True, f"its destination {'.'.join(target)} is already taken by {destinations[target]} in this run"
    if lost:
        return True, f"not synced: {lost}"
    return None


def _sync_table(conn, catalog, relation, identifier, resolver, progress, cursor=None, job=None,
                pool=None, extra=None) -> TableOutcome:
    name = relation.qualified
    _run(conn, "SAVEPOINT bemidb_table")
    try:
        columns = source.table_columns(conn, relation, resolver)
        if not columns:
            raise CopyError("the table has no columns")
        scans = source.scan_numerics(conn, relation, columns)
        for safe in (False, True):
            plans = [plan_column(column, scans.get(column.name), safe=safe, copy=True) for column in columns]
            if not safe:
                for plan in plans:
                    if plan.note:
                        progress.note(f"{name}: {plan.note}")
            try:
                result = _copy_into(conn, catalog, relation, identifier, plans, progress, cursor, job, pool, extra)
                break
            except UnsafeValues as exc:
                if safe:
                    raise CopyError(f"column {exc} has values that cannot be decoded") from None
                _run(conn, "ROLLBACK TO SAVEPOINT bemidb_table")  # the cancelled COPY aborted it
                log.info("%s: column %s has BC/infinite/5-digit-year values; re-reading it exactly", name, exc)
        _run(conn, "RELEASE SAVEPOINT bemidb_table")
        return TableOutcome(result.rows, result.bytes)
    except BaseException:
        try:
            _run(conn, "ROLLBACK TO SAVEPOINT bemidb_table")
        except SourceLost:
            pass
        raise


def _copy_into(conn, catalog, relation, identifier, plans: list[ColumnPlan], progress, cursor=None, job=None,
               pool=None, extra=None):
    schema = pa.schema([plan.arrow_field for plan in plans])
    select = f"SELECT {', '.join(plan.select_sql for plan in plans)} FROM {relation.sql_name}"
    properties = {PROP_SOURCE: SOURCE_NAME, **(extra or {})}
    if relation.comment:
        properties[PROP_COMMENT] = relation.comment
    key = source.primary_key(conn, relation)
    if key:  # ORMs and BI tools read it back through pg_constraint / pg_index
        properties[PROP_PRIMARY_KEY] = json.dumps(key)
    # \d, JDBC, SQLAlchemy show them as the source does; "{}" too, so a dropped default goes on the next sync
    properties[PROP_COLUMN_DEFAULTS] = json.dumps(source.column_defaults(conn, relation))
    properties[PROP_INDEXES] = json.dumps(source.indexes(conn, relation))  # metadata only: nothing is indexed here
    properties[PROP_PG_ENUMS] = json.dumps(source.enum_types(conn, relation))  # their labels' order and OIDs
    write = write_table
    if cursor is not None:  # hook: incremental sync (sync/incremental.py) narrows the SELECT and merges
        from bemidb.sync import incremental

        step = incremental.prepare(conn, catalog, relation, identifier, plans, schema, cursor, progress)
        select, write = select + step.where, step.write
        properties.update(step.properties)

    def advance(rows, size):
        progress.advance(relation.qualified, rows, size)

    if cursor is None and job is not None and job.extras:  # a big table: ctid ranges over several connections
        try:
            return parallel_copy.copy_ranges(conn, pool, job, select, plans, schema, write, catalog, identifier,
                                             properties, advance)
        except CopyError as exc:
            if exc.connection_lost:
                raise SourceLost(str(exc)) from None
            raise
    batches = decode_chunks(copy_csv_chunks(conn, select), plans, schema)
    try:
        return write(catalog, identifier, schema, batches, mode="overwrite", properties=properties,
                     on_progress=advance)
    except CopyError as exc:
        if exc.connection_lost:
            raise SourceLost(str(exc)) from None
        raise
    finally:
        batches.close()  # a failed write cancels the COPY and returns the connection to idle


def _run(conn, sql: str):
    try:
        return conn.run(sql)
    except InterfaceError as exc:
        raise SourceLost(_one_line(exc)) from None
    except DatabaseError as exc:
        raise CopyError(describe_error(exc)) from None


def _delete_old_tables(catalog, namespace: str, source_targets: set[str], progress) -> None:
    """Drop destination tables this syncer made whose source table no longer exists."""
    try:
        identifiers = catalog.list_tables(namespace)
    except Exception:  # noqa: BLE001 - no namespace yet: nothing to delete
        return
    for identifier in identifiers:
        name = identifier[-1]
        if name in source_targets:
            continue
        try:
            table = catalog.load_table(identifier)
            if table.properties.get(PROP_SOURCE) != SOURCE_NAME:
                continue  # a matview or another source's table in the same schema: not ours to drop
            catalog.purge_table(identifier)
            progress.note(f"deleted {namespace}.{name}: its source table no longer exists")
        except Exception as exc:  # noqa: BLE001
            progress.note(f"could not delete {namespace}.{name}: {_one_line(exc)}")


def _vacuum(catalog, identifiers) -> None:
    for identifier in identifiers:
        try:
            maintenance.vacuum_table(catalog.load_table(identifier), keep_snapshots=KEEP_SNAPSHOTS_AFTER_SYNC)
        except Exception as exc:  # noqa: BLE001 - housekeeping never fails a sync
            log.warning("vacuum of %s skipped: %s", ".".join(identifier), _one_line(exc))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError):
        return describe_error(exc)
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    return message[:500]
