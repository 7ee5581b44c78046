"""A deliberately raw Postgres v3 client for attacks: builds any frame (valid or not) and reads replies.

Real clients refuse to send what an attacker sends (wrong lengths, bad UTF-8, a Bind with the wrong parameter
count), so the hardening tests and the fuzzer speak the protocol byte by byte here. It also does SCRAM and md5
itself so that brute-force tests can log in from a chosen source address (127.0.0.2, ...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct
from dataclasses import dataclass

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102


# ---------------------------------------------------------------------------------------------------------
# Frame builders. Each returns bytes exactly as they go on the wire; nothing is validated on purpose.


def cstr(value: str | bytes) -> bytes:
    return (value.encode() if isinstance(value, str) else value) + b"\0"


def frame(tag: bytes, payload: bytes = b"", length: int | None = None) -> bytes:
    """A tagged message; `length` overrides the honest length (for huge/negative length attacks)."""
    return tag + struct.pack("!i", len(payload) + 4 if length is None else length) + payload


def untagged(payload: bytes, length: int | None = None) -> bytes:
    return struct.pack("!i", len(payload) + 4 if length is None else length) + payload


def startup(params: dict[str | bytes, str | bytes], version: int = PROTOCOL_3) -> bytes:
    body = b"".join(cstr(k) + cstr(v) for k, v in params.items()) + b"\0"
    return untagged(struct.pack("!i", version) + body)


def ssl_request() -> bytes:
    return untagged(struct.pack("!i", SSL_REQUEST))


def gssenc_request() -> bytes:
    return untagged(struct.pack("!i", GSSENC_REQUEST))


def cancel_request(pid: int, key: int) -> bytes:
    return untagged(struct.pack("!iii", CANCEL_REQUEST, pid, key))


def query(sql: str | bytes) -> bytes:
    return frame(b"Q", cstr(sql))


def parse(sql: str | bytes, name: str | bytes = b"", oids: list[int] = ()) -> bytes:
    return frame(b"P", cstr(name) + cstr(sql) + struct.pack("!h", len(oids)) +
                 b"".join(struct.pack("!i", o) for o in oids))


def bind(params: list[bytes | None] = (), statement: str | bytes = b"", portal: str | bytes = b"",
         param_formats: list[int] = (), result_formats: list[int] = (), count: int | None = None) -> bytes:
    """`count` overrides the declared parameter count (to lie about it)."""
    body = cstr(portal) + cstr(statement)
    body += struct.pack("!h", len(param_formats)) + b"".join(struct.pack("!h", f) for f in param_formats)
    body += struct.pack("!h", len(params) if count is None else count)
    for value in params:
        body += struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value
    body += struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)
    return frame(b"B", body)


def describe(kind: bytes = b"S", name: str | bytes = b"") -> bytes:
    return frame(b"D", kind + cstr(name))


def execute(portal: str | bytes = b"", max_rows: int = 0) -> bytes:
    return frame(b"E", cstr(portal) + struct.pack("!i", max_rows))


def close(kind: bytes = b"S", name: str | bytes = b"") -> bytes:
    return frame(b"C", kind + cstr(name))


def sync() -> bytes:
    return frame(b"S")


def flush() -> bytes:
    return frame(b"H")


def terminate() -> bytes:
    return frame(b"X")


def password_message(payload: bytes) -> bytes:
    return frame(b"p", payload)


# ---------------------------------------------------------------------------------------------------------
# Reading replies.


@dataclass
class Message:
    tag: bytes
    payload: bytes

    def fields(self) -> dict[str, str]:
        """ErrorResponse/NoticeResponse fields: {'S': 'ERROR', 'C': '42601', 'M': '...', ...}."""
        out = {}
        for part in self.payload.split(b"\0"):
            if part:
                out[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return out

    @property
    def sqlstate(self) -> str | None:
        return self.fields().get("C") if self.tag == b"E" else None

    def data_row(self) -> list[bytes | None]:
        (count,) = struct.unpack_from("!h", self.payload)
        offset, values = 2, []
        for _ in range(count):
            (length,) = struct.unpack_from("!i", self.payload, offset)
            offset += 4
            if length < 0:
                values.append(None)
            else:
                values.append(self.payload[offset:offset + length])
                offset += length
        return values


class ServerClosed(ConnectionError):
    """The server closed the connection (EOF) before the expected reply."""


class RawClient:
    """One TCP connection, optionally from a chosen local address (any 127.x.y.z works on Linux)."""

    def __init__(self, host: str, port: int, timeout: float = 10, source: str | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buffer = bytearray()  # appended in place: a 100 MB DataRow must not cost O(n^2) copies
        self.backend_key: tuple[int, int] | None = None
        self.parameters: dict[str, str] = {}

    # -- bytes ------------------------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ServerClosed(f"server closed the connection ({len(self.buffer)} bytes pending)")
            self.buffer += chunk

    def read_byte(self) -> bytes:
        self._fill(1)
        byte = bytes(self.buffer[:1])
        del self.buffer[:1]
        return byte

    def read(self) -> Message:
        self._fill(5)
        tag = bytes(self.buffer[:1])
        (length,) = struct.unpack_from("!i", self.buffer, 1)
        if length < 4 or length > 1 << 30:
            raise ValueError(f"server sent a bad frame length {length} for tag {tag!r}")
        self._fill(1 + length)
        payload = bytes(self.buffer[5:1 + length])
        del self.buffer[:1 + length]
        return Message(tag, payload)

    def read_until(self, *tags: bytes) -> list[Message]:
        """Messages up to and including the first one whose tag is in `tags`."""
        out = []
        while True:
            try:
                message = self.read()
            except ServerClosed as exc:
                exc.messages = out  # what arrived before the close: often the ErrorResponse that explains it
                raise
            out.append(message)
            if message.tag in tags:
                return out

    def read_until_ready(self) -> list[Message]:
        return self.read_until(b"Z")

    def drain_until_closed(self) -> list[Message]:
        """Read every reply until the server closes the connection (EOF or reset)."""
        out = []
        try:
            while True:
                out.append(self.read())
        except (ServerClosed, ConnectionResetError):
            return out

    def close(self, abrupt: bool = False) -> None:
        """abrupt=True sends a TCP RST (SO_LINGER 0) instead of a FIN: a client that vanished mid-result."""
        try:
            if abrupt:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    # -- session helpers ---------------------------------------------------------------------------------
    def startup(self, user: str | bytes = "bemidb", database: str | bytes = "bemidb",
                password: str | None = None, extra: dict | None = None) -> list[Message]:
        """StartupMessage and the whole authentication dance; returns every message up to ReadyForQuery.

        An ErrorResponse during startup is returned (last message) instead of raising."""
        params = {"user": user, "database": database, **(extra or {})}
        self.send(startup(params))
        out = []
        while True:
            message = self.read()
            out.append(message)
            if message.tag == b"E" or message.tag == b"Z":
                return out
            if message.tag == b"K":
                self.backend_key = struct.unpack("!ii", message.payload[:8])
            elif message.tag == b"S":
                key, value, *_ = message.payload.split(b"\0")
                self.parameters[key.decode()] = value.decode("utf-8", "replace")
            elif message.tag == b"R":
                self._authenticate(message, user, password)

    def _authenticate(self, message: Message, user: str | bytes, password: str | None) -> None:
        (code,) = struct.unpack_from("!i", message.payload)
        if code == 0:  # AuthenticationOk
            return
        secret = (password or "").encode()
        if code == 3:  # cleartext
            self.send(password_message(cstr(secret)))
        elif code == 5:  # md5
            salt = message.payload[4:8]
            user_b = user.encode() if isinstance(user, str) else user
            inner = hashlib.md5(secret + user_b).hexdigest().encode()
            self.send(password_message(cstr(b"md5" + hashlib.md5(inner + salt).hexdigest().encode())))
        elif code == 10:  # SASL: mechanisms offered
            self._scram = Scram(secret)
            first = self._scram.client_first()
            self.send(password_message(cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
        elif code == 11:  # SASLContinue
            self.send(password_message(self._scram.client_final(message.payload[4:])))
        elif code == 12:  # SASLFinal: the server proves it knew the password too
            self._scram.verify_server(message.payload[4:])
        else:
            raise ValueError(f"unsupported authentication request {code}")

    def simple(self, sql: str | bytes) -> list[Message]:
        """A simple Query; every reply up to ReadyForQuery."""
        self.send(query(sql))
        return self.read_until_ready()


def errors(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.tag == b"E"]


def rows(messages: list[Message]) -> list[list[bytes | None]]:
    return [m.data_row() for m in messages if m.tag == b"D"]


class Scram:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677) as Postgres uses it (no channel binding)."""

    def __init__(self, password: bytes):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = b""

    def client_first(self) -> bytes:
        return ("n,," + self.first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        attrs = dict(item.split("=", 1) for item in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ValueError("server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server(self, server_final: bytes) -> None:
        attrs = dict(item.split("=", 1) for item in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            raise ValueError("server signature does not match: not the server that knows the password")
