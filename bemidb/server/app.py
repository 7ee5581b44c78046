"""`bemidb serve`: the threaded Postgres wire-protocol server over the shared DuckDB engine.

One thread per connection (socketserver.ThreadingTCPServer); DuckDB releases the GIL while it works, so
queries of different clients run in parallel. SIGTERM/SIGINT: stop accepting, give running queries a grace
period, interrupt the rest, exit 0.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import socket
import socketserver
import ssl
import threading
import time

from bemidb.config import Config
from bemidb.console import UserError
from bemidb.server.errors import fatal
from bemidb.server.protocol import auth, wire
from bemidb.server.protocol.context import ServerContext
from bemidb.server.protocol.session import Session

log = logging.getLogger("bemidb.server")

SHUTDOWN_GRACE = 5.0  # seconds running queries get to finish on SIGTERM
IDLE_KEEPALIVE = 60  # seconds before TCP keepalive probes a silent client (dead peers free their thread)


class _Handler(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        address = f"{self.client_address[0]}:{self.client_address[1]}"
        _tune(sock)
        if not self.server.admit():
            _refuse(sock, "53300", "sorry, too many clients already")
            return
        try:
            session = Session(self.server.ctx, sock, address)
            self.server.track(session, True)
            try:
                session.run()
            finally:
                self.server.track(session, False)
        finally:
            self.server.release()


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", IDLE_KEEPALIVE), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 5)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _refuse(sock: socket.socket, sqlstate: str, message: str) -> None:
    """Answer the startup packet with a FATAL error and close (what Postgres does when it is full)."""
    try:
        sock.settimeout(5)
        rfile = sock.makefile("rb")
        code, _ = wire.read_startup(rfile)
        if code == wire.SSL_REQUEST or code == wire.GSSENC_REQUEST:
            sock.sendall(b"N")
            wire.read_startup(rfile)
        sock.sendall(wire.notice_or_error(b"E", fatal(sqlstate, message).fields()))
    except (OSError, wire.ProtocolError, wire.ClientGone):
        pass
    finally:
        sock.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    block_on_close = False

    def __init__(self, address: tuple[str, int], ctx: ServerContext, max_connections: int):
        self.ctx = ctx
        self.max_connections = max_connections
        self._active = 0
        self._count_lock = threading.Lock()
        self.live_sessions: set[Session] = set()
        super().__init__(address, _Handler)

    def admit(self) -> bool:
        with self._count_lock:
            if self._active >= self.max_connections:
                return False
            self._active += 1
            return True

    def release(self) -> None:
        with self._count_lock:
            self._active -= 1

    def track(self, session: Session, live: bool) -> None:
        with self._count_lock:
            (self.live_sessions.add if live else self.live_sessions.discard)(session)

    def running_queries(self) -> list[Session]:
        with self._count_lock:
            return [s for s in self.live_sessions if s.running]

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver's signature
        log.exception("unhandled error for client %s", client_address)


def _ssl_context(cfg: Config) -> ssl.SSLContext | None:
    if not cfg.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise UserError(f"BEMIDB_TLS_CERT/BEMIDB_TLS_KEY: cannot load the certificate and key: {exc}", 2) from None
    return context


def _guard():
    try:
        from bemidb.server.protocol import guard
    except ModuleNotFoundError:
        return None
    factory = getattr(guard, "LoginGuard", None)
    return factory() if factory else None


def _users(cfg: Config):
    if not cfg.users_file:
        return None
    from bemidb.server.grants.store import UsersStore
    from bemidb.server.grants.users import UsersFileError

    try:
        return UsersStore(cfg.users_file, reserved=cfg.user)
    except UsersFileError as exc:
        raise UserError(str(exc), 2) from None


def serve(cfg: Config, args=None) -> int:  # noqa: ANN001 - argparse namespace, unused
    from bemidb.server.engine import Engine

    ssl_context = _ssl_context(cfg)
    users = _users(cfg)  # a bad users file stops serve before the engine does any work
    try:
        engine = Engine(cfg, cfg.user)
    except Exception as exc:  # noqa: BLE001 - a clear line instead of a traceback (catalog/bucket down)
        raise UserError(f"cannot open the catalog: {exc}") from None
    ctx = ServerContext(cfg, engine, ssl_context=ssl_context, guard=_guard(), users=users,
                        scram=auth.ScramVerifier.from_password(cfg.password) if cfg.password else None)
    try:
        server = Server((cfg.host, cfg.port), ctx, cfg.max_connections)
    except OSError as exc:
        raise UserError(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}") from None

    stop = threading.Event()

    def on_signal(signum, _frame) -> None:  # noqa: ANN001
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stop.set()

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: dump every thread's stack
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if ctx.users is not None:  # `kill -HUP <pid>`: read the users file again, connections stay
        signal.signal(signal.SIGHUP, lambda _signum, _frame: ctx.users.reload())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="accept",
                              daemon=True)
    thread.start()
    log.info("bemidb serving database %r on %s:%d (%s, %d tables%s)", cfg.database, cfg.host,
             server.server_address[1], "password " + cfg.auth_method if cfg.password else "trust",
             len(engine.tables()), ", TLS" if ssl_context else "")
    while not stop.wait(0.5):
        pass
    server.shutdown()  # stop accepting
    server.server_close()
    deadline = time.monotonic() + SHUTDOWN_GRACE
    while server.running_queries() and time.monotonic() < deadline:
        time.sleep(0.1)
    for session in server.running_queries():
        session.cancel()
    log.info("bemidb server stopped")
    return 0
