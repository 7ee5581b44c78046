"""One client connection: the Postgres v3 protocol state machine (simple and extended query).

Shaped like buenavista's postgres.py: one `handle_<message>` method per client message. The session owns its
parts and calls them: the Connection (socket and output buffer), the Login (startup and authentication, run
first) and the Executor (running statements); none of them imports the session.
"""

from __future__ import annotations

import functools
import logging
import socket
import time

from bemidb.server.errors import (
    FEATURE_NOT_SUPPORTED,
    PROTOCOL_VIOLATION,
    SYNTAX_ERROR,
    PgError,
    fatal,
    from_exception,
)
from bemidb.server.protocol import failures, wire
from bemidb.server.protocol.connection import Connection
from bemidb.server.protocol.context import ServerContext
from bemidb.server.protocol.execution import Executor
from bemidb.server.protocol.login import Login
from bemidb.server.protocol.results import decode_parameters
from bemidb.server.protocol.state import Portal, SessionState, Statement
from bemidb.server.sql import rewrite
from bemidb.server.sql.declared_parameters import cast_json_parameters

log = logging.getLogger("bemidb.server")


class Session:
    def __init__(self, ctx: ServerContext, sock: socket.socket, address: str):
        self.ctx = ctx
        self.conn = Connection(sock, address)
        self.address = address
        self.state: SessionState | None = None  # once logged in
        self.executor: Executor | None = None
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_until_sync = False
        self.terminated = False
        self.current_sql = ""  # the statement being parsed or run, for the log line when it fails

    @property
    def running(self) -> bool:
        return self.executor is not None and self.executor.running

    @property
    def pid(self) -> int:
        return self.state.pid if self.state else 0

    def cancel(self) -> None:
        """CancelRequest from another connection (or shutdown): interrupt the running query, if any."""
        if self.executor is not None:
            self.executor.cancel()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        login = Login(self.conn, self.ctx, self.cancel)
        try:
            self.state = login.run()
            if self.state is None:
                return
            self.executor = Executor(self.conn, self.ctx.engine, self.state, self.statements)
            log.debug("connection %s: user %s, pid %d", self.address, self.state.user, self.pid)
            while not self.terminated:
                kind, payload = self.conn.read_message()
                self.dispatch(kind, payload)
        except (wire.ClientGone, ConnectionError, TimeoutError, OSError) as exc:
            if not isinstance(exc, wire.ClientGone):
                log.debug("connection %s: socket error %s", self.address, exc)
        except wire.ProtocolError as exc:
            log.info("connection %s: protocol violation: %s", self.address, exc)
            self.conn.send_fatal(fatal(PROTOCOL_VIOLATION, str(exc)))
        except PgError as exc:  # FATAL during startup/auth
            if exc.sqlstate.startswith("28"):
                log.info("connection %s: authentication failed for user %r", self.address, login.user)
            else:
                log.info("connection %s: %s", self.address, exc.message)
            self.conn.send_fatal(exc)
        except Exception:  # noqa: BLE001 - one client's bug must never take the server down
            log.exception("connection %s: internal error", self.address)
            self.conn.send_fatal(fatal("XX000", "internal error"))
        finally:
            self.close()
            log.debug("connection %s closed after %.1f s", self.address, time.monotonic() - started)

    def close(self) -> None:
        self._close_portals()
        if self.executor is not None:
            self.executor.cursors.close_all()
        if self.state is not None:
            self.ctx.unregister(self.state.pid)
            try:
                self.state.cursor.close()
            except Exception:  # noqa: BLE001 - closing a broken cursor must not hide the reason we close
                pass
        self.conn.close()

    def _close_portals(self) -> None:
        if self.executor is None:
            return
        for portal in self.portals.values():
            self.executor.close_portal(portal)
        self.portals.clear()

    # -- dispatch and the one error path ---------------------------------------------------------------------

    def dispatch(self, kind: bytes, payload: bytes) -> None:
        if self.skip_until_sync and kind not in (b"S", b"X"):
            return  # after an error in the extended protocol, everything up to Sync is discarded
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise wire.ProtocolError(f"invalid frontend message type {kind[0]}")
        try:
            handler(self, wire.Reader(payload))
        except (wire.ProtocolError, wire.ClientGone, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - becomes an ErrorResponse; the connection stays usable
            self.fail(exc, extended=kind != b"Q")

    def fail(self, exc: BaseException, extended: bool, sql: str | None = None) -> None:
        """Every statement error reaches the client here: ErrorResponse, the transaction marked failed, then
        ReadyForQuery (simple query) or skipping to Sync (extended)."""
        error = from_exception(exc, sql)
        if error.sqlstate == "XX000":
            log.warning("internal error for %s: %s", self.address, exc, exc_info=True)
        failures.report(error, sql or self.current_sql, self.ctx.engine.tables(), self.pid)
        self.conn.send_error(error)
        if self.state.status == "T":
            self.state.status = "E"
        if extended:
            self.skip_until_sync = True
            self.conn.flush()  # as Postgres: the error goes out now, a Flush after it would be discarded
        else:
            self.conn.send_ready_for_query(self.state.status)

    # -- simple query ----------------------------------------------------------------------------------------

    def handle_query(self, reader: wire.Reader) -> None:
        sql = reader.cstring()
        statements = split_statements(sql)
        if not statements:
            self.conn.send(wire.EMPTY_QUERY_RESPONSE)
        for text in statements:
            self.current_sql = text
            try:
                statement = self.executor.plan(text)
                self.executor.execute(Portal(statement, [], []), 0, describe=True)
            except Exception as exc:  # noqa: BLE001 - the rest of the query string is skipped, as Postgres does
                self.fail(exc, extended=False, sql=text)
                return
        self.conn.send_ready_for_query(self.state.status)

    # -- extended query --------------------------------------------------------------------------------------

    def handle_parse(self, reader: wire.Reader) -> None:
        name = reader.cstring()
        sql = self.current_sql = reader.cstring()
        n = reader.count(4)
        oids = [reader.uint32() for _ in range(n)]
        if name and name in self.statements:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        parts = split_statements(sql)
        if len(parts) > 1:
            raise PgError(SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement")
        statement = self.executor.plan(cast_json_parameters(parts[0], oids) if parts else "")
        statement.sql, statement.param_oids = parts[0] if parts else "", oids  # the text as the client sent it
        # Bound now, as Postgres analyses at Parse: an unknown table fails here, and the types are kept.
        statement.param_oids = self.executor.parameter_types(statement)
        self.statements[name] = statement
        self.conn.send(wire.PARSE_COMPLETE)

    def handle_bind(self, reader: wire.Reader) -> None:
        portal_name = reader.cstring()
        statement_name = reader.cstring()
        formats = [reader.int16() for _ in range(reader.count(2))]
        values = []
        for _ in range(reader.count(4)):
            length = reader.int32()
            values.append(None if length == -1 else reader.bytes(length))
        result_formats = [reader.int16() for _ in range(reader.count(2))]
        statement = self.statements.get(statement_name)
        if statement is None:
            raise PgError("26000", f'prepared statement "{statement_name}" does not exist')
        if portal_name and portal_name in self.portals:
            raise PgError("42P03", f'cursor "{portal_name}" already exists')
        if any(f not in (0, 1) for f in formats + result_formats):
            raise PgError(PROTOCOL_VIOLATION, "unsupported format code")
        if len(formats) not in (0, 1, len(values)):
            raise PgError(PROTOCOL_VIOLATION,
                          f"bind message has {len(formats)} parameter formats but {len(values)} parameters")
        oids = statement.param_oids
        if len(values) != len(oids):
            raise PgError(PROTOCOL_VIOLATION, f"bind message supplies {len(values)} parameters, but prepared "
                                              f'statement "{statement_name}" requires {len(oids)}')
        params = decode_parameters(values, formats, oids)
        old = self.portals.pop(portal_name, None)
        if old is not None:
            self.executor.close_portal(old)
        self.portals[portal_name] = Portal(statement, params, result_formats)
        self.conn.send(wire.BIND_COMPLETE)

    def handle_describe(self, reader: wire.Reader) -> None:
        what = reader.byte()
        name = reader.cstring()
        if what == b"S":
            statement = self.statements.get(name)
            if statement is None:
                raise PgError("26000", f'prepared statement "{name}" does not exist')
            oids = statement.param_oids
            self.conn.send(wire.message(b"t", wire.int16(len(oids)) + b"".join(wire.uint32(o) for o in oids)))
            shape = self.executor.describe(statement, None, [])
            self.conn.send(shape.row_description() if shape else wire.NO_DATA)
        elif what == b"P":
            portal = self.portals.get(name)
            if portal is None and name in self.state.cursors:  # a DECLAREd cursor is a portal too
                shape = self.executor.cursors.encoder(name, [])
                self.conn.send(shape.row_description())
                return
            if portal is None:
                raise PgError("34000", f'portal "{name}" does not exist')
            if portal.encoder is None:
                portal.encoder = self.executor.describe_portal(portal)
            self.conn.send(portal.encoder.row_description() if portal.encoder else wire.NO_DATA)
        else:
            raise wire.ProtocolError(f"invalid DESCRIBE message subtype {what!r}")

    def handle_execute(self, reader: wire.Reader) -> None:
        name = reader.cstring()
        max_rows = reader.int32()
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        self.current_sql = portal.statement.sql
        self.executor.execute(portal, max(max_rows, 0), describe=False)

    def handle_close(self, reader: wire.Reader) -> None:
        what = reader.byte()
        name = reader.cstring()
        if what == b"S":
            self.statements.pop(name, None)
        elif what == b"P":
            portal = self.portals.pop(name, None)
            if portal is not None:
                self.executor.close_portal(portal)
        else:
            raise wire.ProtocolError(f"invalid CLOSE message subtype {what!r}")
        self.conn.send(wire.CLOSE_COMPLETE)

    def handle_sync(self, _reader: wire.Reader) -> None:
        self.skip_until_sync = False
        if self.state.status == "I":  # the implicit transaction ends: its portals go (named ones too, as Postgres)
            self._close_portals()
        self.conn.send_ready_for_query(self.state.status)

    def handle_flush(self, _reader: wire.Reader) -> None:
        self.conn.flush()

    def handle_terminate(self, _reader: wire.Reader) -> None:
        self.terminated = True

    def handle_function_call(self, _reader: wire.Reader) -> None:
        raise PgError(FEATURE_NOT_SUPPORTED, "function call messages are not supported")

    def handle_copy_from_client(self, _reader: wire.Reader) -> None:
        pass  # CopyData/CopyDone/CopyFail outside COPY FROM STDIN: ignored, as Postgres does


@functools.lru_cache(maxsize=2048)
def split_statements(sql: str) -> tuple[str, ...]:
    """Statements of a query string (cached: clients repeat the same texts, and splitting means parsing)."""
    try:
        return tuple(rewrite.split(sql))
    except Exception:  # noqa: BLE001 - the splitter is best effort; DuckDB reports real syntax errors
        return (sql,) if sql.strip() else ()


_HANDLERS = {
    b"Q": Session.handle_query,
    b"P": Session.handle_parse,
    b"B": Session.handle_bind,
    b"D": Session.handle_describe,
    b"E": Session.handle_execute,
    b"C": Session.handle_close,
    b"S": Session.handle_sync,
    b"H": Session.handle_flush,
    b"X": Session.handle_terminate,
    b"F": Session.handle_function_call,
    b"d": Session.handle_copy_from_client,
    b"c": Session.handle_copy_from_client,
    b"f": Session.handle_copy_from_client,
}
