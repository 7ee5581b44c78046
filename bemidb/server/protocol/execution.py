"""Running statements for one session: a plan per statement (rewrite.translate), queries streamed from DuckDB
in Arrow batches (with cancel and statement_timeout), COPY TO STDOUT, SET/SHOW/set_config, transaction
control, materialized views, and describing results and parameters without running them.

The session owns one Executor and hands it the session's state; the executor writes replies through the
connection it was given and never reads from the socket.
"""

from __future__ import annotations

import logging
import time

import duckdb
import pyarrow as pa
from sqlglot.errors import ParseError

from bemidb.server import matviews
from bemidb.server.errors import PgError, from_exception
from bemidb.server.protocol import results, wire
from bemidb.server.protocol.connection import Connection
from bemidb.server.protocol.cursors import Cursors
from bemidb.server.protocol.results import ResultEncoder, TableColumns, copy_encoder, parameter_oids
from bemidb.server.protocol.running import QueryRunner
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


class Executor:
    def __init__(self, conn: Connection, engine, state: SessionState, statements: dict[str, Statement]):
        self.conn = conn
        self.engine = engine
        self.state = state
        self.statements = statements  # the session's prepared statements (DEALLOCATE, DISCARD ALL drop them)
        self.cursors = Cursors(conn, engine, state)
        self.runner = QueryRunner(engine, state)
        # Per statement text, for clients that Parse the same unnamed statement before each run (node-postgres,
        # pg8000, psycopg before it prepares): DuckDB's parameter types (a bind of the query, ~0.4 ms of a
        # ~3 ms primary-key lookup) and the last result encoder. Both keyed on the served tables' version.
        self._inferred: dict[tuple, list[int]] = {}
        self._encoders: dict[str, tuple] = {}

    @property
    def running(self) -> bool:
        """A query is streaming (a CancelRequest interrupts it)."""
        return self.runner.running

    def cancel(self) -> None:
        """CancelRequest from another connection: interrupt the running query, if any."""
        self.runner.cancel()

    def close_portal(self, portal: Portal) -> None:
        self.runner.close(portal)

    def _before_query(self) -> None:
        self.runner.yield_cursor()
        self.runner.before_query()

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
        statement = Statement(sql, plan, [])
        if isinstance(plan, Query):  # the encoder checks its key before it is reused (see _encoder)
            statement.last_encoder = self._encoders.get(plan.sql)
        return statement

    def _check_unparsed(self, sql: str, exc: ParseError | None) -> None:
        self.runner.yield_cursor()
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
        # What binding infers depends on the text and the served tables (views, their columns' types) as
        # found through the search_path: the same three answer the same, so they are bound once.
        key = (query.sql, self.engine.tables_version, tuple(self.state.settings.search_path_schemas()))
        inferred = self._inferred.get(key)
        if inferred is None:
            try:
                inferred = parameter_oids(self.state.cursor, query.sql)
            except duckdb.Error as exc:  # e.g. an unknown table: Postgres reports it at Parse/Describe too
                raise self.runner.query_error(exc, Portal(statement, [], [])) from None
            _remember(self._inferred, key, inferred)
        inferred = list(inferred)
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

    def describe_portal(self, portal: Portal) -> ResultEncoder | None:
        """Describe of a bound portal. A query starts running now and its reader and result shape serve the
        Execute that follows: binding it here only to bind it again at Execute cost as much as a primary-key
        lookup itself. Nothing is sent before Execute, so a portal whose cursor is needed meanwhile is
        simply run again then (running.QueryRunner.yield_cursor)."""
        if portal.encoder is not None or portal.done or portal.no_rows:
            return portal.encoder
        if not isinstance(portal.statement.plan, Query) or portal.reader is not None or self.state.status == "E":
            return self.describe(portal.statement, portal.params, portal.result_formats)
        self._start_portal(portal)
        if portal.reader is not None:
            self.runner.prestarted = portal
        return portal.encoder

    def _start_portal(self, portal: Portal) -> None:
        """Start a portal's query and describe its result from the started reader."""
        plan = portal.statement.plan
        self.runner.start(portal, plan.sql)
        if portal.reader is None:  # a statement that returns no rows: it has run
            portal.no_rows = True
            self.runner.stop(portal)
        elif portal.encoder is None:
            portal.encoder = self._encoder(portal)

    def _encoder(self, portal: Portal) -> ResultEncoder:
        """The encoder of a started portal's result. A prepared statement run again with the same result
        shape, formats and source columns reuses its last one: building one costs ~0.2 ms, a tenth of a
        primary-key lookup."""
        statement, settings = portal.statement, self.state.settings
        # A result's column names follow from the statement's text and what its names resolve to: the served
        # tables (tables_version, read before they are looked at) through the search_path; its types also
        # from its parameters' values, so DuckDB's column types are compared (exactly, as DuckDB types: no
        # text of them, no Arrow schema fetched per run). Equal keys: the same Arrow schema and source columns.
        key = (portal.result_formats, portal.duck_types, settings.timezone, settings.search_path_schemas(),
               self.engine.tables_version)
        if statement.last_encoder is not None and statement.last_encoder[0] == key:
            return statement.last_encoder[1]
        encoder = ResultEncoder.from_schema(portal.reader.schema, portal.result_formats, settings.timezone,
                                            portal.duck_types, self._origins(statement.plan))
        statement.last_encoder = (key, encoder)
        _remember(self._encoders, statement.plan.sql, statement.last_encoder)
        return encoder

    def _origins(self, plan) -> TableColumns | None:
        origins = getattr(plan, "origins", ())
        return TableColumns(origins, self.engine, self.state.settings.search_path_schemas()) if origins else None

    # -- running (Query, Execute) ----------------------------------------------------------------------------

    def execute(self, portal: Portal, max_rows: int, describe: bool) -> None:
        """Run (or continue) a portal. `describe`: send RowDescription first (simple query protocol)."""
        plan = portal.statement.plan
        state, conn = self.state, self.conn
        self.runner.yield_cursor(keep=portal)
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
                                     lambda duck: self.runner.guarded(duck, portal))
            case FetchCursor():
                formats = portal.result_formats
                self.cursors.fetch(plan, formats, describe, lambda duck: self.runner.guarded(duck, portal))
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

    def _run_query(self, portal: Portal, max_rows: int, describe: bool) -> None:
        started = time.monotonic()
        plan = portal.statement.plan
        try:
            if portal.reader is None and not portal.done:
                if not portal.no_rows:
                    self._start_portal(portal)
                if portal.reader is None:  # a statement that returns no rows
                    portal.done = True
                    self.conn.send(wire.command_complete(plan.tag))
                    return
                if describe:
                    self.conn.send(portal.encoder.row_description())
            sent = 0
            for batch in self.runner.batches(portal):
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
        self.runner.start(portal, plan.query.sql)
        try:
            copier = copy_encoder(plan.options, self.state.settings.timezone, self._origins(plan.query))
            schema = portal.reader.schema
            n_cols = len(schema)
            self.conn.send(wire.message(b"H", b"\0" + wire.int16(n_cols) + wire.int16(0) * n_cols))
            rows = 0
            for batch in self.runner.batches(portal):
                self.conn.send(wire.message(b"d", copier.encode(batch)))
                rows += batch.num_rows
            if copier.want_header:  # an empty result still gets its header line
                self.conn.send(wire.message(b"d", copier.encode(pa.RecordBatch.from_pylist([], schema=schema))))
            self.conn.send(wire.COPY_DONE)
            self.conn.send(wire.command_complete(f"COPY {rows}"))
        finally:
            self.close_portal(portal)


_REMEMBERED = 256  # statement texts per session in each of the Executor's caches


def _remember(cache: dict, key, value) -> None:
    """Put into a bounded cache: the oldest entry goes first (clients repeat a few texts)."""
    cache.pop(key, None)
    if len(cache) >= _REMEMBERED:
        cache.pop(next(iter(cache)))
    cache[key] = value


def _show_header(name: str) -> str:
    return "all" if name.lower() == "all" else canonical_name(name)

