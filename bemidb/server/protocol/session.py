"""One client connection: the Postgres v3 protocol state machine (simple and extended query; the login that
comes first is in login.py, running a portal's statement in execution.py).

Shaped like buenavista's postgres.py: one `handle_<message>` method per client message, `send_<message>`
writers. Output is buffered and flushed when the client must see it (ReadyForQuery, Flush, auth steps, or
when the buffer is large), so a result streams out in big socket writes as DuckDB yields Arrow batches.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

import duckdb
from sqlglot.errors import ParseError

from bemidb.server.errors import (
    FEATURE_NOT_SUPPORTED,
    INSUFFICIENT_PRIVILEGE,
    PROTOCOL_VIOLATION,
    READ_ONLY,
    SYNTAX_ERROR,
    PgError,
    fatal,
    from_exception,
)
from bemidb.server.protocol import auth, wire
from bemidb.server.protocol.execution import Execution
from bemidb.server.protocol.login import Login
from bemidb.server.protocol.results import ResultEncoder, copy_options, decode_parameters, parameter_oids
from bemidb.server.settings import SessionSettings, canonical_name
from bemidb.server.sql import rewrite

log = logging.getLogger("bemidb.server")

FLUSH_AT = 256 * 1024  # bytes buffered before a socket write while streaming rows

_COPY_TO_STDOUT = re.compile(
    r"^\s*copy\s+(?:\((?P<query>.*)\)|(?P<table>[^\s(]+)\s*(?:\((?P<cols>[^)]*)\))?)\s+to\s+stdout\b(?P<opts>.*)$",
    re.I | re.S)
_COPY = re.compile(r"^\s*copy\b", re.I)


@dataclass
class Statement:
    """A parsed (prepared) statement: what Parse stored."""

    sql: str  # as the client sent it
    plan: rewrite.Translated
    param_oids: list[int]
    copy: tuple[str, dict] | None = None  # (inner SELECT, options) for COPY ... TO STDOUT


@dataclass
class Portal:
    """A bound statement, possibly half-read (Execute with a row limit)."""

    statement: Statement
    params: list
    result_formats: list[int]
    reader: object = None  # pyarrow RecordBatchReader once running
    encoder: ResultEncoder | None = None
    leftover: object = None  # the unsent tail of a batch after a row limit
    done: bool = False
    timer: threading.Timer | None = None
    duck_types: list = field(default_factory=list)  # DuckDB column types of the running result


@dataclass
class ServerContext:
    """What every session shares: settings, the engine, auth material, TLS, the cancel registry."""

    cfg: object
    engine: object
    ssl_context: object = None
    scram: auth.ScramVerifier | None = None
    guard: object = None  # bemidb.server.protocol.guard brute-force protection, when present
    sessions: dict[int, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_pid: int = 0

    def register(self, session: Session) -> tuple[int, int]:
        with self.lock:
            self.next_pid = self.next_pid + 1 if self.next_pid else 10_000 + secrets.randbelow(20_000)
            self.sessions[self.next_pid] = session
            return self.next_pid, secrets.randbits(31)

    def unregister(self, pid: int) -> None:
        with self.lock:
            self.sessions.pop(pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        with self.lock:
            session = self.sessions.get(pid)
        if session is not None and secrets.compare_digest(str(session.secret), str(secret)):
            session.cancel()


class Session(Login, Execution):
    def __init__(self, ctx: ServerContext, sock: socket.socket, address: str):
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.sock = sock
        self.address = address
        self.rfile = sock.makefile("rb")
        self.out = bytearray()
        self.pid = 0
        self.secret = 0
        self.user = ""
        self.cursor: duckdb.DuckDBPyConnection | None = None
        self.settings: SessionSettings | None = None
        self.status = "I"  # ReadyForQuery: I idle, T in a transaction block, E failed transaction block
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.skip_until_sync = False
        self.running = False
        self.canceled = False
        self.timed_out = False
        self.terminated = False
        self._engine_generation = -1

    # -- output ----------------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if len(data) >= FLUSH_AT:  # a big chunk of DataRows goes out as is, not copied into the buffer
            self.flush()
            self.sock.sendall(data)
            return
        self.out += data
        if len(self.out) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.out:
            data, self.out = self.out, bytearray()
            self.sock.sendall(data)

    def send_error(self, error: PgError) -> None:
        self.send(wire.notice_or_error(b"E", error.fields()))

    def send_notice(self, message: str, sqlstate: str = "01000", severity: str = "WARNING") -> None:
        self.send(wire.notice_or_error(b"N", {"S": severity, "V": severity, "C": sqlstate, "M": message}))

    def send_ready_for_query(self) -> None:
        self.send(wire.ready_for_query(self.status))
        self.flush()

    def send_parameter_statuses(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self.send(wire.parameter_status(name, value))

    # -- lifecycle -------------------------------------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        try:
            if not self.startup():
                return
            log.debug("connection %s: user %s, pid %d", self.address, self.user, self.pid)
            while not self.terminated:
                kind, payload = wire.read_message(self.rfile)
                self.dispatch(kind, payload)
        except (wire.ClientGone, ConnectionError, TimeoutError, OSError) as exc:
            if not isinstance(exc, wire.ClientGone):
                log.debug("connection %s: socket error %s", self.address, exc)
        except wire.ProtocolError as exc:
            log.info("connection %s: protocol violation: %s", self.address, exc)
            self._send_fatal(fatal(PROTOCOL_VIOLATION, str(exc)))
        except PgError as exc:  # FATAL during startup/auth
            if exc.sqlstate.startswith("28"):
                log.info("connection %s: authentication failed for user %r", self.address, self.user)
            else:
                log.info("connection %s: %s", self.address, exc.message)
            self._send_fatal(exc)
        except Exception:  # noqa: BLE001 - one client's bug must never take the server down
            log.exception("connection %s: internal error", self.address)
            self._send_fatal(fatal("XX000", "internal error"))
        finally:
            self.close()
            log.debug("connection %s closed after %.1f s", self.address, time.monotonic() - started)

    def _send_fatal(self, error: PgError) -> None:
        try:
            self.out.clear()
            self.send_error(error)
            self.flush()
        except OSError:
            pass

    def close(self) -> None:
        for portal in self.portals.values():
            self._close_portal(portal)
        self.portals.clear()
        if self.pid:
            self.ctx.unregister(self.pid)
        if self.cursor is not None:
            try:
                self.cursor.close()
            except duckdb.Error:
                pass
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass

    def cancel(self) -> None:
        """CancelRequest from another connection: interrupt the running query, if any."""
        if self.running and self.cursor is not None:
            self.canceled = True
            self.cursor.interrupt()

    # -- startup: SSL/GSSENC negotiation, CancelRequest, StartupMessage, authentication --------------------

    # -- dispatch --------------------------------------------------------------------------------------------

    def dispatch(self, kind: bytes, payload: bytes) -> None:
        if self.skip_until_sync and kind not in (b"S", b"X"):
            return  # after an error in the extended protocol, everything up to Sync is discarded
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise wire.ProtocolError(f"invalid frontend message type {kind[0]}")
        try:
            handler(self, wire.Reader(payload))
        except wire.ProtocolError:
            raise
        except (wire.ClientGone, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - becomes an ErrorResponse; the connection stays usable
            error = from_exception(exc)
            if error.sqlstate == "XX000":
                log.warning("internal error for %s: %s", self.address, exc, exc_info=True)
            self.fail(error, extended=kind != b"Q")

    def fail(self, error: PgError, extended: bool) -> None:
        log.info("pid %d: error %s: %s", self.pid, error.sqlstate, error.message)
        self.send_error(error)
        if self.status == "T":
            self.status = "E"
        if extended:
            self.skip_until_sync = True
            self.flush()  # as Postgres: the error goes out now, a Flush after it would be discarded
        else:
            self.send_ready_for_query()

    # -- simple query ----------------------------------------------------------------------------------------

    def handle_query(self, reader: wire.Reader) -> None:
        sql = reader.cstring()
        statements = _split(sql)
        if not statements:
            self.send(wire.EMPTY_QUERY_RESPONSE)
        for text in statements:
            try:
                statement = self.prepare(text)
                portal = Portal(statement, [], [])
                self.execute_portal(portal, 0, describe=True)
            except Exception as exc:  # noqa: BLE001
                error = from_exception(exc, text)
                if error.sqlstate == "XX000":
                    log.warning("internal error for %s: %s", self.address, exc, exc_info=True)
                log.info("pid %d: error %s: %s", self.pid, error.sqlstate, error.message)
                self.send_error(error)
                if self.status == "T":
                    self.status = "E"
                break
        self.send_ready_for_query()

    # -- extended query --------------------------------------------------------------------------------------

    def handle_parse(self, reader: wire.Reader) -> None:
        name = reader.cstring()
        sql = reader.cstring()
        n = reader.count(4)
        oids = [reader.uint32() for _ in range(n)]
        if name and name in self.statements:
            raise PgError("42P05", f'prepared statement "{name}" already exists')
        parts = _split(sql)
        if len(parts) > 1:
            raise PgError(SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement")
        statement = self.prepare(parts[0] if parts else "")
        statement.param_oids = oids
        # Bound now, as Postgres analyses at Parse: an unknown table fails here, and the types are kept.
        statement.param_oids = self.parameter_types(statement)
        self.statements[name] = statement
        self.send(wire.PARSE_COMPLETE)

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
            self._close_portal(old)
        self.portals[portal_name] = Portal(statement, params, result_formats)
        self.send(wire.BIND_COMPLETE)

    def handle_describe(self, reader: wire.Reader) -> None:
        what = reader.byte()
        name = reader.cstring()
        if what == b"S":
            statement = self.statements.get(name)
            if statement is None:
                raise PgError("26000", f'prepared statement "{name}" does not exist')
            oids = statement.param_oids
            self.send(wire.message(b"t", wire.int16(len(oids)) + b"".join(wire.uint32(o) for o in oids)))
            shape = self.describe(statement, None, [])
            self.send(shape.row_description() if shape else wire.NO_DATA)
        elif what == b"P":
            portal = self.portals.get(name)
            if portal is None:
                raise PgError("34000", f'portal "{name}" does not exist')
            if portal.encoder is None:
                portal.encoder = self.describe(portal.statement, portal.params, portal.result_formats)
            self.send(portal.encoder.row_description() if portal.encoder else wire.NO_DATA)
        else:
            raise wire.ProtocolError(f"invalid DESCRIBE message subtype {what!r}")

    def handle_execute(self, reader: wire.Reader) -> None:
        name = reader.cstring()
        max_rows = reader.int32()
        portal = self.portals.get(name)
        if portal is None:
            raise PgError("34000", f'portal "{name}" does not exist')
        self.execute_portal(portal, max(max_rows, 0), describe=False)

    def handle_close(self, reader: wire.Reader) -> None:
        what = reader.byte()
        name = reader.cstring()
        if what == b"S":
            self.statements.pop(name, None)
        elif what == b"P":
            portal = self.portals.pop(name, None)
            if portal is not None:
                self._close_portal(portal)
        else:
            raise wire.ProtocolError(f"invalid CLOSE message subtype {what!r}")
        self.send(wire.CLOSE_COMPLETE)

    def handle_sync(self, _reader: wire.Reader) -> None:
        self.skip_until_sync = False
        if self.status == "I":  # the implicit transaction ends: its portals go (named ones too, as Postgres)
            for portal in self.portals.values():
                self._close_portal(portal)
            self.portals.clear()
        self.send_ready_for_query()

    def handle_flush(self, _reader: wire.Reader) -> None:
        self.flush()

    def handle_terminate(self, _reader: wire.Reader) -> None:
        self.terminated = True

    def handle_function_call(self, _reader: wire.Reader) -> None:
        raise PgError(FEATURE_NOT_SUPPORTED, "function call messages are not supported")

    def handle_copy_from_client(self, _reader: wire.Reader) -> None:
        pass  # CopyData/CopyDone/CopyFail outside COPY FROM STDIN: ignored, as Postgres does

    # -- statements ------------------------------------------------------------------------------------------

    def prepare(self, sql: str) -> Statement:
        """Classify one statement (rewrite.translate), or recognise COPY ... TO STDOUT."""
        m = _COPY_TO_STDOUT.match(sql.strip().rstrip(";"))
        if m:
            inner = m.group("query") or f"SELECT {m.group('cols') or '*'} FROM {m.group('table')}"
            plan = self._translate(inner)
            if plan.kind != "query":
                raise PgError(SYNTAX_ERROR, "COPY needs a query")
            return Statement(sql, plan, [], copy=(plan.sql, copy_options(m.group("opts"))))
        if _COPY.match(sql):
            if re.search(r"\bfrom\b", sql, re.I) and not re.search(r"\bto\b", sql, re.I):
                raise PgError(READ_ONLY, "cannot execute COPY FROM in a read-only transaction")
            raise PgError(INSUFFICIENT_PRIVILEGE, "COPY to a file is not allowed; use COPY ... TO STDOUT")
        return Statement(sql, self._translate(sql), [])

    def _translate(self, sql: str) -> rewrite.Translated:
        if not sql.strip():
            return rewrite.Translated("empty", "")
        try:
            return rewrite.translate(sql)
        except ParseError as exc:
            # sqlglot could not parse it; DuckDB may (its own dialect): run as is if it parses there.
            try:
                self.cursor.extract_statements(sql)
            except duckdb.Error as duck_exc:
                raise from_exception(duck_exc, sql) from None
            except Exception:  # noqa: BLE001
                raise from_exception(exc, sql) from None
            return rewrite.Translated("query", "SELECT", sql=sql)

    def parameter_types(self, statement: Statement) -> list[int]:
        """Parameter OIDs: the client's where given, else what DuckDB infers from the query (text if unknown)."""
        given = statement.param_oids
        if statement.plan.kind != "query" or statement.copy:
            return given
        self._before_query()
        try:
            inferred = parameter_oids(self.cursor, statement.plan.sql)
        except duckdb.Error as exc:  # e.g. an unknown table: Postgres reports it at Parse/Describe too
            raise self._query_error(exc, Portal(statement, [], [])) from None
        if len(inferred) < len(given):
            inferred += [25] * (len(given) - len(inferred))
        for index, oid in statement.plan.param_hints:  # $1::oid[] stays oid[] (DuckDB would say bigint[])
            if index < len(inferred):
                inferred[index] = oid
        return [g or i for g, i in zip(given + [0] * (len(inferred) - len(given)), inferred, strict=True)]

    def describe(self, statement: Statement, params: list | None, formats: list[int]) -> ResultEncoder | None:
        """The result encoder (RowDescription) of a statement without running it; None when no rows."""
        plan = statement.plan
        if plan.kind == "show":
            return ResultEncoder.text_columns([self._show_header(plan.name)], formats)
        if plan.kind == "set_config":
            return ResultEncoder.text_columns([plan.new_name or "set_config"], formats)
        if plan.kind != "query" or statement.copy:
            return None
        self._before_query()
        return ResultEncoder.from_bind(self.cursor, plan.sql, params, formats, self.settings.timezone)

    def _show_header(self, name: str | None) -> str:
        return "all" if (name or "").lower() == "all" else canonical_name(name or "")

@functools.lru_cache(maxsize=2048)
def _split(sql: str) -> tuple[str, ...]:
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
