"""One client's socket: reading messages, and the output buffer every reply goes through.

Output is buffered and flushed when the client must see it (ReadyForQuery, Flush, auth steps, or when the
buffer is large), so a result streams out in big socket writes as DuckDB yields Arrow batches.
"""

from __future__ import annotations

import socket

from bemidb.server.errors import PgError
from bemidb.server.protocol import wire

FLUSH_AT = 256 * 1024  # bytes buffered before a socket write while streaming rows


class Connection:
    def __init__(self, sock: socket.socket, address: str):
        self.sock = sock
        self.address = address
        self.rfile = sock.makefile("rb")
        self.out = bytearray()

    # -- input -----------------------------------------------------------------------------------------------

    def read_startup(self) -> tuple[int, bytes]:
        return wire.read_startup(self.rfile)

    def read_message(self) -> tuple[bytes, bytes]:
        return wire.read_message(self.rfile)

    def start_tls(self, ssl_context) -> None:
        """After answering 'S' to SSLRequest: the rest of the conversation is encrypted."""
        self.rfile.close()
        self.sock = ssl_context.wrap_socket(self.sock, server_side=True)
        self.rfile = self.sock.makefile("rb")

    # -- output ----------------------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if len(data) >= FLUSH_AT:  # a big chunk of DataRows goes out as is, not copied into the buffer
            self.flush()
            self.sock.sendall(data)
            return
        self.out += data
        if len(self.out) >= FLUSH_AT:
            self.flush()

    def send_now(self, data: bytes) -> None:
        """Unbuffered, before the protocol proper starts (the one-byte SSL/GSS answers)."""
        self.sock.sendall(data)

    def flush(self) -> None:
        if self.out:
            data, self.out = self.out, bytearray()
            self.sock.sendall(data)

    def send_error(self, error: PgError) -> None:
        self.send(wire.notice_or_error(b"E", error.fields()))

    def send_notice(self, message: str, sqlstate: str = "01000", severity: str = "WARNING") -> None:
        self.send(wire.notice_or_error(b"N", {"S": severity, "V": severity, "C": sqlstate, "M": message}))

    def send_ready_for_query(self, status: str) -> None:
        self.send(wire.ready_for_query(status))
        self.flush()

    def send_parameter_statuses(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self.send(wire.parameter_status(name, value))

    def send_fatal(self, error: PgError) -> None:
        """The last word before closing: whatever was buffered is dropped, the error goes out now."""
        try:
            self.out.clear()
            self.send_error(error)
            self.flush()
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass
