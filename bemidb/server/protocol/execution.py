"""Running a portal's statement for a client connection: queries streamed from DuckDB in Arrow batches (with
cancel and statement_timeout), COPY TO STDOUT, SET/SHOW/set_config, transaction control, and the mapping of
engine errors to ErrorResponses.

A mixin of Session (session.py), whose handle_execute / handle_query call `execute_portal`.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
from duckdb import _seam

from bemidb.server.engine import check_statement, interruptible
from bemidb.server.errors import CANCELED, PgError, from_exception
from bemidb.server.protocol import wire
from bemidb.server.protocol.results import ResultEncoder, copy_encoder
from bemidb.server.settings import SettingError
from bemidb.server.sql import rewrite

if TYPE_CHECKING:
    from bemidb.server.protocol.session import Portal

log = logging.getLogger("bemidb.server")

BATCH_ROWS = 65_536  # rows per Arrow batch pulled from DuckDB
_ROLLBACK_TO = re.compile(r"^\s*rollback\s+(?:work\s+|transaction\s+)?to\b", re.I)


class Execution:
    """Session's methods that run statements (Session holds the state they use: cursor, portals, settings)."""

    def _before_query(self) -> None:
        """Live tables and session settings, pushed into the cursor before it runs anything."""
        engine = self.ctx.engine
        engine.maybe_refresh()
        if engine.generation != self._engine_generation:  # new schemas: re-resolve search_path
            self.settings.forget(self.cursor)
            self._engine_generation = engine.generation
        self.settings.apply(self.cursor)

    def execute_portal(self, portal: Portal, max_rows: int, describe: bool) -> None:
        """Run (or continue) a portal. `describe`: send RowDescription first (simple query protocol)."""
        plan = portal.statement.plan
        if self.status == "E" and not (plan.kind == "transaction" and (
                plan.tag in ("COMMIT", "ROLLBACK", "END", "ABORT") or _ROLLBACK_TO.match(portal.statement.sql))):
            raise PgError("25P02", "current transaction is aborted, commands ignored until end of transaction "
                                   "block")
        if plan.kind == "empty":
            self.send(wire.EMPTY_QUERY_RESPONSE)
        elif plan.kind == "query" and portal.statement.copy:
            self.run_copy(portal)
        elif plan.kind == "query":
            self.run_query(portal, max_rows, describe)
        elif plan.kind == "set":
            self.run_setting(lambda: self.settings.set(plan.name, plan.value), plan.tag or "SET")
        elif plan.kind == "set_config":
            self.run_set_config(plan, portal, describe)
        elif plan.kind == "reset":
            if (plan.name or "").lower() == "all":
                self.run_setting(self.settings.reset_all, plan.tag or "RESET")
            else:
                self.run_setting(lambda: self.settings.reset(plan.name), plan.tag or "RESET")
        elif plan.kind == "show":
            self.run_show(plan, portal, describe)
        elif plan.kind == "transaction":
            self.run_transaction(portal.statement.sql, plan.tag)
        elif plan.kind == "matview":  # CREATE/REFRESH/DROP MATERIALIZED VIEW (compat layer: matviews.py)
            from bemidb.server import matviews

            self._before_query()
            self.send(wire.command_complete(matviews.execute(plan, self.ctx.engine, self.cursor, self.settings,
                                                             lambda msg, code: self.send_notice(msg, code,
                                                                                                "NOTICE"))))
        else:  # noop: answered with its tag, as Postgres would (DISCARD ALL, LISTEN, DEALLOCATE ...)
            if plan.tag == "DISCARD ALL":
                self.send_parameter_statuses(self.settings.reset_all())
            self.send(wire.command_complete(plan.tag))

    def run_setting(self, change, tag: str) -> None:
        try:
            changed = change()
        except SettingError as exc:
            raise PgError(exc.sqlstate, exc.message) from None
        self.send_parameter_statuses(changed)
        self.send(wire.command_complete(tag))

    def run_set_config(self, plan: rewrite.Translated, portal: Portal, describe: bool) -> None:
        """SELECT set_config(name, value, is_local): SET, then one row holding the value as now shown."""
        try:
            changed = self.settings.set(plan.name, plan.value)
            value = self.settings.show(plan.name)
        except SettingError as exc:
            raise PgError(exc.sqlstate, exc.message) from None
        self.send_parameter_statuses(changed)
        shape = ResultEncoder.text_columns([plan.new_name or "set_config"], portal.result_formats)
        if describe:
            self.send(shape.row_description())
        self.send(shape.text_rows([(value,)]))
        self.send(wire.command_complete(plan.tag))

    def run_show(self, plan: rewrite.Translated, portal: Portal, describe: bool) -> None:
        name = plan.name or ""
        try:
            if name.lower() == "all":
                rows = [(n, v, d) for n, v, d in self.settings.show_all()]
                shape = ResultEncoder.text_columns(["name", "setting", "description"], portal.result_formats)
            else:
                rows = [(self.settings.show(name),)]
                shape = ResultEncoder.text_columns([self._show_header(name)], portal.result_formats)
        except SettingError as exc:
            raise PgError(exc.sqlstate, exc.message) from None
        if describe:
            self.send(shape.row_description())
        self.send(shape.text_rows(rows))
        self.send(wire.command_complete(plan.tag or "SHOW"))

    def run_transaction(self, sql: str, tag: str) -> None:
        if tag in ("BEGIN", "START TRANSACTION"):
            if self.status != "I":
                self.send_notice("there is already a transaction in progress", "25001")
            else:
                self.status = "T"
        elif tag in ("COMMIT", "END"):
            if self.status == "I":
                self.send_notice("there is no transaction in progress", "25P01")
            tag = "ROLLBACK" if self.status == "E" else "COMMIT"
            self.status = "I"
        elif tag in ("ROLLBACK", "ABORT") and _ROLLBACK_TO.match(sql):
            self.status = "T" if self.status == "E" else self.status
        elif tag in ("ROLLBACK", "ABORT"):
            if self.status == "I":
                self.send_notice("there is no transaction in progress", "25P01")
            tag = "ROLLBACK"
            self.status = "I"
        self.send(wire.command_complete(tag))

    def _start(self, portal: Portal, sql: str) -> None:
        """Start DuckDB on the portal's query; the reader streams batches from then on."""
        check_statement(self.cursor, sql)
        self._before_query()
        self.canceled = self.timed_out = False
        timeout = self.settings.statement_timeout_ms / 1000
        portal.timer = interruptible(self.cursor, timeout, self._on_timeout)
        self.running = True
        started = time.monotonic()
        try:
            # Straight to DuckDB's streaming result (the relation API would parse and bind it twice).
            result = _seam.submit(self.cursor, sql, portal.params or None, "stream", BATCH_ROWS)
            description = result.description
            portal.reader = result.arrow_reader() if description else None
            portal.duck_types = [column[1] for column in description or []]
        except Exception:
            self._stop(portal)
            raise
        log.debug("pid %d query started in %.1f ms: %.200s", self.pid, (time.monotonic() - started) * 1000,
                  sql)

    def _locate_error(self, sql: str) -> int | None:
        """DuckDB's relation API drops the 'LINE n: ... ^' marker; binding the statement once more through
        PREPARE (never run) gets it back, so clients can point at the mistake."""
        prefix = "PREPARE bemidb_error_position AS "
        try:
            self.cursor.execute(prefix + sql)
            self.cursor.execute("DEALLOCATE bemidb_error_position")
        except duckdb.Error as exc:
            position = from_exception(exc, prefix + sql).position
            return position - len(prefix) if position and position > len(prefix) else None
        return None

    def _on_timeout(self) -> None:
        self.timed_out = True

    def _stop(self, portal: Portal) -> None:
        self.running = False
        if portal.timer is not None:
            portal.timer.cancel()
            portal.timer = None

    def _close_portal(self, portal: Portal) -> None:
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
        error = from_exception(exc, portal.statement.plan.sql if portal else None)
        if portal is not None and error.position is None and isinstance(
                exc, (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)):
            error.position = self._locate_error(portal.statement.plan.sql)
        if portal is not None and error.position:
            error.position = _map_position(portal.statement.plan.sql, portal.statement.sql, error.position)
        if error.sqlstate == CANCELED or self.canceled or self.timed_out:
            message = ("canceling statement due to statement timeout" if self.timed_out
                       else "canceling statement due to user request")
            return PgError(CANCELED, message)
        return error

    def run_query(self, portal: Portal, max_rows: int, describe: bool) -> None:
        started = time.monotonic()
        sql = portal.statement.plan.sql
        try:
            if portal.reader is None and not portal.done:
                try:
                    self._start(portal, sql)
                except PgError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise self._query_error(exc, portal) from None
                if portal.reader is None:  # a statement that returns no rows
                    portal.done = True
                    self._stop(portal)
                    self.send(wire.command_complete(portal.statement.plan.tag))
                    return
                if portal.encoder is None:
                    portal.encoder = ResultEncoder.from_schema(portal.reader.schema, portal.result_formats,
                                                               self.settings.timezone, portal.duck_types)
                if describe:
                    self.send(portal.encoder.row_description())
            sent = 0
            for batch in self._batches(portal):
                if max_rows and sent + batch.num_rows > max_rows:
                    keep = max_rows - sent
                    portal.leftover = batch.slice(keep)
                    batch = batch.slice(0, keep)
                for chunk in portal.encoder.data_rows(batch):
                    self.send(chunk)
                sent += batch.num_rows
                if max_rows and sent >= max_rows:
                    break
            if max_rows and sent >= max_rows:
                self.send(wire.PORTAL_SUSPENDED)
                return
            portal.done = True
            self._close_portal(portal)
            tag = portal.statement.plan.tag or "SELECT"
            self.send(wire.command_complete(f"{tag} {sent}" if tag in ("SELECT", "FETCH", "MOVE") else tag))
            log.debug("pid %d query: %d rows in %.1f ms", self.pid, sent, (time.monotonic() - started) * 1000)
        except Exception:
            self._close_portal(portal)
            portal.done = True
            raise

    def run_copy(self, portal: Portal) -> None:
        inner, options = portal.statement.copy
        try:
            self._start(portal, inner)
        except PgError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._query_error(exc) from None
        try:
            copier = copy_encoder(options, self.settings.timezone)
            schema = portal.reader.schema
            n_cols = len(schema)
            self.send(wire.message(b"H", b"\0" + wire.int16(n_cols) + wire.int16(0) * n_cols))
            rows = 0
            for batch in self._batches(portal):
                self.send(wire.message(b"d", copier.encode(batch)))
                rows += batch.num_rows
            if copier.want_header:  # an empty result still gets its header line
                self.send(wire.message(b"d", copier.encode(pa.RecordBatch.from_pylist([], schema=schema))))
            self.send(wire.COPY_DONE)
            self.send(wire.command_complete(f"COPY {rows}"))
        finally:
            self._close_portal(portal)


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
