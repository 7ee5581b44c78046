"""One client connection: the Postgres v3 protocol state machine (startup, auth, simple and extended query).

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
import pyarrow as pa
from duckdb import _seam
from sqlglot.errors import ParseError

from bemidb.server import auth, rewrite, wire
from bemidb.server.engine import check_statement, interruptible
from bemidb.server.errors import (
    CANCELED,
    FEATURE_NOT_SUPPORTED,
    INSUFFICIENT_PRIVILEGE,
    PROTOCOL_VIOLATION,
    READ_ONLY,
    SYNTAX_ERROR,
    PgError,
    fatal,
    from_exception,
)
from bemidb.server.results import ResultEncoder, copy_encoder, copy_options, decode_parameters, parameter_oids
from bemidb.server.settings import SessionSettings, SettingError, canonical_name

log = logging.getLogger("bemidb.server")

FLUSH_AT = 256 * 1024  # bytes buffered before a socket write while streaming rows
BATCH_ROWS = 65_536  # rows per Arrow batch pulled from DuckDB
STARTUP_TIMEOUT = 60.0  # seconds to complete startup and authentication

_COPY_TO_STDOUT = re.compile(
    r"^\s*copy\s+(?:\((?P<query>.*)\)|(?P<table>[^\s(]+)\s*(?:\((?P<cols>[^)]*)\))?)\s+to\s+stdout\b(?P<opts>.*)$",
    re.I | re.S)
_COPY = re.compile(r"^\s*copy\b", re.I)
_ROLLBACK_TO = re.compile(r"^\s*rollback\s+(?:work\s+|transaction\s+)?to\b", re.I)


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
    guard: object = None  # bemidb.server.guard brute-force protection, when present
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


class Session:
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

    def startup(self) -> bool:
        # As Postgres's authentication_timeout: a client that never finishes logging in gives its thread back.
        self.sock.settimeout(STARTUP_TIMEOUT)
        if not self._negotiate():
            return False
        self.sock.settimeout(None)
        return True

    def _negotiate(self) -> bool:
        tls = False
        for _ in range(3):  # at most SSLRequest, GSSENCRequest, then the StartupMessage
            code, payload = wire.read_startup(self.rfile)
            if code == wire.SSL_REQUEST and not tls:
                if self.ctx.ssl_context is None:
                    self.sock.sendall(b"N")
                    continue
                self.sock.sendall(b"S")
                self.rfile.close()
                self.sock = self.ctx.ssl_context.wrap_socket(self.sock, server_side=True)
                self.rfile = self.sock.makefile("rb")
                tls = True
                continue
            if code == wire.GSSENC_REQUEST:
                self.sock.sendall(b"N")
                continue
            if code == wire.CANCEL_REQUEST:
                reader = wire.Reader(payload)
                self.ctx.cancel(reader.int32(), reader.int32())
                return False
            if code >> 16 == 3:
                params = wire.parse_startup_parameters(payload)
                unknown = [name for name in params if name.startswith("_pq_.")]
                if code & 0xFFFF or unknown:  # newer minor version or protocol options: offer 3.0
                    self.send(wire.message(b"v", wire.int32(wire.PROTOCOL_3_0) + wire.int32(len(unknown))
                                           + b"".join(wire.cstr(n) for n in unknown)))
                    params = {k: v for k, v in params.items() if not k.startswith("_pq_.")}
                return self.begin_session(params)
            raise wire.ProtocolError(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
        raise wire.ProtocolError("too many negotiation requests")

    def begin_session(self, params: dict[str, str]) -> bool:
        self.user = params.get("user", "")
        if not self.user:
            raise fatal("28000", "no PostgreSQL user name specified in startup packet")
        database = params.get("database") or self.user
        self.authenticate()
        if database != self.cfg.database:
            raise fatal("3D000", f'database "{database}" does not exist')
        self.settings = SessionSettings(user=self.user, database=database,
                                        statement_timeout=_timeout_text(self.cfg.statement_timeout))
        self.settings.apply_startup(params)
        self.cursor = self.ctx.engine.cursor()
        self.pid, self.secret = self.ctx.register(self)
        self.send(wire.authentication(0))
        statuses = self.settings.parameter_status()
        statuses.setdefault("server_version", "16.4")
        statuses["is_superuser"] = "off"
        statuses["session_authorization"] = self.user
        self.send_parameter_statuses(statuses)
        self.send(wire.backend_key_data(self.pid, self.secret))
        self.send_ready_for_query()
        return True

    def authenticate(self) -> None:
        cfg = self.cfg
        if not cfg.password:
            if cfg.user and self.user != cfg.user:
                raise fatal("28000", f'role "{self.user}" does not exist')
            return
        guard = self.ctx.guard
        host = self.address.rsplit(":", 1)[0]
        if guard is not None and guard.locked_for(host) > 0:
            raise fatal("28P01", f'password authentication failed for user "{self.user}"')
        ok = self._scram() if cfg.auth_method == "scram-sha-256" else self._md5()
        if ok and self.user == cfg.user:
            if guard is not None:
                guard.succeeded(host)
            return
        if guard is not None:
            delay = guard.failed(host)
            if delay:
                time.sleep(delay)
        # Same message for a wrong user and a wrong password: no user enumeration.
        raise fatal("28P01", f'password authentication failed for user "{self.user}"')

    def _read_password_message(self) -> bytes:
        self.flush()
        kind, payload = wire.read_message(self.rfile)
        if kind != b"p":
            raise wire.ProtocolError(f"expected password response, got message type {kind!r}")
        return payload

    def _scram(self) -> bool:
        exchange = auth.ScramExchange(self.ctx.scram)
        self.send(wire.authentication(10, wire.cstr(exchange.MECHANISM) + b"\0"))
        reader = wire.Reader(self._read_password_message())
        mechanism = reader.cstring()
        length = reader.int32()
        if mechanism != exchange.MECHANISM:
            raise fatal(PROTOCOL_VIOLATION, "client selected an invalid SASL authentication mechanism")
        client_first = reader.bytes(length) if length >= 0 else b""
        try:
            self.send(wire.authentication(11, exchange.server_first_message(client_first)))
            final = exchange.server_final_message(self._read_password_message())
        except auth.AuthFailed:
            return False
        self.send(wire.authentication(12, final))
        return True

    def _md5(self) -> bool:
        salt = secrets.token_bytes(4)
        self.send(wire.authentication(5, salt))
        response = wire.Reader(self._read_password_message()).cstring()
        return auth.md5_check(self.user, self.cfg.password, salt, response)

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


@functools.lru_cache(maxsize=2048)
def _split(sql: str) -> list[str]:
    """Statements of a query string (cached: clients repeat the same texts, and splitting means parsing)."""
    try:
        return rewrite.split(sql)
    except Exception:  # noqa: BLE001 - the splitter is best effort; DuckDB reports real syntax errors
        return [sql] if sql.strip() else []


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


def _timeout_text(seconds: float) -> str | None:
    return f"{int(seconds * 1000)}ms" if seconds else None


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
