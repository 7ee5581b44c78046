"""The login half of a client connection: SSL/GSS negotiation, the StartupMessage, SCRAM-SHA-256 or md5
authentication, and the messages that open a session (ParameterStatus, BackendKeyData, ReadyForQuery).

The session owns a Login and runs it first; it returns the logged-in SessionState, or None when the
connection only carried a CancelRequest.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import astuple

from bemidb.server.errors import PROTOCOL_VIOLATION, fatal
from bemidb.server.grants.store import Access
from bemidb.server.protocol import auth, wire
from bemidb.server.protocol.connection import Connection
from bemidb.server.protocol.context import ServerContext
from bemidb.server.protocol.state import SessionState
from bemidb.server.settings import SERVER_VERSION
from bemidb.server.sql.session_settings import SessionSettings

STARTUP_TIMEOUT = 60.0  # seconds to complete startup and authentication
# What a name that is nobody's is checked against: derived once, so failing costs what a real check costs.
_NOBODY = auth.ScramVerifier.from_password(secrets.token_hex(16))


class Login:
    def __init__(self, conn: Connection, ctx: ServerContext, cancel: Callable[[], None]):
        self.conn = conn
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.cancel = cancel  # what a CancelRequest naming the new session's pid runs
        self.user = ""  # as given in the StartupMessage (logged when authentication fails)

    def run(self) -> SessionState | None:
        # As Postgres's authentication_timeout: a client that never finishes logging in gives its thread back.
        self.conn.sock.settimeout(STARTUP_TIMEOUT)
        state = self._negotiate()
        self.conn.sock.settimeout(None)
        return state

    def _negotiate(self) -> SessionState | None:
        tls = False
        for _ in range(3):  # at most SSLRequest, GSSENCRequest, then the StartupMessage
            code, payload = self.conn.read_startup()
            if code == wire.SSL_REQUEST and not tls:
                if self.ctx.ssl_context is None:
                    self.conn.send_now(b"N")
                    continue
                self.conn.send_now(b"S")
                self.conn.start_tls(self.ctx.ssl_context)
                tls = True
                continue
            if code == wire.GSSENC_REQUEST:
                self.conn.send_now(b"N")
                continue
            if code == wire.CANCEL_REQUEST:
                reader = wire.Reader(payload)
                self.ctx.cancel(reader.int32(), reader.int32())
                return None
            if code >> 16 == 3:
                params = wire.parse_startup_parameters(payload)
                unknown = [name for name in params if name.startswith("_pq_.")]
                if code & 0xFFFF or unknown:  # newer minor version or protocol options: offer 3.0
                    self.conn.send(wire.message(b"v", wire.int32(wire.PROTOCOL_3_0) + wire.int32(len(unknown))
                                                + b"".join(wire.cstr(n) for n in unknown)))
                    params = {k: v for k, v in params.items() if not k.startswith("_pq_.")}
                return self._begin_session(params)
            raise wire.ProtocolError(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
        raise wire.ProtocolError("too many negotiation requests")

    def _begin_session(self, params: dict[str, str]) -> SessionState:
        self.user = params.get("user", "")
        if not self.user:
            raise fatal("28000", "no PostgreSQL user name specified in startup packet")
        database = params.get("database") or self.user
        access = self._authenticate()
        if database != self.cfg.database:
            raise fatal("3D000", f'database "{database}" does not exist')
        settings = SessionSettings(user=self.user, database=database,
                                   statement_timeout=_timeout_text(self.cfg.statement_timeout))
        settings.apply_startup(params)
        cursor = self.ctx.engine.cursor()
        pid, secret = self.ctx.register(self.cancel)
        settings.backend_pid = pid  # pg_backend_pid() equals the pid in BackendKeyData
        conn = self.conn
        conn.send(wire.authentication(0))
        statuses = settings.parameter_status()
        statuses.setdefault("server_version", SERVER_VERSION)
        statuses["is_superuser"] = "off"
        statuses["session_authorization"] = self.user
        conn.send_parameter_statuses(statuses)
        conn.send(wire.backend_key_data(pid, secret))
        conn.send_ready_for_query("I")
        return SessionState(self.user, pid, settings, cursor, access=access)

    def _authenticate(self) -> Access | None:
        """Checks the password; returns the Access of a users-file user (None: BEMIDB_USER, sees everything).

        Users-file users always authenticate with SCRAM against their stored verifier. With a users file,
        a name that is neither one of them nor BEMIDB_USER fails like a wrong password (no enumeration)."""
        cfg, users = self.cfg, self.ctx.users
        file_user = users.user(self.user) if users is not None else None
        if file_user is None and not cfg.password:
            if cfg.user and self.user != cfg.user and users is None:
                raise fatal("28000", f'role "{self.user}" does not exist')
            if users is None or (cfg.user and self.user == cfg.user):
                return None
        guard = self.ctx.guard
        host = self.conn.address.rsplit(":", 1)[0]
        if guard is not None and guard.locked_for(host) > 0:
            raise fatal("28P01", f'password authentication failed for user "{self.user}"')
        if file_user is not None:
            ok = self._scram(auth.ScramVerifier(*astuple(file_user.verifier)))
        elif cfg.auth_method == "md5" and cfg.password:
            ok = self._md5() and self.user == cfg.user
        else:  # no BEMIDB_PASSWORD: an exchange against a random verifier, which fails like a wrong password
            ok = self._scram(self.ctx.scram or _NOBODY) and bool(cfg.password) and self.user == cfg.user
        if ok:
            if guard is not None:
                guard.succeeded(host)
            return Access(users, self.user) if file_user is not None else None
        if guard is not None:
            delay = guard.failed(host)
            if delay:
                time.sleep(delay)
        # Same message for a wrong user and a wrong password: no user enumeration.
        raise fatal("28P01", f'password authentication failed for user "{self.user}"')

    def _read_password_message(self) -> bytes:
        self.conn.flush()
        kind, payload = self.conn.read_message()
        if kind != b"p":
            raise wire.ProtocolError(f"expected password response, got message type {kind!r}")
        return payload

    def _scram(self, verifier: auth.ScramVerifier) -> bool:
        exchange = auth.ScramExchange(verifier)
        self.conn.send(wire.authentication(10, wire.cstr(exchange.MECHANISM) + b"\0"))
        reader = wire.Reader(self._read_password_message())
        mechanism = reader.cstring()
        length = reader.int32()
        if mechanism != exchange.MECHANISM:
            raise fatal(PROTOCOL_VIOLATION, "client selected an invalid SASL authentication mechanism")
        client_first = reader.bytes(length) if length >= 0 else b""
        try:
            self.conn.send(wire.authentication(11, exchange.server_first_message(client_first)))
            final = exchange.server_final_message(self._read_password_message())
        except auth.AuthFailed:
            return False
        self.conn.send(wire.authentication(12, final))
        return True

    def _md5(self) -> bool:
        salt = secrets.token_bytes(4)
        self.conn.send(wire.authentication(5, salt))
        response = wire.Reader(self._read_password_message()).cstring()
        return auth.md5_check(self.user, self.cfg.password, salt, response)


def _timeout_text(seconds: float) -> str | None:
    return f"{int(seconds * 1000)}ms" if seconds else None
