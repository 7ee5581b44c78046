"""Running statements for one session: a plan per statement (rewrite.translate), queries streamed from DuckDB
in Arrow batches (with cancel and statement_timeout), COPY TO STDOUT, SET/SHOW/set_config, transaction
control, materialized views, and describing results and parameters without running them.

The session owns one Executor and hands it the session's state; the executor writes replies through the
connection it was given and never reads from the socket.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

import duckdb
import pyarrow as pa
from sqlglot.errors import ParseError

from bemidb.server import duckdb_calls, matviews
from bemidb.server.engine import check_statement, interruptible
from bemidb.server.errors import CANCELED, PgError, from_exception
from bemidb.server.protocol import results, wire
from bemidb.server.protocol.connection import Connection
from bemidb.server.protocol.cursors import Cursors
from bemidb.server.protocol.results import ResultEncoder, TableColumns, copy_encoder, parameter_oids
from bemidb.server.protocol.state import Portal, SessionState, Statement
from bemidb.server.settings import canonical_name
from bemidb.server.sql import rewrite
from bemidb.server.sql.plans import (
    CloseCursor,
    CopyOut,
    Deallocate,
    DeclareCursor,
    Empty,
    FetchCursor,
    Matview,
    NoOp,
    Query,
    ResetSetting,
    SetConfig,
    SetSetting,
    ShowSetting,
    Transaction,
)

log = logging.getLogger("bemidb.server")

BATCH_ROWS = 65_536  # rows per Arrow batch pulled from DuckDB


class Executor:
    def __init__(self, conn: Connection, engine, state: SessionState, statements: dict[str, Statement]):
        self.conn = conn
        self.engine = engine
        self.state = state
        self.statements = statements  # the session's prepared statements (DEALLOCATE, DISCARD ALL drop them)
        self.cursors = Cursors(conn, engine, state)
        self._interrupt = None  # the DuckDB cursor a CancelRequest interrupts when not the session's own
        self.running = False  # a query is streaming (a CancelRequest interrupts it)
        self.canceled = False
        self.timed_out = False
        self._engine_generation = -1

    # -- planning and describing (Parse, Describe) -----------------------------------------------------------

    def plan(self, sql: str) -> Statement:
        """One statement's plan; what sqlglot cannot parse runs as written if DuckDB's parser takes it."""
        try:
            plan = rewrite.translate(sql) if sql.strip() else Empty()
        except ParseError as exc:
            self._check_unparsed(sql, exc)
            plan = Query(sql, unparsed=True)
        if isinstance(plan, CopyOut) and plan.query.unparsed:
            self._check_unparsed(plan.query.sql, None)
        plan = results.typed_plan(plan, sql, self.engine, self.state.settings.search_path_schemas())
        if self.state.access is not None:  # a users-file user reads only what its grants allow
            plan = self.state.access.restrict(plan, sql, self.engine, self.state.settings.search_path_schemas())
        return Statement(sql, plan, [])

    def _check_unparsed(self, sql: str, exc: ParseError | None) -> None:
        try:
            self.state.cursor.extract_statements(sql)
        except duckdb.Error as duck_exc:
            raise from_exception(duck_exc, sql) from None
        except Exception as other:  # noqa: BLE001
            raise from_exception(exc or other, sql) from None

    def parameter_types(self, statement: Statement) -> list[int]:
        """Parameter OIDs: the client's where given, else what DuckDB infers from the query (text if unknown)."""
        given = statement.param_oids
        query = statement.plan.query if isinstance(statement.plan, DeclareCursor) else statement.plan
        if not isinstance(query, Query):
            return given
        self._before_query()
        try:
            inferred = parameter_oids(self.state.cursor, query.sql)
        except duckdb.Error as exc:  # e.g. an unknown table: Postgres reports it at Parse/Describe too
            raise self._query_error(exc, Portal(statement, [], [])) from None
        if len(inferred) < len(given):
            inferred += [25] * (len(given) - len(inferred))
        for index, oid in query.param_hints:  # $1::oid[] stays oid[] (DuckDB would say bigint[])
            if index < len(inferred):
                inferred[index] = oid
        return [g or i for g, i in zip(given + [0] * (len(inferred) - len(given)), inferred, strict=True)]

    def describe(self, statement: Statement, params: list | None, formats: list[int]) -> ResultEncoder | None:
        """The result encoder (RowDescription) of a statement without running it; None when no rows."""
        match statement.plan:
            case ShowSetting(name=name):
                return ResultEncoder.text_columns([_show_header(name)], formats)
            case SetConfig(column=column):
                return ResultEncoder.text_columns([column], formats)
            case Query(sql=sql):
                self._before_query()
                return ResultEncoder.from_bind(self.state.cursor, sql, params, formats,
                                               self.state.settings.timezone, self._origins(statement.plan))
            case FetchCursor(name=name, move=False):
                return self.cursors.encoder(name, formats)
        return None

    def _origins(self, plan) -> TableColumns | None:
        origins = getattr(plan, "origins", ())
        return TableColumns(origins, self.engine, self.state.settings.search_path_schemas()) if origins else None

    # -- running (Query, Execute) ----------------------------------------------------------------------------

    def execute(self, portal: Portal, max_rows: int, describe: bool) -> None:
        """Run (or continue) a portal. `describe`: send RowDescription first (simple query protocol)."""
        plan = portal.statement.plan
        state, conn = self.state, self.conn
        if state.status == "E" and not (isinstance(plan, Transaction) and plan.tag in ("COMMIT", "ROLLBACK")):
            raise PgError("25P02", "current transaction is aborted, commands ignored until end of transaction "
                                   "block")
        settings = state.settings
        match plan:
            case Empty():
                conn.send(wire.EMPTY_QUERY_RESPONSE)
            case Query():
                self._run_query(portal, max_rows, describe)
            case CopyOut():
                self._run_copy(portal)
            case SetSetting(name=name, value=value, tag=tag):
                self._change_settings(settings.set(name, value), tag)
            case ResetSetting(name=name, tag=tag):
                changed = settings.reset_all() if name.lower() == "all" else settings.reset(name)
                self._change_settings(changed, tag)
            case SetConfig():
                self._run_set_config(plan, portal, describe)
            case ShowSetting():
                self._run_show(plan, portal, describe)
            case Transaction():
                self._run_transaction(plan)
            case Matview():
                self._before_query()
                conn.send(wire.command_complete(matviews.execute(
                    plan, self.engine, state.cursor, settings,
                    lambda message, code: conn.send_notice(message, code, "NOTICE"))))
            case DeclareCursor():
                self._before_query()
                self.cursors.declare(plan, portal.statement.sql, portal.params,
                                     lambda duck: self._guarded(duck, portal))
            case FetchCursor():
                formats = portal.result_formats
                self.cursors.fetch(plan, formats, describe, lambda duck: self._guarded(duck, portal))
            case CloseCursor(name=name, tag=tag):
                self.cursors.close(name)
                conn.send(wire.command_complete(tag))
            case Deallocate(name=name, tag=tag):
                self.cursors.deallocate(self.statements, name, tag)
            case NoOp(tag="DISCARD ALL"):
                self.cursors.discard_all(self.statements)
            case NoOp(tag=tag):  # answered with its tag, as Postgres would (LISTEN, CHECKPOINT ...)
                conn.send(wire.command_complete(tag))

    def _change_settings(self, changed: dict[str, str], tag: str) -> None:
        self.conn.send_parameter_statuses(changed)
        self.conn.send(wire.command_complete(tag))

    def _run_set_config(self, plan: SetConfig, portal: Portal, describe: bool) -> None:
        """SELECT set_config(name, value, is_local): SET, then one row holding the value as now shown."""
        changed = self.state.settings.set(plan.name, plan.value)
        value = self.state.settings.show(plan.name)
        self.conn.send_parameter_statuses(changed)
        self._send_text_rows([plan.column], [(value,)], portal, describe, plan.tag)

    def _run_show(self, plan: ShowSetting, portal: Portal, describe: bool) -> None:
        settings = self.state.settings
        if plan.name.lower() == "all":
            self._send_text_rows(["name", "setting", "description"], list(settings.show_all()), portal, describe,
                                 plan.tag)
        else:
            self._send_text_rows([_show_header(plan.name)], [(settings.show(plan.name),)], portal, describe,
                                 plan.tag)

    def _send_text_rows(self, names: list[str], rows: list[tuple], portal: Portal, describe: bool,
                        tag: str) -> None:
        shape = ResultEncoder.text_columns(names, portal.result_formats)
        if describe:
            self.conn.send(shape.row_description())
        self.conn.send(shape.text_rows(rows))
        self.conn.send(wire.command_complete(tag))

    def _run_transaction(self, plan: Transaction) -> None:
        state, tag = self.state, plan.tag
        if tag in ("BEGIN", "START TRANSACTION"):
            if state.status != "I":
                self.conn.send_notice("there is already a transaction in progress", "25001")
            else:
                state.status = "T"
        elif tag == "COMMIT":
            if state.status == "I":
                self.conn.send_notice("there is no transaction in progress", "25P01")
            tag = "ROLLBACK" if state.status == "E" else "COMMIT"
            state.status = "I"
            self.cursors.end_transaction()
        elif tag == "ROLLBACK" and plan.to_savepoint:
            state.status = "T" if state.status == "E" else state.status
        elif tag == "ROLLBACK":
            if state.status == "I":
                self.conn.send_notice("there is no transaction in progress", "25P01")
            state.status = "I"
            self.cursors.end_transaction()
        self.conn.send(wire.command_complete(tag))

    def _before_query(self) -> None:
        """Live tables and session settings, pushed into the cursor before it runs anything."""
        engine, state = self.engine, self.state
        engine.maybe_refresh()
        if engine.generation != self._engine_generation:  # new schemas: re-resolve search_path
            state.settings.forget(state.cursor)
            self._engine_generation = engine.generation
        state.settings.apply(state.cursor)

    def _start(self, portal: Portal, sql: str) -> None:
        """Start DuckDB on the portal's query; the reader streams batches from then on."""
        cursor = self.state.cursor
        check_statement(cursor, sql)
        self._before_query()
        self.canceled = self.timed_out = False
        timeout = self.state.settings.statement_timeout_ms / 1000
        portal.timer = interruptible(cursor, timeout, self._on_timeout)
        self.running = True  # from here a CancelRequest counts, also while the query waits for its turn
        gate, should_stop = self.engine.gate, lambda: self.canceled or self.timed_out
        if not gate.enter(self, portal, should_stop):
            self._stop(portal)
            raise duckdb.InterruptException("INTERRUPT Error: canceled while waiting to run")
        started = time.monotonic()
        try:
            portal.duck_types, portal.reader = duckdb_calls.stream(cursor, sql, portal.params, BATCH_ROWS)
            try:
                self._first_batch(portal)
            except Exception as exc:
                # Out of memory with other queries running (BEMIDB_MEMORY_LIMIT): once more, alone.
                if from_exception(exc).sqlstate != "53200" or not gate.enter_alone(self, portal, should_stop):
                    raise
                log.info("pid %d: query ran out of memory among others; running it alone", self.state.pid)
                portal.reader.close()
                portal.duck_types, portal.reader = duckdb_calls.stream(cursor, sql, portal.params, BATCH_ROWS)
                self._first_batch(portal)
        except Exception:
            self._stop(portal)
            raise
        log.debug("pid %d query started in %.1f ms: %.200s", self.state.pid,
                  (time.monotonic() - started) * 1000, sql)

    def _first_batch(self, portal: Portal) -> None:
        """Pull the first batch now: joins, aggregates and sorts do their work (and run out of memory) here,
        before anything was sent, so the query can still be run again."""
        if portal.reader is None:
            return
        try:
            batch = portal.reader.read_next_batch()
        except StopIteration:
            return
        if batch.num_rows:
            portal.leftover = batch

    def _locate_error(self, sql: str) -> int | None:
        """DuckDB's streaming call drops the 'LINE n: ... ^' marker; binding the statement once more through
        PREPARE (never run) gets it back, so clients can point at the mistake."""
        prefix = "PREPARE bemidb_error_position AS "
        cursor = self.state.cursor
        try:
            cursor.execute(prefix + sql)
            cursor.execute("DEALLOCATE bemidb_error_position")
        except duckdb.Error as exc:
            position = from_exception(exc, prefix + sql).position
            return position - len(prefix) if position and position > len(prefix) else None
        return None

    def _on_timeout(self) -> None:
        self.timed_out = True

    def cancel(self) -> None:
        """CancelRequest from another connection: interrupt the running query, if any."""
        if self.running:
            self.canceled = True
            (self._interrupt or self.state.cursor).interrupt()

    @contextmanager
    def _guarded(self, duck, portal: Portal):
        """Run calls on a cursor's own DuckDB cursor as a query runs: cancel, statement_timeout, error mapping."""
        self.canceled = self.timed_out = False
        timer = interruptible(duck, self.state.settings.statement_timeout_ms / 1000, self._on_timeout)
        self._interrupt, self.running = duck, True
        try:
            yield
        except PgError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._query_error(exc, portal) from None
        finally:
            self._interrupt, self.running = None, False
            if timer is not None:
                timer.cancel()

    def _stop(self, portal: Portal) -> None:
        self.running = False
        self.engine.gate.leave(self, portal)
        if portal.timer is not None:
            portal.timer.cancel()
            portal.timer = None

    def close_portal(self, portal: Portal) -> None:
        self._stop(portal)
        reader, portal.reader = portal.reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # noqa: BLE001
                pass

    def _batches(self, portal: Portal):
        """The portal's batches, leftover first; DuckDB errors mid-stream become PgErrors (57014 on cancel)."""
        if portal.leftover is not None:
            batch, portal.leftover = portal.leftover, None
            yield batch
        while portal.reader is not None:
            try:
                batch = portal.reader.read_next_batch()
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001
                raise self._query_error(exc) from None
            if batch.num_rows:
                yield batch

    def _query_error(self, exc: BaseException, portal: Portal | None = None) -> PgError:
        query = portal.statement.query if portal is not None else None
        error = from_exception(exc, query.sql if query else None)
        if query is not None and error.position is None and isinstance(
                exc, (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)):
            error.position = self._locate_error(query.sql)
        if query is not None and error.position:
            error.position = _map_position(query.sql, portal.statement.sql, error.position)
        if error.sqlstate == CANCELED or self.canceled or self.timed_out:
            message = ("canceling statement due to statement timeout" if self.timed_out
                       else "canceling statement due to user request")
            return PgError(CANCELED, message)
        return error

    def _start_or_raise(self, portal: Portal, sql: str) -> None:
        try:
            self._start(portal, sql)
        except PgError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._query_error(exc, portal) from None

    def _run_query(self, portal: Portal, max_rows: int, describe: bool) -> None:
        started = time.monotonic()
        plan = portal.statement.plan
        try:
            if portal.reader is None and not portal.done:
                self._start_or_raise(portal, plan.sql)
                if portal.reader is None:  # a statement that returns no rows
                    portal.done = True
                    self._stop(portal)
                    self.conn.send(wire.command_complete(plan.tag))
                    return
                if portal.encoder is None:
                    portal.encoder = ResultEncoder.from_schema(portal.reader.schema, portal.result_formats,
                                                               self.state.settings.timezone, portal.duck_types,
                                                               self._origins(plan))
                if describe:
                    self.conn.send(portal.encoder.row_description())
            sent = 0
            for batch in self._batches(portal):
                if max_rows and sent + batch.num_rows > max_rows:
                    keep = max_rows - sent
                    portal.leftover = batch.slice(keep)
                    batch = batch.slice(0, keep)
                for chunk in portal.encoder.data_rows(batch):
                    self.conn.send(chunk)
                sent += batch.num_rows
                if max_rows and sent >= max_rows:
                    break
            if max_rows and sent >= max_rows:
                self.conn.send(wire.PORTAL_SUSPENDED)
                return
            portal.done = True
            self.close_portal(portal)
            tag = plan.tag or "SELECT"
            self.conn.send(wire.command_complete(f"{tag} {sent}" if tag in ("SELECT", "FETCH", "MOVE") else tag))
            log.debug("pid %d query: %d rows in %.1f ms", self.state.pid, sent, (time.monotonic() - started) * 1000)
        except Exception:
            self.close_portal(portal)
            portal.done = True
            raise

    def _run_copy(self, portal: Portal) -> None:
        plan = portal.statement.plan
        self._start_or_raise(portal, plan.query.sql)
        try:
            copier = copy_encoder(plan.options, self.state.settings.timezone)
            schema = portal.reader.schema
            n_cols = len(schema)
            self.conn.send(wire.message(b"H", b"\0" + wire.int16(n_cols) + wire.int16(0) * n_cols))
            rows = 0
            for batch in self._batches(portal):
                self.conn.send(wire.message(b"d", copier.encode(batch)))
                rows += batch.num_rows
            if copier.want_header:  # an empty result still gets its header line
                self.conn.send(wire.message(b"d", copier.encode(pa.RecordBatch.from_pylist([], schema=schema))))
            self.conn.send(wire.COPY_DONE)
            self.conn.send(wire.command_complete(f"COPY {rows}"))
        finally:
            self.close_portal(portal)


def _show_header(name: str) -> str:
    return "all" if name.lower() == "all" else canonical_name(name)


def _map_position(translated: str, original: str, position: int) -> int | None:
    """A 1-based position in the SQL DuckDB ran -> the same token in the SQL the client sent (the rewrite may
    have respelled the statement); None when the token cannot be found there unambiguously."""
    if translated == original:
        return position
    m = re.match(r'"[^"]*"|\w+|\S', translated[position - 1:])
    if not m:
        return None
    token = m.group(0).strip('"')
    hits = [h.start() for h in re.finditer(re.escape(token), original, re.I)]
    return hits[0] + 1 if len(hits) == 1 else None
