"""`bemidb sync postgres --sync-mode cdc`: tables kept current by logical replication, exactly once.

A run (drain mode, the default) goes:
1. the publication publishes the selected tables and the slot exists (both named after the destination schema);
2. every table not yet kept by this slot (first run, new table, new slot) is copied in full, as a full refresh
   does, in a snapshot taken after the slot was created, with `bemidb.cdc.lsn` = 0/0;
3. the slot's changes up to the source's current position are read (peeked, not consumed), collapsed per table
   and applied to each table in ONE Iceberg commit that also stores the position applied through
   (`bemidb.cdc.lsn`);
4. only after every table committed is the slot advanced to that position.

Exactly once: a run killed before 3's commit changes nothing; one killed between 3 and 4 finds the same
changes again next time and skips, per table, the transactions committed before the table's stored position.
Replaying changes onto a copy that already holds them converges to the same rows (every change carries the
whole row or its key), which is why the copy needs no exported snapshot. A table without a key (REPLICA
IDENTITY FULL, cdc_identity) would not converge: its first drain skips what its copy's snapshot saw.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from pg8000.exceptions import DatabaseError, InterfaceError

from bemidb import console
from bemidb.console import UserError
from bemidb.quoting import quote_literal
from bemidb.storage import maintenance
from bemidb.storage.catalog import PROP_CDC_LSN, PROP_CDC_SLOT, PROP_PRIMARY_KEY, PROP_SOURCE
from bemidb.storage.changes import Staged, apply_changes, compact, stage_changes
from bemidb.storage.writer import WriteResult, check_warehouse_writable
from bemidb.sync import cdc_collect, cdc_identity, cdc_memory, cdc_source, parallel, pgoutput
from bemidb.sync import postgres as full_sync
from bemidb.sync import postgres_source as source
from bemidb.sync.cdc_batch import TableChanges, typed_changes
from bemidb.sync.cdc_control import StopFlag, pause
from bemidb.sync.cdc_phases import Phases
from bemidb.sync.naming import destination, select_tables
from bemidb.sync.postgres_copy import CopyError
from bemidb.sync.progress import SyncProgress

log = logging.getLogger(__name__)

CHANGES_POLL_SECONDS = 0.5  # --follow: how often the source's row counters are read (--commit-changes)
UPKEEP_SECONDS = 60  # --follow: compaction and vacuum at most this often (files and snapshots stay few)
SOURCE_ERRORS = (DatabaseError, InterfaceError, CopyError, OSError)  # the source failed or went away


def slot_name(cfg) -> str:
    return cfg.source_postgres_replication_slot or f"bemidb_{cfg.destination_schema or 'public'}"


def publication_name(cfg) -> str:
    return cfg.source_postgres_publication or f"bemidb_{cfg.destination_schema or 'public'}"


def run(cfg, args) -> int:
    namespace = _Destination(cfg.destination_schema or "public", bool(cfg.source_postgres_keep_schemas))
    slot, publication = slot_name(cfg), publication_name(cfg)
    follow = getattr(args, "follow", False)
    phases = Phases(enabled=not follow and log.isEnabledFor(logging.DEBUG))
    conn = _connect(cfg.source_postgres_database_url)
    phases.mark("connect")
    try:
        if getattr(args, "drop_slot", False):
            return _drop(conn, slot, publication)
        state = cdc_source.source_state(conn, slot, publication)  # wal_level, publication, slot: one query
        catalog = full_sync._open_catalog(cfg)
        try:
            check_warehouse_writable(catalog)
        except OSError as exc:
            raise UserError(str(exc)) from None
        keyed, why_not, others = _keyed_tables(cfg, conn)
        recopy = _prepare_slot(conn, slot, publication, keyed, state)
        if getattr(args, "full_refresh", False):
            recopy = None  # --full-refresh: copy every table again (the slot stays; replay converges)
        status = 0
        held = None if recopy is None else {name: _stored_properties(catalog, namespace, relation)
                                            for name, (relation, _) in keyed.items()}
        phases.mark("checks")
        if recopy is None or others or getattr(args, "delete_old_tables", False) or any(
                properties.get(PROP_CDC_SLOT) != slot for properties in held.values()):
            status = _copy(cfg, args, catalog, namespace, slot, keyed, recopy, why_not)
            state = held = None  # the drain reads up to the position after the copies, and their properties
            phases.mark("copy")
        upto = state.lsn if state else None  # the first drain's end: the position read with the checks
        stop = StopFlag() if follow else None
        if follow:
            cdc_memory.use_system_allocator()
        while True:
            cycle_started = time.monotonic()
            counted = _rows_changed(conn, keyed) if follow and cfg.source_postgres_commit_changes else None
            try:
                drained = _drain(conn, catalog, namespace, slot, publication, keyed, follow,
                                 cfg.source_postgres_database_url, upto, held, phases)
                upto = held = None
            except SOURCE_ERRORS as exc:
                if stop is None:
                    raise
                # A follower outlives a source restart or failover: say so, wait, connect again.
                log.warning("source Postgres: %s; retrying in %gs", _one_line(exc), cfg.source_postgres_commit_interval)
                _close(conn)
                conn = None
                while conn is None and not stop.wait(cfg.source_postgres_commit_interval):
                    try:
                        conn = _connect(cfg.source_postgres_database_url)
                    except (*SOURCE_ERRORS, UserError):
                        conn = None
                if conn is None:
                    return status
                continue
            status = max(status, drained.status)
            if drained.recopy:  # a schema change that cannot be applied in place: copy those tables again
                status = max(status, _copy(cfg, args, catalog, namespace, slot, keyed, drained.recopy, why_not))
            # A commit every interval, counted from the previous one's start (the drain's time included), or
            # sooner once --commit-changes rows changed.
            if stop is None or _wait_for_next_commit(stop, conn, keyed, cycle_started + cfg.source_postgres_commit_interval,
                                                     counted, cfg.source_postgres_commit_changes):
                return status
    except SOURCE_ERRORS as exc:
        raise UserError(f"source Postgres: {_one_line(exc)}") from None
    finally:
        _close(conn)
        phases.mark("close")
        phases.log()


def _rows_changed(conn, keyed) -> int | None:
    try:
        return cdc_source.rows_changed(conn, [relation.sql_name for relation, _ in keyed.values()])
    except SOURCE_ERRORS:  # a table dropped meanwhile, the source gone: the interval alone decides
        return None


def _wait_for_next_commit(stop, conn, keyed, deadline: float, counted: int | None, changes: int) -> bool:
    """Wait until `deadline`, or until `changes` rows changed since `counted` (looked at every
    CHANGES_POLL_SECONDS). True when the follower is told to stop."""
    while True:
        if stop.wait(min(deadline - time.monotonic(), CHANGES_POLL_SECONDS)):
            return True
        if time.monotonic() >= deadline:
            return False
        if counted is not None:
            now = _rows_changed(conn, keyed)
            if now is not None and now - counted >= changes:
                return False


def _close(conn) -> None:
    try:
        if conn is not None:
            conn.close()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        pass


def _one_line(exc: BaseException) -> str:
    return full_sync._one_line(exc)


def _connect(url: str | None):
    if not url:
        raise UserError("the source is missing: set --database-url or SOURCE_POSTGRES_DATABASE_URL", 2)
    conn = source.connect(url)
    settings = {**source.SESSION_SETTINGS, "standard_conforming_strings": "on"}
    conn.run("SELECT " + ", ".join(f"set_config({quote_literal(name)}, {quote_literal(value)}, false)"
                                   for name, value in settings.items()))  # one round trip, not one per setting
    return conn


def _drop(conn, slot: str, publication: str) -> int:
    dropped = [f"slot {slot}"] if cdc_source.drop_slot(conn, slot) else []
    if cdc_source.drop_publication(conn, publication):
        dropped.append(f"publication {publication}")
    console.stdout.print(f"dropped {' and '.join(dropped)}" if dropped
                         else f"no slot {slot} nor publication {publication}")
    return 0


def _keyed_tables(cfg, conn) -> tuple[dict[str, tuple[source.Relation, list[str]]], dict[str, str], int]:
    """Selected tables CDC can keep (a primary key that is the replica identity, or no key and REPLICA
    IDENTITY FULL; every column published), why each other selected table cannot (it is full-refreshed every
    run, see _copy), and how many relations besides those were selected (notes of the full refresh: views,
    unknown names)."""
    relations = source.list_relations(conn)
    selection = select_tables([(r.schema, r.name) for r in relations],
                              cfg.source_postgres_include_tables or [], cfg.source_postgres_exclude_tables or [])
    by_name = {(r.schema, r.name): r for r in relations}
    keyed, why_not = {}, {}
    for key in selection.selected:
        relation = by_name[key]
        if relation.kind in ("r", "p") and relation.can_select:
            primary_key = source.primary_key(conn, relation)
            reason = cdc_identity.why_not_cdc(conn, relation, primary_key)
            if reason is None:
                keyed[relation.qualified] = (relation, primary_key)
            else:
                why_not[relation.qualified] = reason
    others = len(selection.selected) - len(keyed) + len(selection.unknown) + len(selection.empty_wildcards)
    return keyed, why_not, others


def _prepare_slot(conn, slot: str, publication: str, keyed, source_state) -> set[str] | None:
    """Publication and slot in place (`source_state`: as the run's first query saw them). Returns None when
    every table must be copied (a new slot), else the empty set (each table's own properties say whether it
    needs a copy)."""
    cdc_source.ensure_publication(conn, publication, [relation.sql_name for relation, _ in keyed.values()],
                                  source_state)
    cdc_identity.unpublish_unidentified(conn, publication)  # else the source refuses their updates
    state = source_state.slot
    if state.exists and state.lost:
        console.stdout.print(f"slot {slot} was invalidated (the source removed WAL it needed, "
                             "max_slot_wal_keep_size): every table is copied again with a new slot")
        cdc_source.drop_slot(conn, slot)
    if state.exists and not state.lost:
        return set()
    cdc_source.create_slot(conn, slot)
    return None


def _copy(cfg, args, catalog, namespace, slot, keyed, recopy: set[str] | None, why_not: dict[str, str]) -> int:
    """Full copies, in one snapshot: tables without a key (every run), and keyed tables this slot does not
    hold yet (all of them when `recopy` is None) or that must be copied again (in `recopy`)."""
    def plan(relation, progress):
        name = relation.qualified
        if name not in keyed:
            progress.note(f"{name}: synced by full refresh, not CDC: {why_not.get(name, 'no primary key')}")
            return {}
        copy = {PROP_CDC_SLOT: slot, PROP_CDC_LSN: pgoutput.format_lsn(0),
                **({} if keyed[name][1] else {cdc_identity.PROP_COPY_SNAPSHOT: snapshot})}
        if recopy is None or name in recopy:
            return copy
        stored = _stored_properties(catalog, namespace, relation)
        return None if stored.get(PROP_CDC_SLOT) == slot else copy

    conn = source.connect(cfg.source_postgres_database_url)
    pool = None
    try:
        source.begin_snapshot(conn)
        pool = parallel.SourcePool(cfg.source_postgres_database_url, conn, cfg.source_postgres_threads or 1)
        snapshot = cdc_identity.current_snapshot(conn)  # the one every copy of this run reads in
        return full_sync._sync(cfg, args, catalog, pool, namespace.schema, {}, cdc=plan)
    finally:
        if pool is not None:
            pool.close()
        _close(conn)


def _stored_properties(catalog, namespace: _Destination, relation) -> dict[str, str]:
    try:
        return catalog.load_table(namespace.of(relation)).properties
    except Exception:  # noqa: BLE001 - no such table yet
        return {}


@dataclass(frozen=True)
class _Destination:
    """Where source tables land: BemiDB's naming into `schema`, or their own schemas (keep)."""
    schema: str
    keep: bool = False

    def of(self, relation) -> tuple[str, str]:
        return destination(relation.schema, relation.name, self.schema, self.keep)


class _Drained:
    def __init__(self):
        self.status = 0
        self.recopy: set[str] = set()


def _drain(conn, catalog, namespace, slot, publication, keyed, follow: bool = False, url: str | None = None,
           upto: int | None = None, held: dict[str, dict] | None = None, phases: Phases | None = None) -> _Drained:
    """Apply the slot's changes up to now (or `upto`, a position read moments ago), one commit per changed
    table (a table whose changes outgrow cdc_collect.CHUNK_ROWS has its earlier parts staged, then committed
    with the last), then advance the slot. `held`: each table's stored properties, when just loaded."""
    result = _Drained()
    phases = phases or Phases(enabled=False)
    if upto is None:
        upto = cdc_source.current_lsn(conn)
    if held is None:
        held = {name: _stored_properties(catalog, namespace, relation) for name, (relation, _) in keyed.items()}
    applied = {name: pgoutput.parse_lsn(props[PROP_CDC_LSN]) for name, props in held.items()
               if props.get(PROP_CDC_SLOT) == slot and PROP_CDC_LSN in props}
    applier = _Applier(catalog, namespace, keyed, slot, url)
    try:
        pending = cdc_collect.collect(conn, slot, publication, upto, applied, keyed, applier.flush,
                                      cdc_identity.copied(held, applied, keyed))
    except BaseException:
        applier.discard()
        raise
    finally:
        applier.close()  # its connection; the staged parts are committed below
    phases.mark("read slot")
    touched = list(dict.fromkeys([*applier.staged, *applier.errors, *applier.recopy, *pending]))
    if not touched:  # nothing to apply: only let the source drop the WAL read so far
        pause("advance")
        cdc_source.advance(conn, slot, upto)
        phases.mark("advance")
        return result
    resolver = source.TypeResolver(conn)
    with SyncProgress(f"sync postgres (cdc) -> {namespace.schema}", live=False if follow else None) as progress:
        for name in touched:
            progress.table_started(name)
            if name in pending or name in applier.staged:
                applier.apply(conn, resolver, name, pending.get(name) or TableChanges(keyed[name][1]), upto)
            if name in applier.recopy:  # a schema change not applicable in place
                progress.note(f"{name}: {applier.recopy[name]}; copying the table again")
                result.recopy.add(name)
            elif name in applier.errors:
                progress.table_done(name, 0, 0, error=applier.errors[name])
            else:
                progress.table_done(name, *applier.totals[name])
        if progress.failed:
            result.status = 1
            return result  # the slot keeps the changes: the next run applies what failed
        phases.mark("apply")
        pause("advance")
        cdc_source.advance(conn, slot, upto)
        phases.mark("advance")
    _upkeep(catalog, namespace, [keyed[name][0] for name in touched], follow)
    phases.mark("upkeep")
    if follow:  # a follower lives for days: its freed memory goes back to the system after each cycle
        cdc_memory.release()
    return result


class _Applier:
    """Commits a table's changes and keeps each table's totals and failure. Parts flushed while the slot is
    still being read are staged (written, not committed) and typed over a second connection: the drain's own
    is busy streaming."""

    def __init__(self, catalog, namespace, keyed, slot: str, url: str | None):
        self.catalog, self.namespace, self.keyed, self.slot, self.url = catalog, namespace, keyed, slot, url
        self.totals: dict[str, list[int]] = {}  # table -> [rows, bytes] committed
        self.errors: dict[str, str] = {}
        self.recopy: dict[str, str] = {}  # table -> the schema change that needs a copy
        self.staged: dict[str, Staged] = {}  # table -> its parts written and not committed yet
        self._conn = self._resolver = None

    def flush(self, name: str, changes: TableChanges) -> bool:
        if self._conn is None:
            self._conn = _connect(self.url)
            self._resolver = source.TypeResolver(self._conn)
        staged = self._guarded(name, lambda: _stage(self._conn, self.catalog, self.namespace, self.keyed[name][0],
                                                     changes, self._resolver, self.staged.get(name)))
        if staged is None:
            return False
        self.staged[name] = staged
        pause("stage")
        return True

    def apply(self, conn, resolver, name: str, changes: TableChanges, lsn: int) -> bool:
        result = self._guarded(name, lambda: _apply(conn, self.catalog, self.namespace, self.keyed[name][0],
                                                    changes, resolver, self.slot, lsn, self.staged.pop(name, None)))
        if result is None:
            return False
        total = self.totals.setdefault(name, [0, 0])
        total[0] += result.rows
        total[1] += result.bytes
        return True

    def _guarded(self, name: str, work):
        """work()'s result, or None after noting the table's failure (the staged parts are gone with it)."""
        try:
            return work()
        except ValueError as exc:
            self.recopy[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one table's failure never stops the others
            log.debug("table %s failed", name, exc_info=True)
            self.errors[name] = full_sync._one_line(exc)
        self.staged.pop(name, None)
        return None

    def discard(self) -> None:
        """The staged parts deleted: a drain that stopped early will never reference them."""
        for staged in self.staged.values():
            staged.discard()
        self.staged.clear()

    def close(self) -> None:
        _close(self._conn)
        self._conn = None


_last_upkeep = 0.0


def _upkeep(catalog, namespace: _Destination, relations, follow: bool) -> None:
    """Compact tables whose commits left many small files, expire old snapshots, delete orphans. A follower
    does it at most every UPKEEP_SECONDS; it never fails the sync (the next one retries)."""
    global _last_upkeep
    if follow and time.monotonic() - _last_upkeep < UPKEEP_SECONDS:
        return
    _last_upkeep = time.monotonic()
    for relation in relations:
        identifier = namespace.of(relation)
        try:
            compact(catalog.load_table(identifier))
            maintenance.vacuum_table(catalog.load_table(identifier), keep_snapshots=full_sync.KEEP_SNAPSHOTS_AFTER_SYNC)
        except Exception as exc:  # noqa: BLE001 - housekeeping never fails a sync
            log.warning("upkeep of %s skipped: %s", ".".join(identifier), full_sync._one_line(exc))


def _stage(conn, catalog, namespace, relation, changes: TableChanges, resolver, staged: Staged | None) -> Staged:
    identifier = namespace.of(relation)
    schema, batch = typed_changes(conn, catalog.load_table(identifier), relation, changes, resolver)
    return stage_changes(catalog, identifier, schema, batch, staged)


def _apply(conn, catalog, namespace, relation, changes: TableChanges, resolver, slot: str,
           upto: int, staged: Staged | None = None) -> WriteResult:
    identifier = namespace.of(relation)
    schema, batch = typed_changes(conn, catalog.load_table(identifier), relation, changes, resolver)
    properties = {PROP_SOURCE: full_sync.SOURCE_NAME, PROP_CDC_SLOT: slot, PROP_CDC_LSN: pgoutput.format_lsn(upto),
                  PROP_PRIMARY_KEY: json.dumps(changes.keys)}
    return apply_changes(catalog, identifier, schema, batch, properties=properties, staged=staged,
                         before_commit=lambda: pause("commit"))
