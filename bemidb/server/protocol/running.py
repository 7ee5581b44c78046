"""Running one query of a session in DuckDB: start it (admission, statement_timeout, cancel, a second lone run
when it ran out of memory among others), stream its Arrow batches, stop it, and turn DuckDB's errors into
PgErrors that point at the client's SQL.

A portal's query may be started at Describe (the extended protocol's Bind/Describe/Execute): its reader and
result shape are then reused by the Execute that follows instead of binding the statement twice. Such a
*pre-started* portal owns the session's DuckDB cursor only until anything else uses that cursor: the runner
then closes its reader (nothing of it was sent yet) and its Execute starts it again.
"""

from __future__ import annotations

import logging
import re
import time
from contextlib import contextmanager

import duckdb
import pyarrow as pa

from bemidb.server import duckdb_calls
from bemidb.server.engine import check_statement, interruptible
from bemidb.server.errors import CANCELED, PgError, from_exception
from bemidb.server.protocol.state import Portal, SessionState

log = logging.getLogger("bemidb.server")

BATCH_ROWS = 65_536  # rows per Arrow batch pulled from DuckDB


def next_batch(holder) -> pa.RecordBatch | None:
    """The next non-empty batch of a portal or cursor (anything with `leftover` and `reader`), its leftover
    first; None at the end (the reader is dropped then). DuckDB's errors are raised as they come."""
    if holder.leftover is not None:
        batch, holder.leftover = holder.leftover, None
        return batch
    while holder.reader is not None:
        try:
            batch = holder.reader.read_next_batch()
        except StopIteration:
            holder.reader = None
            return None
        if batch.num_rows:
            return batch
    return None


class QueryRunner:
    """The session's running query: what a CancelRequest interrupts and what statement_timeout stops."""

    def __init__(self, engine, state: SessionState):
        self.engine = engine
        self.state = state
        self._interrupt = None  # the DuckDB cursor a CancelRequest interrupts when not the session's own
        self.running = False  # a query is streaming (a CancelRequest interrupts it)
        self.canceled = False
        self.timed_out = False
        self._engine_generation = -1
        self.prestarted: Portal | None = None  # started at Describe, its Execute not yet come

    def before_query(self) -> None:
        """Live tables and session settings, pushed into the cursor before it runs anything."""
        engine, state = self.engine, self.state
        engine.maybe_refresh()
        if engine.generation != self._engine_generation:  # new schemas: re-resolve search_path
            state.settings.forget(state.cursor)
            self._engine_generation = engine.generation
        state.settings.apply(state.cursor)

    def yield_cursor(self, keep: Portal | None = None) -> None:
        """Something is about to use the session's cursor. A pre-started portal's reader would be closed
        under it by DuckDB, so it is closed here and its Execute runs the query again; unless the portal is
        `keep`, the one being executed now (its rows are being sent from here on: never run again)."""
        portal, self.prestarted = self.prestarted, None
        if portal is None or portal is keep:
            return
        self.close(portal)
        portal.leftover = None

    def start(self, portal: Portal, sql: str) -> None:
        """Start DuckDB on the portal's query; the reader streams batches from then on. Errors as PgErrors."""
        self.yield_cursor(portal)
        try:
            self._start(portal, sql)
        except PgError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.query_error(exc, portal) from None

    def _start(self, portal: Portal, sql: str) -> None:
        cursor = self.state.cursor
        check_statement(cursor, sql)
        self.before_query()
        self.canceled = self.timed_out = False
        timeout = self.state.settings.statement_timeout_ms / 1000
        portal.timer = interruptible(cursor, timeout, self._on_timeout)
        self.running = True  # from here a CancelRequest counts, also while the query waits for its turn
        gate, should_stop = self.engine.gate, lambda: self.canceled or self.timed_out
        if not gate.enter(self, portal, should_stop):
            self.stop(portal)
            raise duckdb.InterruptException("INTERRUPT Error: canceled while waiting to run")
        portal.admitted = True
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
            self.stop(portal)
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

    def batches(self, portal: Portal):
        """The portal's batches, leftover first; DuckDB errors mid-stream become PgErrors (57014 on cancel)."""
        while True:
            try:
                batch = next_batch(portal)
            except Exception as exc:  # noqa: BLE001
                raise self.query_error(exc) from None
            if batch is None:
                return
            yield batch

    def _on_timeout(self) -> None:
        self.timed_out = True

    def cancel(self) -> None:
        """CancelRequest from another connection: interrupt the running query, if any."""
        if self.running:
            self.canceled = True
            (self._interrupt or self.state.cursor).interrupt()

    @contextmanager
    def guarded(self, duck, portal: Portal):
        """Run calls on a cursor's own DuckDB cursor as a query runs: cancel, statement_timeout, error mapping."""
        self.canceled = self.timed_out = False
        timer = interruptible(duck, self.state.settings.statement_timeout_ms / 1000, self._on_timeout)
        self._interrupt, self.running = duck, True
        try:
            yield
        except PgError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.query_error(exc, portal) from None
        finally:
            self._interrupt, self.running = None, False
            if timer is not None:
                timer.cancel()

    def stop(self, portal: Portal) -> None:
        self.running = False
        if portal.admitted:  # a portal is stopped when it ends and again when closed: the gate is left once
            portal.admitted = False
            self.engine.gate.leave(self, portal)
        if portal.timer is not None:
            portal.timer.cancel()
            portal.timer = None

    def close(self, portal: Portal) -> None:
        if self.prestarted is portal:
            self.prestarted = None
        self.stop(portal)
        reader, portal.reader = portal.reader, None
        if reader is not None:
            try:
                reader.close()
            except Exception:  # noqa: BLE001
                pass

    def query_error(self, exc: BaseException, portal: Portal | None = None) -> PgError:
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
