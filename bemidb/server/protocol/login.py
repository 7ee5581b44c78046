"""The login half of a client connection: SSL/GSS negotiation, the StartupMessage, SCRAM-SHA-256 or md5
authentication, and the messages that open a session (ParameterStatus, BackendKeyData, ReadyForQuery).

A mixin of Session (session.py), which owns the socket and the output buffer: it calls `startup()` first,
then serves queries.
"""

from __future__ import annotations

import secrets
import time

from bemidb.server.errors import PROTOCOL_VIOLATION, fatal
from bemidb.server.protocol import auth, wire
from bemidb.server.settings import SessionSettings

STARTUP_TIMEOUT = 60.0  # seconds to complete startup and authentication


class Login:
    """Session's methods from the first byte to ReadyForQuery (Session holds the socket and buffer)."""

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
        self.settings.backend_pid = self.pid  # pg_backend_pid() equals the pid in BackendKeyData
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


def _timeout_text(seconds: float) -> str | None:
    return f"{int(seconds * 1000)}ms" if seconds else None
